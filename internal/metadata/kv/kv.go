package kv

import (
	"context"
	"errors"
	"time"

	"github.com/dlog-io/dlog"
)

// Errors. ErrUnavailable is the metadata package's sentinel of the same
// name, re-exported there.
var (
	// ErrUnavailable: the service could not be reached or did not answer
	// in time. Retryable; for a write the outcome is unknown. It matches
	// dlog.ErrUnavailable too (same meaning, one level up).
	ErrUnavailable error = &childError{"metadata: unavailable", dlog.ErrUnavailable}
	// ErrLeaseNotFound: the lease expired or was revoked.
	ErrLeaseNotFound = errors.New("metadata: lease not found")
	// ErrCompacted: a watch's start revision is older than the history kept.
	ErrCompacted = errors.New("metadata: revision compacted")
	// ErrClosed: the KV (this client) was closed.
	ErrClosed = errors.New("metadata: store closed")
	// ErrInvalid: the request was malformed (duplicate keys in a branch, too
	// many ops, too large). Nothing was written.
	ErrInvalid = errors.New("metadata: invalid request")
)

// childError is a sentinel that also matches a more general one.
type childError struct {
	msg    string
	parent error
}

func (e *childError) Error() string { return e.msg }
func (e *childError) Unwrap() error { return e.parent }

// MaxTxnOps bounds If, Then and Else of one Txn each (etcd's default
// --max-txn-ops is 128).
const MaxTxnOps = 128

// KeyValue is one stored key.
type KeyValue struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64
}

// Target is the attribute a Cmp looks at.
type Target int

const (
	TargetMod Target = iota + 1
	TargetCreate
	TargetVersion
	TargetLease
)

// Result is the relation a Cmp requires.
type Result int

const (
	Equal Result = iota + 1
	NotEqual
	Greater
	Less
)

// Cmp compares one attribute of Key, or of every key in [Key, End) when End
// is set. A missing key, and an empty range, compare as all-zero.
type Cmp struct {
	Key    string
	End    string
	Target Target
	Result Result
	Value  int64
}

// Holds evaluates the comparison against one key (zero KeyValue if absent).
func (c Cmp) Holds(kv KeyValue) bool {
	var v int64
	switch c.Target {
	case TargetMod:
		v = kv.ModRevision
	case TargetCreate:
		v = kv.CreateRevision
	case TargetVersion:
		v = kv.Version
	case TargetLease:
		v = kv.Lease
	}
	switch c.Result {
	case Equal:
		return v == c.Value
	case NotEqual:
		return v != c.Value
	case Greater:
		return v > c.Value
	case Less:
		return v < c.Value
	}
	return false
}

// OpType is what an Op does.
type OpType int

const (
	OpGet OpType = iota + 1
	OpPut
	OpDelete
)

// Op is one step of a Txn branch.
type Op struct {
	Type OpType
	Key  string
	// End makes a Get or Delete cover [Key, End); "" means Key alone.
	End   string
	Value []byte // Put
	Lease int64  // Put: attach to this lease (0 = none)
	// Limit caps the keys a Get returns (0 = all); More tells if it cut.
	Limit    int64
	KeysOnly bool // Get: leave Value nil
}

// Get, Range, Put and Delete build Ops.
func Get(key string) Op                     { return Op{Type: OpGet, Key: key} }
func Range(key, end string, limit int64) Op { return Op{Type: OpGet, Key: key, End: end, Limit: limit} }
func Put(key string, value []byte, lease int64) Op {
	return Op{Type: OpPut, Key: key, Value: value, Lease: lease}
}
func Delete(key string) Op           { return Op{Type: OpDelete, Key: key} }
func DeleteRange(key, end string) Op { return Op{Type: OpDelete, Key: key, End: end} }

// OpResult is the outcome of one Op, at the same index as the Op.
type OpResult struct {
	KVs     []KeyValue // Get, ascending by key
	More    bool       // Get: Limit cut the result
	Deleted int64      // Delete: keys removed
}

// Txn is a conditional multi-op transaction.
type Txn struct {
	If   []Cmp
	Then []Op
	Else []Op
}

// TxnResponse is a Txn's outcome: which branch ran, the store revision
// after it, and one result per Op of that branch.
type TxnResponse struct {
	Succeeded bool
	Revision  int64
	Results   []OpResult
}

// EventType is a watch event's kind.
type EventType int

const (
	EventPut EventType = iota + 1
	EventDelete
)

// Event is one change. For deletes KV holds the key and, in ModRevision, the
// revision of the delete.
type Event struct {
	Type EventType
	KV   KeyValue
}

// WatchResponse carries the events of one or more revisions, in order, or
// a final error (after which the channel is closed).
type WatchResponse struct {
	Events []Event
	Err    error
}

// KV is the seam. Implementations are safe for concurrent use. Every call
// fails with an error wrapping ErrUnavailable when the service cannot be
// reached before ctx ends, and with ErrClosed after Close. Returned slices
// belong to the caller.
type KV interface {
	// Txn runs one transaction atomically.
	Txn(ctx context.Context, t Txn) (TxnResponse, error)
	// Watch streams the changes of [key, end) (end "" = key alone) with
	// revision >= fromRev. The channel is closed when ctx ends, or after a
	// response with Err (ErrCompacted, ErrUnavailable, ErrClosed), or by
	// Close (with a final ErrClosed only if the reader is ready for it). It
	// is unbuffered: the caller must keep reading or cancel ctx.
	Watch(ctx context.Context, key, end string, fromRev int64) <-chan WatchResponse
	// Grant creates a lease; the granted TTL may be longer than asked
	// (etcd rounds up to whole seconds and to its minimum).
	Grant(ctx context.Context, ttl time.Duration) (id int64, granted time.Duration, err error)
	// KeepAliveOnce renews a lease and returns its TTL; ErrLeaseNotFound
	// once it is gone.
	KeepAliveOnce(ctx context.Context, id int64) (time.Duration, error)
	// Revoke deletes a lease and its keys. ErrLeaseNotFound if gone.
	Revoke(ctx context.Context, id int64) error
	// Endpoints describes where the service is (for logs and users).
	Endpoints() []string
	// Close releases the client; watches end with ErrClosed.
	Close() error
}

// PrefixEnd returns the end of the range holding every key that starts
// with prefix.
func PrefixEnd(prefix string) string {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return "\x00" // every key: etcd's convention for "no end"
}

// CheckTxn rejects what etcd rejects before running a Txn: too many ops and
// overlapping writes within one branch.
func CheckTxn(t Txn) error {
	if len(t.If) > MaxTxnOps || len(t.Then) > MaxTxnOps || len(t.Else) > MaxTxnOps {
		return errors.Join(ErrInvalid, errors.New("too many operations in one transaction"))
	}
	for _, branch := range [][]Op{t.Then, t.Else} {
		for i, a := range branch {
			if a.Type == OpGet {
				continue
			}
			for _, b := range branch[:i] {
				// etcd allows overlapping deletes, nothing else.
				if b.Type != OpGet && (a.Type == OpPut || b.Type == OpPut) && overlaps(a, b) {
					return errors.Join(ErrInvalid, errors.New("duplicate key "+a.Key+" in one transaction"))
				}
			}
		}
	}
	return nil
}

func overlaps(a, b Op) bool {
	return before(a.Key, b) && before(b.Key, a)
}

// before reports whether key sorts before the exclusive end of o's range.
func before(key string, o Op) bool {
	switch o.End {
	case "":
		return key <= o.Key
	case "\x00":
		return true
	}
	return key < o.End
}

// InRange reports whether key lies in [start, end) (end "" = start alone;
// end "\x00" = everything from start on).
func InRange(key, start, end string) bool {
	switch end {
	case "":
		return key == start
	case "\x00":
		return key >= start
	}
	return key >= start && key < end
}
