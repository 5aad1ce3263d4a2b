package bookie

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dlog-io/dlog/internal/metadata"
)

// Limits that Validate enforces.
const (
	// MaxEntryBytesLimit bounds Config.MaxEntryBytes: the journal takes
	// records up to 1 GiB and an entry travels in one gRPC message.
	MaxEntryBytesLimit = 256 << 20
	// MaxMasterKeyBytes is the longest master key a request may carry (the
	// ledger store keeps at most 1 KiB).
	MaxMasterKeyBytes = 1 << 10
)

// DiskStats is one sample of disk space, as the disk monitor sees it.
type DiskStats struct {
	// UsedBytes is what the bookie's own data takes (journal files, entry
	// logs, index); compared with Config.DiskQuotaBytes.
	UsedBytes int64
	// FreeBytes and TotalBytes describe the file system holding the data;
	// zero TotalBytes means unknown (the free-space rule is then skipped).
	FreeBytes, TotalBytes uint64
}

// Config configures a Bookie. Start from DefaultConfig and set Dir and
// ListenAddr.
type Config struct {
	// ID is the bookie's stable identity: its registration and cookie key.
	// Default (empty) = the advertised address. Set it explicitly when the
	// address may change (port 0, DHCP): a bookie refuses a directory whose
	// cookie names another id.
	ID string
	// ListenAddr is where the gRPC server listens, e.g. "0.0.0.0:3181"
	// (port 0 picks a free port). Required.
	ListenAddr string
	// AdvertiseAddr is the address clients should dial, registered in
	// metadata. Default = the listener's address (with the host name
	// instead of an unspecified IP).
	AdvertiseAddr string
	// Dir holds the bookie's data: Dir/COOKIE, Dir/ledgers (entry logs and
	// index) and, unless JournalDir is set, Dir/journal. Required.
	Dir string
	// JournalDir puts the journal elsewhere, ideally on its own disk: every
	// acknowledged add waits for an fdatasync there. Default Dir/journal.
	// It gets its own copy of the cookie, so swapped disks are detected.
	JournalDir string
	// Region and Rack are the bookie's placement labels, registered in
	// metadata and reported by Info. Optional.
	Region, Rack string

	// MaxEntryBytes is the largest entry payload accepted; a larger add is
	// answered STATUS_TOO_LARGE. It also sizes the gRPC message limit (so
	// larger frames are refused before they are allocated) and the
	// journal's record limit. Default 5 MiB; at most MaxEntryBytesLimit.
	MaxEntryBytes int
	// MaxInFlightPerStream bounds requests received on one stream and not
	// yet answered; beyond it requests are answered STATUS_OVERLOADED. It
	// bounds the memory a client can pin (about this many entries). Default
	// 16384 (the client's default pipeline depth).
	MaxInFlightPerStream int
	// MaxLongPollWaiters bounds ReadLAC long polls held at once across all
	// streams; beyond it they are answered STATUS_OVERLOADED. Default 10000.
	MaxLongPollWaiters int
	// DefaultRequestTimeout applies to a request with timeout_ms 0: how long
	// a long poll is held, and how long any request may wait inside the
	// bookie before it is answered STATUS_TIMEOUT. Default 10 s.
	DefaultRequestTimeout time.Duration
	// MaxRequestTimeout caps a request's timeout_ms. Default 5 min.
	MaxRequestTimeout time.Duration

	// FlushInterval is the checkpoint period: every interval (and when the
	// write cache asks) the ledger store is flushed with the journal
	// position everything applied so far ends at, and older journal files
	// are deleted. Shorter means less journal to replay after a crash and
	// less journal disk, at the cost of more, smaller entry-log writes.
	// Default 30 s.
	FlushInterval time.Duration
	// JournalFileSizeBytes is the size journal files are preallocated to.
	// Default 64 MiB (grown if needed to hold one record of MaxEntryBytes).
	JournalFileSizeBytes int64
	// JournalMaxGroupWait is the journal's group-commit wait (see
	// journal.Config.MaxGroupWait). Default 1 ms.
	JournalMaxGroupWait time.Duration
	// WriteCacheMaxBytes bounds the ledger store's write cache (entries
	// applied but not yet flushed to entry logs). Default 256 MiB. When it
	// is full, applying an add waits for a flush (back-pressure).
	WriteCacheMaxBytes int64
	// EntryLogMaxFileSizeBytes is the size at which an entry log is
	// finished (see ledgerstore.Config). Default 512 MiB.
	EntryLogMaxFileSizeBytes int64
	// GCInterval is the ledger store's compaction period. Default 10 min;
	// negative disables background compaction.
	GCInterval time.Duration

	// DiskCheckInterval is the disk monitor's period. Default 10 s.
	DiskCheckInterval time.Duration
	// DiskQuotaBytes caps the bytes the bookie's data may use (0 = no
	// quota). The bookie turns read-only when usage reaches
	// DiskHighWater×quota and writable again below DiskLowWater×quota.
	DiskQuotaBytes int64
	// DiskHighWater and DiskLowWater are fractions of DiskQuotaBytes, with
	// 0 < low < high <= 1; the gap avoids flapping. Default 0.95 and 0.90.
	DiskHighWater, DiskLowWater float64
	// MinFreeBytes: the bookie turns read-only when the file system has less
	// free space than this, and writable again when it has twice as much
	// (or MinFreeBytes + 64 MiB, whichever is less). 0 disables the rule.
	// Default 1 GiB.
	MinFreeBytes uint64
	// DiskUsage samples disk space; nil = the ledger store's and the
	// journal's sizes plus FS.GetDiskUsage. Tests inject their own.
	DiskUsage func() (DiskStats, error)

	// Metadata, when set, is where the bookie registers (under a session
	// lease) and keeps its cookie. nil runs standalone (only the local
	// cookies guard the directories). The bookie does not close it.
	Metadata metadata.Store
	// SessionTTL is the metadata session's lease: how long after a crash
	// the registration stays visible. Default 10 s.
	SessionTTL time.Duration

	// FS is the file system for everything on disk. nil = vfs.Default.
	// Crash tests run the whole bookie on vfs.NewCrashableMem.
	FS vfs.FS
	// Logger receives the bookie's logs; nil discards.
	Logger *slog.Logger
	// Registerer receives the bookie's, the journal's and the ledger
	// store's Prometheus metrics (dlog_bookie_*, dlog_journal_*,
	// dlog_ledgerstore_*); nil registers nothing. Several bookies in one
	// process need one registerer each (or prometheus.WrapRegistererWith).
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults described on Config; Dir and
// ListenAddr still have to be set.
func DefaultConfig() Config {
	return Config{
		MaxEntryBytes:            5 << 20,
		MaxInFlightPerStream:     16384,
		MaxLongPollWaiters:       10000,
		DefaultRequestTimeout:    10 * time.Second,
		MaxRequestTimeout:        5 * time.Minute,
		FlushInterval:            30 * time.Second,
		JournalFileSizeBytes:     64 << 20,
		JournalMaxGroupWait:      time.Millisecond,
		WriteCacheMaxBytes:       256 << 20,
		EntryLogMaxFileSizeBytes: 512 << 20,
		GCInterval:               10 * time.Minute,
		DiskCheckInterval:        10 * time.Second,
		DiskHighWater:            0.95,
		DiskLowWater:             0.90,
		MinFreeBytes:             1 << 30,
		SessionTTL:               10 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.ListenAddr == "":
		return errors.New("bookie: config: ListenAddr is empty")
	case c.Dir == "":
		return errors.New("bookie: config: Dir is empty")
	case c.MaxEntryBytes < 1 || c.MaxEntryBytes > MaxEntryBytesLimit:
		return fmt.Errorf("bookie: config: MaxEntryBytes %d out of [1, %d]", c.MaxEntryBytes, MaxEntryBytesLimit)
	case c.MaxInFlightPerStream < 1:
		return fmt.Errorf("bookie: config: MaxInFlightPerStream %d below 1", c.MaxInFlightPerStream)
	case c.MaxLongPollWaiters < 0:
		return fmt.Errorf("bookie: config: MaxLongPollWaiters %d negative", c.MaxLongPollWaiters)
	case c.DefaultRequestTimeout <= 0:
		return fmt.Errorf("bookie: config: DefaultRequestTimeout %v not positive", c.DefaultRequestTimeout)
	case c.MaxRequestTimeout < c.DefaultRequestTimeout:
		return fmt.Errorf("bookie: config: MaxRequestTimeout %v below DefaultRequestTimeout %v", c.MaxRequestTimeout, c.DefaultRequestTimeout)
	case c.FlushInterval <= 0:
		return fmt.Errorf("bookie: config: FlushInterval %v not positive", c.FlushInterval)
	case c.JournalFileSizeBytes <= 0:
		return fmt.Errorf("bookie: config: JournalFileSizeBytes %d not positive", c.JournalFileSizeBytes)
	case c.JournalMaxGroupWait < 0:
		return fmt.Errorf("bookie: config: JournalMaxGroupWait %v negative", c.JournalMaxGroupWait)
	case c.WriteCacheMaxBytes < int64(c.MaxEntryBytes)+1024:
		return fmt.Errorf("bookie: config: WriteCacheMaxBytes %d cannot hold an entry of MaxEntryBytes %d", c.WriteCacheMaxBytes, c.MaxEntryBytes)
	case c.EntryLogMaxFileSizeBytes <= 0:
		return fmt.Errorf("bookie: config: EntryLogMaxFileSizeBytes %d not positive", c.EntryLogMaxFileSizeBytes)
	case c.DiskCheckInterval <= 0:
		return fmt.Errorf("bookie: config: DiskCheckInterval %v not positive", c.DiskCheckInterval)
	case c.DiskQuotaBytes < 0:
		return fmt.Errorf("bookie: config: DiskQuotaBytes %d negative", c.DiskQuotaBytes)
	case !(0 < c.DiskLowWater && c.DiskLowWater < c.DiskHighWater && c.DiskHighWater <= 1):
		return fmt.Errorf("bookie: config: want 0 < DiskLowWater (%v) < DiskHighWater (%v) <= 1", c.DiskLowWater, c.DiskHighWater)
	case c.Metadata != nil && c.SessionTTL < time.Second:
		return fmt.Errorf("bookie: config: SessionTTL %v below 1 s", c.SessionTTL)
	case c.ID != "":
		if err := metadata.ValidateID(c.ID); err != nil {
			return fmt.Errorf("bookie: config: ID: %w", err)
		}
	}
	return nil
}

// journalDir is where the journal lives.
func (c Config) journalDir(fs vfs.FS) string {
	if c.JournalDir != "" {
		return c.JournalDir
	}
	return fs.PathJoin(c.Dir, "journal")
}

func (c Config) ledgersDir(fs vfs.FS) string { return fs.PathJoin(c.Dir, "ledgers") }
