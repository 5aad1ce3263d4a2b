package proxy

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/namespace"
)

// Config configures a proxy. Start from DefaultConfig; Start applies the
// defaults of zero fields where a zero has no meaning of its own.
type Config struct {
	// MetadataURL names the metadata service (metadata.Open): etcd URLs,
	// "embedded:DIR" or "memory:". Ignored when Store is set.
	MetadataURL string
	// Cluster names the dlog cluster inside the metadata service. Default
	// "default".
	Cluster string
	// Store is an open metadata store to use instead of MetadataURL (the
	// proxy does not close it): how `dlog sandbox` and tests share one.
	Store metadata.Store

	// ID identifies the proxy in metadata (metadata.ValidateID) and as the
	// owner of the logs it writes. Default: "proxy-" and the advertised
	// address with ':' and '.' replaced by '-'.
	ID string
	// ListenAddr is where the API (gRPC, gRPC-Web and Connect HTTP/JSON on
	// one port, HTTP/1.1 and cleartext HTTP/2) listens. Port 0 picks one.
	// Default "127.0.0.1:7000".
	ListenAddr string
	// AdvertiseAddr is the API address clients are told (registration,
	// redirects). Default: the address actually listened on.
	AdvertiseAddr string
	// HTTPAddr, when set, serves /metrics, /healthz and /readyz there.
	HTTPAddr string
	// Region is the proxy's region label (in its registration).
	Region string

	// DisableWrites makes the proxy refuse to own logs (writes, heartbeats
	// and truncations answer CODE_STREAM_UNAVAILABLE); DisableReads makes
	// it refuse Read streams. Both roles are on by default.
	DisableWrites, DisableReads bool
	// AcceptNewLogs starts the proxy accepting new logs (true) or
	// draining (false). AdminService.SetAcceptNewLogs changes it later.
	// DefaultConfig sets true.
	AcceptNewLogs bool

	// SessionTTL is the lease of the proxy's registration and of its
	// writer locks: an owner that dies or is cut off loses its logs this
	// long after its last renewal. Shorter fails over faster; too short
	// loses logs during pauses (GC, a loaded machine). Default 5 s (etcd
	// rounds to whole seconds; at least 1 s).
	SessionTTL time.Duration
	// AcquireTimeout bounds taking over a log (lock, recovery of the
	// previous owner's segments, rebuilding the dedup table). Default 30 s.
	AcquireTimeout time.Duration
	// CloseTimeout bounds closing one log's writer (release, shutdown).
	// Default 10 s.
	CloseTimeout time.Duration
	// ProbationErrors writer failures of one log within ProbationWindow
	// put the log on probation: the proxy releases it and, for
	// ProbationPeriod, answers CODE_STREAM_UNAVAILABLE instead of taking
	// it back, so clients move it to another proxy. Defaults 3, 1 min and
	// 30 s. ProbationErrors 0 keeps the default; a negative value disables
	// probation.
	ProbationErrors int
	ProbationWindow time.Duration
	ProbationPeriod time.Duration
	// MaxOwnedLogs bounds the logs this proxy owns at once; beyond it new
	// logs get CODE_STREAM_UNAVAILABLE. Default 10000.
	MaxOwnedLogs int

	// MaxPendingRecordsPerLog and MaxPendingBytesPerLog bound the writes of
	// one log accepted and not yet acknowledged; beyond them writes get
	// CODE_OVER_CAPACITY (definite). Defaults 20000 records and 64 MiB.
	MaxPendingRecordsPerLog int
	MaxPendingBytesPerLog   int64
	// ProxyRecordsPerSecond, ProxyBytesPerSecond, LogRecordsPerSecond and
	// LogBytesPerSecond rate-limit writes (payload bytes) on the whole
	// proxy and per log. Over the limit a write gets CODE_OVER_CAPACITY
	// (definite). Bursts are one second's worth (and at least one request
	// of the largest size). 0 means unlimited (the default).
	ProxyRecordsPerSecond, ProxyBytesPerSecond float64
	LogRecordsPerSecond, LogBytesPerSecond     float64

	// MaxRecordBytes bounds one record's payload. Default 1 MiB.
	MaxRecordBytes int
	// MaxBulkRecords bounds the records of one WriteBulk. Default 10000.
	MaxBulkRecords int
	// MaxMessageBytes bounds one request message on the wire; larger ones
	// are refused before they are read into memory (resource_exhausted).
	// Default 16 MiB.
	MaxMessageBytes int
	// MaxConcurrentStreams bounds the concurrent requests (HTTP/2 streams)
	// of one client connection. Default 1000.
	MaxConcurrentStreams int

	// IdempotencyWindowEntries is how many entries at the end of a log a
	// new owner reads back to rebuild the dedup table of idempotent
	// writes. A retry whose original landed further back than this when
	// the log changed owner may be appended again (a duplicate). Larger
	// windows cost a longer takeover. Default 4096 (with the default
	// batching at most 256 MiB, usually far less).
	IdempotencyWindowEntries int
	// MaxProducersPerLog bounds the dedup table of one log; the least
	// recently used producer is forgotten beyond it (its retries may then
	// duplicate). Default 10000.
	MaxProducersPerLog int
	// ProducerRanges is how many runs of recent sequences (a run: records
	// of one request stored in one entry) the table remembers per
	// producer; retries of older sequences get CODE_SEQUENCE_TOO_OLD.
	// Default 16.
	ProducerRanges int

	// CacheBytesPerLog bounds the tail cache of one log (payloads plus a
	// fixed overhead per record). Readers further behind than it read from
	// the bookies themselves. Default 16 MiB.
	CacheBytesPerLog int64
	// MaxCachedLogs bounds the logs with a tail cache. Default 1024.
	MaxCachedLogs int
	// CacheIdleTimeout is how long a tail cache lives without readers.
	// Default 30 s.
	CacheIdleTimeout time.Duration
	// MaxReaders bounds concurrent Read streams; beyond it Read gets
	// CODE_OVER_CAPACITY. Default 10000.
	MaxReaders int
	// ReadBatchRecords and ReadBatchBytes bound one ReadResponse. Defaults
	// 512 records and 1 MiB (ReadBatchBytes stays below clients' default
	// receive limit of 16 MiB, with one record always allowed).
	ReadBatchRecords int
	ReadBatchBytes   int

	// DefaultNamespace serves requests that name no namespace. Default
	// "default"; it is created when missing.
	DefaultNamespace string
	// CreateNamespaces lets requests create any namespace they name;
	// otherwise only existing ones (and the default) are served.
	CreateNamespaces bool
	// MaxNamespaces bounds the namespaces opened at once. Default 256.
	MaxNamespaces int
	// Namespace is the template of every namespace the proxy opens
	// (replication, batching, compression, retention, GC, timeouts). Its
	// MetadataURL, Store, Namespace, OwnerID, Ledgers, SessionTTL,
	// MaxRecordBytes, pending bounds, Logger and Registerer are set by the
	// proxy. Default namespace.DefaultConfig (a zero value means the
	// namespace defaults except GCInterval 0: no collector).
	Namespace namespace.Config
	// Ledger configures the ledger client the proxy's namespaces share.
	// Nil: ledger.DefaultConfig() with a 1 ms ExplicitLACDelay (tailing
	// readers see an idle log's last record that soon).
	Ledger *ledger.Config

	// Logger receives events with kebab-case keys; nil discards.
	Logger *slog.Logger
	// Registry receives the proxy's (and its namespaces' and ledger
	// client's) metrics and is what HTTPAddr serves. Nil: a new registry
	// with the Go and process collectors.
	Registry *prometheus.Registry
}

// DefaultConfig returns the defaults documented on Config, for the
// metadata service at url.
func DefaultConfig(url string) Config {
	return Config{
		MetadataURL:              url,
		Cluster:                  "default",
		ListenAddr:               "127.0.0.1:7000",
		AcceptNewLogs:            true,
		SessionTTL:               5 * time.Second,
		AcquireTimeout:           30 * time.Second,
		CloseTimeout:             10 * time.Second,
		ProbationErrors:          3,
		ProbationWindow:          time.Minute,
		ProbationPeriod:          30 * time.Second,
		MaxOwnedLogs:             10000,
		MaxPendingRecordsPerLog:  20000,
		MaxPendingBytesPerLog:    64 << 20,
		MaxRecordBytes:           1 << 20,
		MaxBulkRecords:           10000,
		MaxMessageBytes:          16 << 20,
		MaxConcurrentStreams:     1000,
		IdempotencyWindowEntries: 4096,
		MaxProducersPerLog:       10000,
		ProducerRanges:           16,
		CacheBytesPerLog:         16 << 20,
		MaxCachedLogs:            1024,
		CacheIdleTimeout:         30 * time.Second,
		MaxReaders:               10000,
		ReadBatchRecords:         512,
		ReadBatchBytes:           1 << 20,
		DefaultNamespace:         "default",
		MaxNamespaces:            256,
		Namespace:                namespace.DefaultConfig(""),
	}
}

// withDefaults fills zero fields that have no meaning of their own.
func (c Config) withDefaults() Config {
	d := DefaultConfig(c.MetadataURL)
	setStr := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
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
	setStr(&c.Cluster, d.Cluster)
	setStr(&c.ListenAddr, d.ListenAddr)
	setStr(&c.DefaultNamespace, d.DefaultNamespace)
	setDur(&c.SessionTTL, d.SessionTTL)
	setDur(&c.AcquireTimeout, d.AcquireTimeout)
	setDur(&c.CloseTimeout, d.CloseTimeout)
	setInt(&c.ProbationErrors, d.ProbationErrors)
	setDur(&c.ProbationWindow, d.ProbationWindow)
	setDur(&c.ProbationPeriod, d.ProbationPeriod)
	setInt(&c.MaxOwnedLogs, d.MaxOwnedLogs)
	setInt(&c.MaxPendingRecordsPerLog, d.MaxPendingRecordsPerLog)
	if c.MaxPendingBytesPerLog == 0 {
		c.MaxPendingBytesPerLog = d.MaxPendingBytesPerLog
	}
	setInt(&c.MaxRecordBytes, d.MaxRecordBytes)
	setInt(&c.MaxBulkRecords, d.MaxBulkRecords)
	setInt(&c.MaxMessageBytes, d.MaxMessageBytes)
	setInt(&c.MaxConcurrentStreams, d.MaxConcurrentStreams)
	setInt(&c.IdempotencyWindowEntries, d.IdempotencyWindowEntries)
	setInt(&c.MaxProducersPerLog, d.MaxProducersPerLog)
	setInt(&c.ProducerRanges, d.ProducerRanges)
	if c.CacheBytesPerLog == 0 {
		c.CacheBytesPerLog = d.CacheBytesPerLog
	}
	setInt(&c.MaxCachedLogs, d.MaxCachedLogs)
	setDur(&c.CacheIdleTimeout, d.CacheIdleTimeout)
	setInt(&c.MaxReaders, d.MaxReaders)
	setInt(&c.ReadBatchRecords, d.ReadBatchRecords)
	setInt(&c.ReadBatchBytes, d.ReadBatchBytes)
	setInt(&c.MaxNamespaces, d.MaxNamespaces)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate checks the configuration (with defaults applied). Errors wrap
// dlog.ErrInvalidArgument (dlog.ErrInvalidName for bad names).
func (c Config) Validate() error {
	c = c.withDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: proxy config: %s", dlog.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	if c.ID != "" {
		if err := metadata.ValidateID(c.ID); err != nil {
			return fmt.Errorf("proxy config: id: %w", err)
		}
	}
	if err := dlog.ValidateName(c.DefaultNamespace); err != nil {
		return fmt.Errorf("proxy config: default namespace: %w", err)
	}
	switch {
	case c.Store == nil && c.MetadataURL == "":
		return bad("no metadata URL and no store")
	case c.SessionTTL < time.Second:
		return bad("session TTL %v below 1 s", c.SessionTTL)
	case c.AcquireTimeout < 0 || c.CloseTimeout < 0:
		return bad("timeouts acquire %v, close %v", c.AcquireTimeout, c.CloseTimeout)
	case c.ProbationWindow < 0 || c.ProbationPeriod < 0:
		return bad("probation window %v, period %v", c.ProbationWindow, c.ProbationPeriod)
	case c.MaxOwnedLogs < 1 || c.MaxPendingRecordsPerLog < 1 || c.MaxPendingBytesPerLog < 1:
		return bad("owned logs %d, pending %d records %d bytes", c.MaxOwnedLogs, c.MaxPendingRecordsPerLog, c.MaxPendingBytesPerLog)
	case c.ProxyRecordsPerSecond < 0 || c.ProxyBytesPerSecond < 0 || c.LogRecordsPerSecond < 0 || c.LogBytesPerSecond < 0:
		return bad("negative rate limit")
	case c.MaxRecordBytes < 1 || c.MaxBulkRecords < 1:
		return bad("record limit %d bytes, bulk %d records", c.MaxRecordBytes, c.MaxBulkRecords)
	case c.MaxMessageBytes < c.MaxRecordBytes+1024:
		return bad("max message %d bytes below one record (%d) plus headers", c.MaxMessageBytes, c.MaxRecordBytes)
	case c.MaxConcurrentStreams < 1:
		return bad("max concurrent streams %d", c.MaxConcurrentStreams)
	case c.IdempotencyWindowEntries < 0 || c.MaxProducersPerLog < 1 || c.ProducerRanges < 1:
		return bad("idempotency window %d entries, %d producers, %d ranges", c.IdempotencyWindowEntries, c.MaxProducersPerLog, c.ProducerRanges)
	case c.CacheBytesPerLog < 0 || c.MaxCachedLogs < 0 || c.CacheIdleTimeout < 0:
		return bad("cache %d bytes, %d logs, idle %v", c.CacheBytesPerLog, c.MaxCachedLogs, c.CacheIdleTimeout)
	case c.MaxReaders < 1 || c.ReadBatchRecords < 1 || c.ReadBatchBytes < 1:
		return bad("readers %d, read batch %d records %d bytes", c.MaxReaders, c.ReadBatchRecords, c.ReadBatchBytes)
	case c.MaxNamespaces < 1:
		return bad("max namespaces %d", c.MaxNamespaces)
	}
	return nil
}
