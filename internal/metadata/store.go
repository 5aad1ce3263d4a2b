package metadata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata/kv"
)

// Sentinel errors. Every Store method documents which of these it returns.
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("metadata: not found")
	// ErrExists: a create found the key already present.
	ErrExists = errors.New("metadata: already exists")
	// ErrBadVersion: a compare-and-swap saw another version than expected.
	// Nothing of the operation was written.
	ErrBadVersion = errors.New("metadata: version mismatch")
	// ErrUnavailable: the metadata service could not be reached before the
	// context deadline (or the call's RequestTimeout), or etcd answered
	// "request timed out" / "leader changed" / "no leader". Retryable; for a
	// write the outcome is unknown: the write may have been applied. Retry
	// writes as CAS (the retry then fails with ErrBadVersion / ErrExists if
	// the first attempt landed, and a re-read tells). Matches
	// dlog.ErrUnavailable too.
	ErrUnavailable = kv.ErrUnavailable
	// ErrClosed: the Store was closed.
	ErrClosed = kv.ErrClosed
	// ErrCorrupt: a stored value does not decode. Never retried.
	ErrCorrupt = errors.New("metadata: corrupt value")
	// ErrSessionExpired: the session's lease is gone; everything bound to it
	// was removed.
	ErrSessionExpired = errors.New("metadata: session expired")
	// ErrNotEmpty: a namespace still holds logs.
	ErrNotEmpty = errors.New("metadata: not empty")
	// ErrBackwards: a subscription commit would move the position back.
	ErrBackwards = errors.New("metadata: position would move backwards")
	// ErrOwnershipLost: a Commit's CheckOwner op failed — the caller no
	// longer holds the log's lock, so it must stop writing. It also
	// matches dlog.ErrFenced (and, as every failed expectation,
	// ErrBadVersion).
	ErrOwnershipLost = fmt.Errorf("metadata: ownership check failed: %w", dlog.ErrFenced)
	// ErrWatchLagged: a watcher fell too far behind (or its start revision
	// was compacted); re-read the state and watch again.
	ErrWatchLagged = errors.New("metadata: watch lagged; re-list")
)

// OwnedError is returned by AcquireOwnership in immediate mode when another
// owner holds the log. It wraps dlog.OwnedError so callers can redirect.
type OwnedError = dlog.OwnedError

// Version is the revision at which a key was last modified (etcd's
// ModRevision). Zero means the key does not exist. CAS operations take the
// version the caller last read; after a successful write the key's version
// is the revision the write returned (every key of one Commit gets the same
// one), so a writer never needs to re-read its own update.
type Version int64

// Session is a lease: registrations and ownerships made through it vanish
// when it expires or is closed. A Session keeps itself alive (a renewal
// every TTL/3) until Close, or until the Store is closed (then it is
// abandoned: its lease expires after its TTL, as after a crash).
type Session interface {
	// ID is the lease id; unique per live session.
	ID() int64
	// TTL is the granted time to live (etcd rounds up to whole seconds).
	TTL() time.Duration
	// Done is closed when the lease has expired, was revoked, or could not
	// be renewed for its TTL (counted from the sending of the last renewal
	// that succeeded, so Done closes no later than the server expires it,
	// clock drift aside), or when the Store was closed. Owners must stop
	// acting as owners then.
	Done() <-chan struct{}
	// Close revokes the lease, removing everything bound to it at once.
	// Safe to call twice; a lease already gone is not an error.
	Close(ctx context.Context) error
}

// BookieState is a bookie's advertised state.
type BookieState int

const (
	BookieWritable BookieState = iota + 1
	BookieReadOnly
)

// BookieInfo is a bookie's registration.
type BookieInfo struct {
	ID         string
	Address    string // host:port of the RPC listener
	Region     string
	Rack       string
	State      BookieState
	InstanceID string
	FreeBytes  uint64
	TotalBytes uint64
}

// Cookie is a bookie's durable identity.
type Cookie struct {
	BookieID   string
	InstanceID string
	Address    string
	Dirs       []string
	Created    time.Time
}

// LedgerState is the lifecycle state of a ledger.
type LedgerState int

const (
	LedgerOpen LedgerState = iota + 1
	LedgerInRecovery
	LedgerClosed
)

// Fragment is the ensemble used from FirstEntryID on.
type Fragment struct {
	FirstEntryID int64
	Bookies      []string // bookie ids, len == EnsembleSize
}

// LedgerMetadata describes one ledger. Fragments are sorted by FirstEntryID;
// the first starts at 0.
type LedgerMetadata struct {
	EnsembleSize int
	WriteQuorum  int
	AckQuorum    int
	MinRegions   int
	State        LedgerState
	LastEntryID  int64 // -1 until closed with entries
	Length       int64 // payload bytes, set at close; -1 = unknown
	Fragments    []Fragment
	MasterKey    []byte
	Custom       map[string]string
	Created      time.Time
	// EntryFormat is how the ledger's entries frame their payload (the
	// ledger package defines the formats); 0 = the payload as is.
	EntryFormat int
}

// NamespaceInfo is a namespace's settings.
type NamespaceInfo struct {
	Created   time.Time
	Retention time.Duration // 0 = keep until truncated
}

// LogInfo is a log's settings.
type LogInfo struct {
	Created   time.Time
	Retention time.Duration // 0 = namespace default
}

// SegmentState is the lifecycle state of a segment.
type SegmentState int

const (
	SegmentInProgress SegmentState = iota + 1
	SegmentCompleted
)

// TruncationStatus says how much of a segment is truncated.
type TruncationStatus int

const (
	TruncationActive TruncationStatus = iota + 1
	TruncationPartial
	TruncationFull
)

// Segment is one log segment (one ledger).
type Segment struct {
	LSSN            int64
	LedgerID        int64
	State           SegmentState
	FirstTxID       int64
	LastTxID        int64 // completed only
	LastEntryID     int64 // completed only; -1 when empty
	LastSlotID      int64 // completed only
	RecordCount     int64 // completed only
	StartSequenceID int64
	Created         time.Time
	Completed       time.Time
	Truncation      TruncationStatus
	MinActive       dlog.DLSN // first readable position when partially truncated
	WriterID        string
	EndOfStream     bool
	// Version is filled on reads and is what UpdateSegment/DeleteSegment
	// expect.
	Version Version
}

// LogState is one consistent read of everything a writer or reader needs
// about a log, taken at Revision.
type LogState struct {
	Info              LogInfo
	InfoVersion       Version
	Segments          []Segment // ascending LSSN
	MaxLSSN           int64     // 0 before the first segment
	MaxLSSNVersion    Version
	MaxTxID           int64 // -1 before the first record
	MaxTxIDVersion    Version
	Truncation        dlog.DLSN // zero value = nothing truncated
	TruncationVersion Version
	Revision          int64
}

// OwnerInfo identifies a log's writer.
type OwnerInfo struct {
	ID       string
	Address  string // where clients should send writes; may be empty
	Acquired time.Time
}

// Ownership is a held writer lock on one log. The lock is advisory (a
// paused owner may act after its lease expired); safety comes from
// CheckOwner in every Commit plus bookie fencing.
type Ownership interface {
	Owner() OwnerInfo
	// Token identifies this acquisition (the lock key's create revision);
	// CheckOwner ops compare against it.
	Token() Version
	// SessionID is the lease the lock key is bound to.
	SessionID() int64
	// Lost is closed as soon as the store learns that ownership is gone:
	// session expired (or could not be renewed for its TTL), lock key
	// deleted or replaced (a watch on it), Release, or Store.Close.
	Lost() <-chan struct{}
	// Release deletes the lock key if it is still this ownership's and
	// closes Lost. If it fails (ErrUnavailable) the key stays until the
	// session ends. Safe to call twice.
	Release(ctx context.Context) error
}

// ProxyInfo is a proxy's registration.
type ProxyInfo struct {
	ID            string
	Address       string
	HTTPAddress   string
	Region        string
	AcceptNewLogs bool
}

// Subscription is a named reader position.
type Subscription struct {
	Position dlog.DLSN
	Updated  time.Time
	Version  Version
}

// EventType says whether a watched key was written or deleted.
type EventType int

const (
	EventPut EventType = iota + 1
	EventDelete
)

// Watch channels. Every WatchX(ctx, ..., fromRev) delivers every change
// with revision >= fromRev (0: from the next change on; pass the revision of
// a read + 1 to see every change after the read), in revision order. The
// channel holds Options.WatchBufferEvents events; a consumer that lets it
// fill gets one final event with Err wrapping ErrWatchLagged (also when
// fromRev was compacted away) and must re-read and watch again. The store
// never blocks on a consumer and never drops an event silently. The channel
// is closed after an event with Err (ErrWatchLagged, ErrClosed,
// ErrCorrupt), or without one when ctx ends.

// BookieEvent is one change of the bookie registry.
type BookieEvent struct {
	Type     EventType
	Bookie   BookieInfo // only ID is set for deletes
	Revision int64
	Err      error
}

// LedgerEvent is one change of a ledger's metadata (channel rules above).
type LedgerEvent struct {
	Type     EventType
	Ledger   LedgerMetadata
	Version  Version
	Revision int64
	Err      error
}

// LogKeyKind says which key of a log an event is about.
type LogKeyKind int

const (
	LogKeyInfo LogKeyKind = iota + 1
	LogKeySegment
	LogKeyMaxLSSN
	LogKeyMaxTxID
	LogKeyTruncation
	LogKeyOwner
	LogKeySubscription
)

// LogEvent is one change of a log's keys (channel rules above). Only the
// field of the event's Kind is set; for deletes only the identifying part
// (Segment.LSSN, SubscriptionName). A delete of LogKeyInfo means the log was
// deleted (its other keys are deleted at the same revision).
type LogEvent struct {
	Type             EventType
	Kind             LogKeyKind
	Info             LogInfo   // LogKeyInfo
	Segment          Segment   // LogKeySegment
	Value            int64     // LogKeyMaxLSSN, LogKeyMaxTxID
	Truncation       dlog.DLSN // LogKeyTruncation
	Owner            OwnerInfo // LogKeyOwner
	SubscriptionName string    // LogKeySubscription
	Subscription     Subscription
	Version          Version // the key's version after a put
	Revision         int64
	Err              error
}

// ProxyEvent is one change of the proxy registry.
type ProxyEvent struct {
	Type     EventType
	Proxy    ProxyInfo
	Revision int64
	Err      error
}

// Op is one step of a multi-key transaction (Commit): expectations
// (compares) and writes. Build Ops with the functions in ops.go; an Op is
// opaque and immutable.
type Op struct {
	desc   string  // for errors: "create segment 3 of ns/log"
	checks []check // all must hold
	writes []kv.Op // puts and deletes
	err    error   // the op could not be built (bad name, bad argument)
}

// Store is everything dlog keeps in its metadata service. Implementations are
// safe for concurrent use. Every method that talks to the service takes a ctx
// and fails with ErrUnavailable (wrapping the cause) when the service cannot
// be reached before ctx ends. Writes are single etcd transactions: nothing is
// ever half-written.
type Store interface {
	// Close releases the client (and stops an embedded server it owns).
	Close() error

	// NewSession grants a lease of the given TTL and keeps it alive.
	NewSession(ctx context.Context, ttl time.Duration) (Session, error)

	// RegisterBookie writes bookies/<id> bound to s. Registering again
	// through the same session overwrites (that is how a bookie turns
	// read-only and back). ErrExists if another live session holds the id
	// (two bookies claiming one id; a restarted bookie waits for its old
	// lease to expire). ErrSessionExpired if s is gone. Ids are checked with
	// ValidateID (errors wrap dlog.ErrInvalidName).
	RegisterBookie(ctx context.Context, s Session, b BookieInfo) error
	// ListBookies returns live registrations sorted by id and the revision
	// of the read (watch from revision+1 to see every later change).
	ListBookies(ctx context.Context) ([]BookieInfo, int64, error)
	// WatchBookies streams registry changes from fromRev on.
	WatchBookies(ctx context.Context, fromRev int64) <-chan BookieEvent
	// GetCookie returns ErrNotFound when the bookie never registered one.
	GetCookie(ctx context.Context, bookieID string) (Cookie, Version, error)
	// PutCookie writes a cookie if its current version is expect (0 = must
	// not exist: ErrExists otherwise). ErrBadVersion otherwise.
	PutCookie(ctx context.Context, c Cookie, expect Version) (Version, error)
	// DeleteCookie deletes if the version is expect (0 = any version).
	// ErrNotFound if absent, ErrBadVersion on a mismatch.
	DeleteCookie(ctx context.Context, bookieID string, expect Version) error

	// NewLedgerID returns a fresh ledger id from an atomic counter (>= 1,
	// increasing, never reused). Under ErrUnavailable an id may have been
	// consumed: ids can have gaps.
	NewLedgerID(ctx context.Context) (int64, error)
	// CreateLedger stores metadata for a new id (> 0). ErrExists if present;
	// dlog.ErrInvalidArgument if m is inconsistent (E >= Qw >= Qa >= 1,
	// fragments ascending from entry 0, each of E distinct bookies).
	CreateLedger(ctx context.Context, id int64, m LedgerMetadata) (Version, error)
	// GetLedger returns ErrNotFound for an unknown id.
	GetLedger(ctx context.Context, id int64) (LedgerMetadata, Version, error)
	// UpdateLedger replaces the metadata if its version is expect;
	// ErrBadVersion otherwise (also wrapping ErrNotFound if deleted).
	UpdateLedger(ctx context.Context, id int64, m LedgerMetadata, expect Version) (Version, error)
	// DeleteLedger deletes if the version is expect (0 = any version).
	// ErrNotFound if absent.
	DeleteLedger(ctx context.Context, id int64, expect Version) error
	// ListLedgers returns up to limit ids greater than afterID, ascending.
	ListLedgers(ctx context.Context, afterID int64, limit int) ([]int64, error)
	// WatchLedger streams changes of one ledger from fromRev on.
	WatchLedger(ctx context.Context, id int64, fromRev int64) <-chan LedgerEvent

	// CreateNamespace fails with ErrExists; names are checked with
	// dlog.ValidateName (errors wrap dlog.ErrInvalidName).
	CreateNamespace(ctx context.Context, ns string, info NamespaceInfo) error
	GetNamespace(ctx context.Context, ns string) (NamespaceInfo, Version, error)
	// DeleteNamespace fails with ErrNotEmpty while logs remain (checked in
	// the deleting transaction), ErrNotFound if absent.
	DeleteNamespace(ctx context.Context, ns string) error
	// ListNamespaces returns every namespace, sorted.
	ListNamespaces(ctx context.Context) ([]string, error)

	// CreateLog creates the log with MaxLSSN 0, MaxTxID -1 and a zero
	// truncation point in one transaction. ErrExists if present;
	// ErrNotFound if the namespace is missing.
	CreateLog(ctx context.Context, ns, log string, info LogInfo) error
	// GetLogState reads all of a log's keys at one revision. ErrNotFound if
	// the log does not exist.
	GetLogState(ctx context.Context, ns, log string) (LogState, error)
	LogExists(ctx context.Context, ns, log string) (bool, error)
	// DeleteLog deletes the log and every key below it (segments, lock,
	// subscriptions...) in one transaction; an owner's Lost fires. It does
	// not delete ledgers. ErrNotFound if absent.
	DeleteLog(ctx context.Context, ns, log string) error
	// ListLogs returns up to limit (<= 0: 1000) names that start with
	// prefix and sort after `after` (byte order), ascending, and whether
	// more exist. Pass the last name as `after` for the next page.
	// ErrNotFound if the namespace is missing.
	ListLogs(ctx context.Context, ns, prefix, after string, limit int) ([]string, bool, error)
	// WatchLog streams every change of a log's keys from fromRev on
	// (GetLogState's Revision+1 continues a read).
	WatchLog(ctx context.Context, ns, log string, fromRev int64) <-chan LogEvent

	// Commit applies ops in one transaction: all or nothing. If any
	// expectation fails it returns an *OpError naming the first failing op
	// and wrapping ErrBadVersion (ErrExists for a create, ErrNotFound too
	// when the key is gone) and writes nothing. At most MaxCommitOps ops,
	// no two writing the same key (dlog.ErrInvalidArgument). Returns the
	// revision, which is the new Version of every key written.
	Commit(ctx context.Context, ops ...Op) (int64, error)

	// AcquireOwnership takes a log's writer lock, bound to s. With wait
	// false it fails at once with *OwnedError naming the holder; with wait
	// true it blocks until the lock is free or ctx ends (no FIFO among
	// waiters). The same session and owner id acquiring again get a
	// handle on the same lock (same Token). ErrNotFound if the log does not
	// exist, ErrSessionExpired if s is gone.
	AcquireOwnership(ctx context.Context, s Session, ns, log string, owner OwnerInfo, wait bool) (Ownership, error)
	// GetOwner returns the current owner, if any.
	GetOwner(ctx context.Context, ns, log string) (OwnerInfo, bool, error)

	// GetSubscription returns ErrNotFound for an unknown name.
	GetSubscription(ctx context.Context, ns, log, name string) (Subscription, error)
	// CommitSubscription stores pos (creating the subscription if needed).
	// Unless reset, it fails with ErrBackwards when pos is before the
	// stored position; an equal position is accepted. ErrNotFound if the
	// log does not exist.
	CommitSubscription(ctx context.Context, ns, log, name string, pos dlog.DLSN, reset bool) error
	// ListSubscriptions returns every subscription of the log (a fresh
	// map). ErrNotFound if the log does not exist.
	ListSubscriptions(ctx context.Context, ns, log string) (map[string]Subscription, error)
	// DeleteSubscription returns ErrNotFound if absent.
	DeleteSubscription(ctx context.Context, ns, log, name string) error

	// RegisterProxy writes proxies/<id> bound to s (rules of
	// RegisterBookie).
	RegisterProxy(ctx context.Context, s Session, p ProxyInfo) error
	// ListProxies returns live registrations sorted by id and the revision
	// of the read.
	ListProxies(ctx context.Context) ([]ProxyInfo, int64, error)
	// WatchProxies streams registry changes from fromRev on.
	WatchProxies(ctx context.Context, fromRev int64) <-chan ProxyEvent
}

// The Op builders live in ops.go. Each checks its names; an Op built from
// an invalid name or argument makes Commit fail with dlog.ErrInvalidName or
// dlog.ErrInvalidArgument before anything is sent.
//
//	CreateSegment(ns, log, s)              segments/<lssn> must not exist; the log must
//	UpdateSegment(ns, log, s, expect)      segments/<lssn> at version expect
//	DeleteSegment(ns, log, lssn, expect)
//	SetMaxLSSN(ns, log, lssn, expect)      maxlssn at version expect
//	SetMaxTxID(ns, log, txid, expect)
//	SetTruncation(ns, log, dlsn, expect)
//	UpdateLogInfo(ns, log, info, expect)
//	SetSubscription(ns, log, name, pos, expect)   no direction check; 0 = create
//	CheckOwner(ns, log, ownership)         the lock key is still ownership's
//	CreateLedgerOp(id, m), UpdateLedgerOp(id, m, expect), DeleteLedgerOp(id, expect)
