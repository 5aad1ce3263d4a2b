package journal

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

// Limits that Validate enforces.
const (
	// MinFileSizeBytes is the smallest accepted Config.FileSizeBytes.
	MinFileSizeBytes = 4 << 10
	// MaxRecordBytesLimit is the largest accepted Config.MaxRecordBytes.
	MaxRecordBytesLimit = 1 << 30
	// MaxGroupWaitLimit bounds Config.MaxGroupWait: group commit trades
	// latency for throughput, and more than this is never worth it.
	MaxGroupWaitLimit = 100 * time.Millisecond
)

// Config configures a Journal. Start from DefaultConfig.
type Config struct {
	// Dir holds the journal files (created if missing). One journal per
	// directory; Open takes a lock file in it. Put it on its own disk if
	// you can: every acknowledged write waits for an fdatasync here.
	Dir string
	// BeforeCut, if set, is called by Replay when it has found damage and
	// before it cuts anything (see Cut). An error stops the Replay with
	// nothing cut, and the journal stays unreplayed. A caller that must
	// remember a suspect cut persists that here: once cut, the damage is
	// gone and a later Replay cannot see it.
	BeforeCut func(Cut) error
	// FS is the file system. nil means vfs.Default (the OS). Tests pass a
	// crashable in-memory FS or an errorfs wrapper.
	FS vfs.FS
	// FileSizeBytes is the size each journal file is preallocated to
	// (written with zeros and fsynced before first use, or recycled from a
	// released file of that size), so that a group's fdatasync never has
	// to update the file size. Larger files mean fewer rolls but coarser
	// ReleaseBefore. Default 64 MiB; at least MinFileSizeBytes and large
	// enough for the file header plus one record of MaxRecordBytes.
	FileSizeBytes int64
	// RecycleFiles is how many released files ReleaseBefore keeps (renamed
	// <id>.journal.free) to become later journal files instead of
	// zero-filling new ones: a new file costs a rename rather than writing
	// FileSizeBytes of zeros, which competes with the journal's own
	// fdatasyncs. Released files beyond it are deleted. Default 4; 0
	// deletes every released file. Costs up to RecycleFiles*FileSizeBytes
	// of disk.
	RecycleFiles int
	// MaxRecordBytes is the largest record payload accepted. Larger
	// appends fail with ErrRecordTooLarge without affecting others.
	// Default 8 MiB; at most MaxRecordBytesLimit.
	MaxRecordBytes int
	// MaxGroupBytes stops the group-commit wait early: once this many
	// bytes are queued the writer starts the next group at once. Default
	// 512 KiB (BookKeeper's journalBufferedWritesThreshold).
	MaxGroupBytes int
	// MaxGroupWait is the longest the writer waits for more records before
	// writing a group, and only when recent groups showed concurrency (it
	// waits for about as many records as the last groups held). A lone
	// appender never waits. 0 disables waiting: groups then form only from
	// records that arrive while the previous sync is in flight. Default
	// 1 ms; at most MaxGroupWaitLimit. Higher adds latency under
	// concurrency for fewer, larger syncs.
	MaxGroupWait time.Duration
	// MaxQueueBytes bounds the framed bytes queued and not yet handed to
	// the disk. When full, Append fails with ErrOverloaded and AppendSync
	// waits for room. Memory use is at most about twice this (the queue
	// plus the group being written). Default 32 MiB; at least
	// MaxRecordBytes plus the 8-byte record header.
	MaxQueueBytes int
	// OnGroupDone, if not nil, is called on the writer goroutine after the
	// callbacks of each group whose fdatasync succeeded (of each part, when
	// a roll splits a group), with the end position of its last record. It
	// runs after those callbacks and before any later one, and never for
	// records that failed. With it a caller can have its callbacks only
	// collect records and then act on the whole group at once (one lock,
	// one wake-up per group). Like callbacks it must be quick. Default nil.
	OnGroupDone func(end Position)
	// SlowSyncThreshold is the fdatasync duration above which a warning is
	// logged. Default 1 s.
	SlowSyncThreshold time.Duration
	// Logger receives warnings (cut tails, slow syncs) and errors (sticky
	// failures). nil discards.
	Logger *slog.Logger
	// Registerer, if not nil, receives the journal's Prometheus metrics
	// (names start with dlog_journal_); Close unregisters them. Use one
	// registerer per journal, or wrap it with prometheus.WrapRegistererWith.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the default configuration for a journal in dir.
func DefaultConfig(dir string) Config {
	return Config{
		Dir:               dir,
		FileSizeBytes:     64 << 20,
		RecycleFiles:      4,
		MaxRecordBytes:    8 << 20,
		MaxGroupBytes:     512 << 10,
		MaxGroupWait:      time.Millisecond,
		MaxQueueBytes:     32 << 20,
		SlowSyncThreshold: time.Second,
	}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("journal: config: Dir is empty")
	case c.MaxRecordBytes < 1 || c.MaxRecordBytes > MaxRecordBytesLimit:
		return fmt.Errorf("journal: config: MaxRecordBytes %d out of [1, %d]", c.MaxRecordBytes, MaxRecordBytesLimit)
	case c.FileSizeBytes < MinFileSizeBytes:
		return fmt.Errorf("journal: config: FileSizeBytes %d below %d", c.FileSizeBytes, MinFileSizeBytes)
	case c.FileSizeBytes < fileHeaderSize+recordHeaderSize+int64(c.MaxRecordBytes):
		return fmt.Errorf("journal: config: FileSizeBytes %d cannot hold a record of MaxRecordBytes %d", c.FileSizeBytes, c.MaxRecordBytes)
	case c.RecycleFiles < 0:
		return fmt.Errorf("journal: config: RecycleFiles %d negative", c.RecycleFiles)
	case c.MaxGroupBytes < 1:
		return fmt.Errorf("journal: config: MaxGroupBytes %d below 1", c.MaxGroupBytes)
	case c.MaxGroupWait < 0 || c.MaxGroupWait > MaxGroupWaitLimit:
		return fmt.Errorf("journal: config: MaxGroupWait %v out of [0, %v]", c.MaxGroupWait, MaxGroupWaitLimit)
	case c.MaxQueueBytes < c.MaxRecordBytes+recordHeaderSize:
		return fmt.Errorf("journal: config: MaxQueueBytes %d cannot hold a record of MaxRecordBytes %d", c.MaxQueueBytes, c.MaxRecordBytes)
	case c.SlowSyncThreshold <= 0:
		return fmt.Errorf("journal: config: SlowSyncThreshold %v not positive", c.SlowSyncThreshold)
	}
	return nil
}
