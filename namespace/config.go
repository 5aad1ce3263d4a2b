package namespace

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/recordset"
)

// Config configures a Namespace. Start from DefaultConfig: a zero field
// of a duration or size means the documented default, except where a
// field says that 0 has its own meaning.
type Config struct {
	// MetadataURL names the metadata service (see metadata.Open):
	// "http://h1:2379,http://h2:2379" for etcd, "embedded:DIR" for an
	// embedded single-member etcd the Namespace starts and stops, "memory:"
	// for a private in-memory store (tests). Ignored when Store is set.
	MetadataURL string
	// Cluster names the dlog cluster inside the metadata service (its keys
	// live under /dlog/<Cluster>/). Default "default". Ignored when Store is
	// set.
	Cluster string
	// Store is an already-open metadata store to use instead of
	// MetadataURL; the Namespace does not close it.
	Store metadata.Store
	// Namespace is the namespace's name (dlog.ValidateName). It is created
	// on first use. Default "default".
	Namespace string

	// Ledgers is a ledger client to share; the Namespace does not close
	// it. Nil: Open creates one from LedgerConfig on the metadata store and
	// Close closes it.
	Ledgers *ledger.Client
	// LedgerConfig configures the ledger client Open creates when Ledgers
	// is nil; its nil Logger and Registerer default to this Config's. Nil:
	// ledger.DefaultConfig() with an explicit-LAC delay of 1 ms (an idle
	// writer makes its last entry visible to readers that soon).
	LedgerConfig *ledger.Config
	// EnsembleSize, WriteQuorum and AckQuorum are the replication of new
	// segments' ledgers: every entry goes to WriteQuorum of EnsembleSize
	// bookies and is acknowledged once AckQuorum fsynced it. Default 3/3/2.
	// Larger ack quorums survive more simultaneous bookie losses at the
	// cost of latency (the ack waits for the slowest of them).
	EnsembleSize, WriteQuorum, AckQuorum int

	// SegmentRollBytes: a writer starts a new segment once its current one
	// holds this many entry bytes. Default 256 MiB. Smaller segments are
	// retained and truncated at a finer grain but cost a metadata
	// transaction and a ledger each.
	SegmentRollBytes int64
	// SegmentRollInterval: a writer starts a new segment once its current
	// one (holding at least one record) is this old. Default 2 h.
	SegmentRollInterval time.Duration

	// FlushBytes is the record-set size at which a writer sends an entry
	// without waiting. 0 disables batching: every record (or record set)
	// is its own entry. While no entry is in flight a writer sends at once
	// whatever it has, so batching only adds latency under load, where it
	// buys throughput. Default 64 KiB.
	FlushBytes int
	// FlushInterval bounds how long a record may wait in a writer's batch
	// while earlier entries are in flight. Default 2 ms.
	FlushInterval time.Duration
	// Compression is the codec of entries: "none", "lz4" or "zstd".
	// Default "none". An entry is stored uncompressed when compressing
	// does not make it smaller.
	Compression string
	// MaxRecordBytes bounds one record's payload; larger records fail
	// with dlog.ErrRecordTooLarge (definite). Default 1 MiB; at most
	// MaxEntryBytes − 13.
	MaxRecordBytes int
	// MaxEntryBytes bounds one entry's uncompressed record set, so it
	// also bounds a WriteRecordSet. Default 2 MiB; at most 8 MiB.
	MaxEntryBytes int
	// MaxPendingRecords and MaxPendingBytes bound what one writer holds
	// that is not yet acknowledged (queued or in flight). WriteAsync beyond
	// them fails with dlog.ErrOverCapacity (definite); Write waits for room
	// until its ctx ends. Defaults 100000 records and 64 MiB.
	MaxPendingRecords int
	MaxPendingBytes   int64

	// Retention is how long completed segments are kept after completion
	// when neither the log nor the namespace metadata sets its own; 0
	// keeps them until truncated. Default 0.
	Retention time.Duration
	// GCInterval is how often the namespace's collector deletes truncated
	// and expired segments of every log. 0 disables the background
	// collector (RunGC still works). Default 1 min.
	GCInterval time.Duration

	// OrphanLedgerGrace: the collector also deletes ledgers created by this
	// namespace's writers that no segment references (a crash between a
	// ledger's creation and its segment's commit leaves one) once they are
	// this old. It must exceed any pause of a writer between those two
	// steps. 0 disables the sweep. Default 1 h.
	OrphanLedgerGrace time.Duration
	// SessionTTL is the lease of the metadata session that holds this
	// namespace's writer locks. A process that dies loses its logs after
	// this long; a shorter TTL fails over faster but risks losing a lock
	// during a pause longer than it. Default 10 s (etcd rounds to seconds).
	SessionTTL time.Duration
	// OwnerID identifies this process as a writer owner (what OwnedError
	// reports). Default: a random id.
	OwnerID string
	// RetryMin and RetryMax bound the backoff of a writer healing a broken
	// segment and of a reader retrying a transient read error. Defaults 50
	// ms and 2 s.
	RetryMin, RetryMax time.Duration

	// ReaderRelistInterval is how often a waiting reader re-reads the log's
	// metadata even without a watch event, so a missed event can delay it
	// but never stall it. Default 3 s.
	ReaderRelistInterval time.Duration
	// ReadAheadEntries bounds the entries a reader fetches at once (and so
	// what it buffers). Default 64.
	ReadAheadEntries int

	// Logger receives events with kebab-case keys ("log", "lssn",
	// "ledger-id"); nil discards.
	Logger *slog.Logger
	// Registerer receives the namespace's Prometheus metrics; nil does not
	// register them.
	Registerer prometheus.Registerer

	// testHooks are set by tests of this package only.
	testHooks *testHooks
}

// DefaultConfig returns the defaults documented on Config, for the
// metadata service at url.
func DefaultConfig(url string) Config {
	return Config{
		MetadataURL:          url,
		Cluster:              "default",
		Namespace:            "default",
		EnsembleSize:         3,
		WriteQuorum:          3,
		AckQuorum:            2,
		SegmentRollBytes:     256 << 20,
		SegmentRollInterval:  2 * time.Hour,
		FlushBytes:           64 << 10,
		FlushInterval:        2 * time.Millisecond,
		Compression:          "none",
		MaxRecordBytes:       1 << 20,
		MaxEntryBytes:        2 << 20,
		MaxPendingRecords:    100_000,
		MaxPendingBytes:      64 << 20,
		GCInterval:           time.Minute,
		OrphanLedgerGrace:    time.Hour,
		SessionTTL:           10 * time.Second,
		RetryMin:             50 * time.Millisecond,
		RetryMax:             2 * time.Second,
		ReaderRelistInterval: 3 * time.Second,
		ReadAheadEntries:     64,
	}
}

// withDefaults fills zero fields whose zero value has no meaning of its
// own.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.MetadataURL)
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setDur := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	if c.Cluster == "" {
		c.Cluster = d.Cluster
	}
	if c.Namespace == "" {
		c.Namespace = d.Namespace
	}
	setInt(&c.EnsembleSize, d.EnsembleSize)
	setInt(&c.WriteQuorum, d.WriteQuorum)
	setInt(&c.AckQuorum, d.AckQuorum)
	if c.SegmentRollBytes == 0 {
		c.SegmentRollBytes = d.SegmentRollBytes
	}
	setDur(&c.SegmentRollInterval, d.SegmentRollInterval)
	setDur(&c.FlushInterval, d.FlushInterval)
	if c.Compression == "" {
		c.Compression = d.Compression
	}
	setInt(&c.MaxRecordBytes, d.MaxRecordBytes)
	setInt(&c.MaxEntryBytes, d.MaxEntryBytes)
	setInt(&c.MaxPendingRecords, d.MaxPendingRecords)
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = d.MaxPendingBytes
	}
	setDur(&c.SessionTTL, d.SessionTTL)
	setDur(&c.RetryMin, d.RetryMin)
	setDur(&c.RetryMax, d.RetryMax)
	setDur(&c.ReaderRelistInterval, d.ReaderRelistInterval)
	setInt(&c.ReadAheadEntries, d.ReadAheadEntries)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration (after defaults are applied by Open).
// Errors wrap dlog.ErrInvalidArgument (dlog.ErrInvalidName for a bad
// namespace name).
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: namespace config: %s", dlog.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	if err := dlog.ValidateName(c.Namespace); err != nil {
		return fmt.Errorf("namespace config: %w", err)
	}
	if _, err := recordset.ParseCodec(c.Compression); err != nil {
		return bad("compression: %v", err)
	}
	rs := recordset.Config{MaxRecordBytes: c.MaxRecordBytes, MaxSetBytes: c.MaxEntryBytes, FlushBytes: min(c.FlushBytes, c.MaxEntryBytes)}
	switch {
	case c.Store == nil && c.MetadataURL == "":
		return bad("no metadata URL and no store")
	case c.EnsembleSize < c.WriteQuorum || c.WriteQuorum < c.AckQuorum || c.AckQuorum < 1:
		return bad("replication E=%d Qw=%d Qa=%d: want E >= Qw >= Qa >= 1", c.EnsembleSize, c.WriteQuorum, c.AckQuorum)
	case c.SegmentRollBytes < 1 || c.SegmentRollInterval < 0:
		return bad("segment roll %d bytes, %v", c.SegmentRollBytes, c.SegmentRollInterval)
	case c.FlushBytes < 0 || c.FlushInterval < 0:
		return bad("flush %d bytes, %v", c.FlushBytes, c.FlushInterval)
	case c.MaxPendingRecords < 1 || c.MaxPendingBytes < int64(c.MaxEntryBytes):
		return bad("pending bounds %d records, %d bytes (at least one entry)", c.MaxPendingRecords, c.MaxPendingBytes)
	case c.Retention < 0 || c.GCInterval < 0 || c.OrphanLedgerGrace < 0:
		return bad("retention %v, gc interval %v", c.Retention, c.GCInterval)
	case c.SessionTTL < time.Second:
		return bad("session TTL %v below 1 s", c.SessionTTL)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return bad("retry backoff %v..%v", c.RetryMin, c.RetryMax)
	case c.ReaderRelistInterval <= 0 || c.ReadAheadEntries < 1:
		return bad("reader relist %v, readahead %d", c.ReaderRelistInterval, c.ReadAheadEntries)
	}
	if err := rs.Validate(); err != nil {
		return bad("record limits: %v", err)
	}
	return nil
}

// LogOptions are a log's settings at creation.
type LogOptions struct {
	// Retention overrides the namespace's retention for this log (0: the
	// namespace's).
	Retention time.Duration
}

// WriterOptions tune OpenWriter.
type WriterOptions struct {
	// Wait makes OpenWriter wait (until ctx ends) for the current owner to
	// let go instead of failing at once with *dlog.OwnedError.
	Wait bool
	// OwnerID and OwnerAddress identify the writer to others (OwnedError);
	// a proxy puts its id and the address clients should be redirected
	// to. Default: Config.OwnerID and "".
	OwnerID, OwnerAddress string
}

// ReaderOptions tune OpenReader.
type ReaderOptions struct {
	// SkipTruncated starts a reader whose position lies in truncated data
	// at the first readable record instead of failing with
	// dlog.ErrTruncated.
	SkipTruncated bool
	// ReadAheadEntries overrides Config.ReadAheadEntries.
	ReadAheadEntries int
	// RelistInterval overrides Config.ReaderRelistInterval.
	RelistInterval time.Duration
}
