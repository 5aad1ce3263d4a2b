package ledgerstore

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Store. Zero fields take DefaultConfig's values in
// Open, except Dir which is required.
type Config struct {
	// FS is the file system for the entry logs and the pebble index; nil
	// means vfs.Default. Tests pass a crashable or error-injecting vfs.
	FS vfs.FS
	// Dir holds the store: Dir/logs (entry logs) and Dir/index (pebble).
	Dir string
	// EntryLogMaxFileSizeBytes: an entry log is finished and a new one
	// started past this size. Default 512 MiB. Compaction rewrites whole
	// logs, so smaller logs reclaim space sooner at the cost of more files.
	EntryLogMaxFileSizeBytes int64
	// EntryLogWriteBufferBytes: appended data buffered before a write(2).
	// Default 1 MiB.
	EntryLogWriteBufferBytes int
	// WriteCacheMaxBytes bounds the write cache (the part being added to and
	// the part being flushed together). AddEntry fails with
	// ErrWriteCacheFull beyond it. Default 256 MiB. Bigger absorbs longer
	// flush stalls and serves more tail reads from memory.
	WriteCacheMaxBytes int64
	// FlushThresholdBytes: when the part being added to reaches it, the
	// store signals FlushWanted. Default WriteCacheMaxBytes/2, so that a
	// flush of one half can run while the other half fills.
	FlushThresholdBytes int64
	// GCInterval is the period of the background compaction pass. Default
	// 10 min; negative disables the background goroutine (Compact can still
	// be called).
	GCInterval time.Duration
	// CompactionThreshold: a finished entry log whose live bytes are below
	// this fraction of its size is rewritten. Default 0.5. Higher reclaims
	// more space for more copying (write amplification ~1/(1-threshold)).
	CompactionThreshold float64
	// CompactionChunkBytes: compaction syncs and indexes what it copied
	// every this many bytes, bounding the work lost to a crash and the size
	// of one index batch. Default 16 MiB.
	CompactionChunkBytes int64
	// IndexCacheBytes is pebble's block cache size. Default 8 MiB.
	IndexCacheBytes int64
	// SlowOpThreshold: flushes and syncs slower than this are logged at
	// warn level. Default 1 s.
	SlowOpThreshold time.Duration
	// Logger receives operational logs (pebble's too); nil discards them.
	Logger *slog.Logger
	// Registerer, when set, receives the store's Prometheus metrics.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults (Dir still has to be set).
func DefaultConfig() Config {
	return Config{
		FS:                       vfs.Default,
		EntryLogMaxFileSizeBytes: 512 << 20,
		EntryLogWriteBufferBytes: 1 << 20,
		WriteCacheMaxBytes:       256 << 20,
		FlushThresholdBytes:      128 << 20,
		GCInterval:               10 * time.Minute,
		CompactionThreshold:      0.5,
		CompactionChunkBytes:     16 << 20,
		IndexCacheBytes:          8 << 20,
		SlowOpThreshold:          time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.FS == nil {
		c.FS = d.FS
	}
	if c.EntryLogMaxFileSizeBytes == 0 {
		c.EntryLogMaxFileSizeBytes = d.EntryLogMaxFileSizeBytes
	}
	if c.EntryLogWriteBufferBytes == 0 {
		c.EntryLogWriteBufferBytes = d.EntryLogWriteBufferBytes
	}
	if c.WriteCacheMaxBytes == 0 {
		c.WriteCacheMaxBytes = d.WriteCacheMaxBytes
	}
	if c.FlushThresholdBytes == 0 {
		c.FlushThresholdBytes = c.WriteCacheMaxBytes / 2
	}
	if c.GCInterval == 0 {
		c.GCInterval = d.GCInterval
	}
	if c.CompactionThreshold == 0 {
		c.CompactionThreshold = d.CompactionThreshold
	}
	if c.CompactionChunkBytes == 0 {
		c.CompactionChunkBytes = d.CompactionChunkBytes
	}
	if c.IndexCacheBytes == 0 {
		c.IndexCacheBytes = d.IndexCacheBytes
	}
	if c.SlowOpThreshold == 0 {
		c.SlowOpThreshold = d.SlowOpThreshold
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports a configuration error (after defaults are applied by
// Open; call it on DefaultConfig-based values).
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("ledgerstore: config: Dir is empty")
	case c.EntryLogMaxFileSizeBytes < 4<<10:
		return fmt.Errorf("ledgerstore: config: EntryLogMaxFileSizeBytes %d below 4 KiB", c.EntryLogMaxFileSizeBytes)
	case c.EntryLogWriteBufferBytes < 0:
		return fmt.Errorf("ledgerstore: config: EntryLogWriteBufferBytes %d negative", c.EntryLogWriteBufferBytes)
	case c.WriteCacheMaxBytes <= 0:
		return fmt.Errorf("ledgerstore: config: WriteCacheMaxBytes %d not positive", c.WriteCacheMaxBytes)
	case c.FlushThresholdBytes <= 0 || c.FlushThresholdBytes > c.WriteCacheMaxBytes:
		return fmt.Errorf("ledgerstore: config: FlushThresholdBytes %d not in (0, WriteCacheMaxBytes]", c.FlushThresholdBytes)
	case c.CompactionThreshold <= 0 || c.CompactionThreshold > 1:
		return fmt.Errorf("ledgerstore: config: CompactionThreshold %v not in (0, 1]", c.CompactionThreshold)
	case c.CompactionChunkBytes <= 0:
		return fmt.Errorf("ledgerstore: config: CompactionChunkBytes %d not positive", c.CompactionChunkBytes)
	case c.IndexCacheBytes < 0:
		return fmt.Errorf("ledgerstore: config: IndexCacheBytes %d negative", c.IndexCacheBytes)
	}
	return nil
}
