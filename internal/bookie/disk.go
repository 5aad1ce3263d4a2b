package bookie

import (
	"fmt"
	"strings"
	"time"
)

// runDiskMonitor samples disk usage every DiskCheckInterval.
func (b *Bookie) runDiskMonitor() {
	t := time.NewTicker(b.cfg.DiskCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stopc:
			return
		case <-t.C:
			b.checkDisk()
		}
	}
}

// CheckDisk samples disk usage now and updates the read-only state; the
// monitor goroutine does the same periodically. For tests and tools.
func (b *Bookie) CheckDisk() { b.checkDisk() }

// diskFullReason applies the thresholds to a sample: the reason the bookie
// should be read-only, or "". wasFull selects the resume thresholds
// (hysteresis). Pure.
func diskFullReason(c Config, d DiskStats, wasFull bool) string {
	var reasons []string
	if c.DiskQuotaBytes > 0 {
		limit := c.DiskHighWater
		if wasFull {
			limit = c.DiskLowWater
		}
		if float64(d.UsedBytes) >= limit*float64(c.DiskQuotaBytes) {
			reasons = append(reasons, fmt.Sprintf("disk quota: %d of %d bytes used (limit %.0f%%)",
				d.UsedBytes, c.DiskQuotaBytes, limit*100))
		}
	}
	if c.MinFreeBytes > 0 && d.TotalBytes > 0 {
		need := c.MinFreeBytes
		if wasFull {
			need = min(2*c.MinFreeBytes, c.MinFreeBytes+64<<20)
		}
		if d.FreeBytes < need {
			reasons = append(reasons, fmt.Sprintf("disk nearly full: %d bytes free (need %d)", d.FreeBytes, need))
		}
	}
	return strings.Join(reasons, "; ")
}

func (b *Bookie) checkDisk() {
	d, err := b.diskUsage()
	if err != nil {
		b.log.Warn("disk usage check failed", "err", err)
		return
	}
	b.health.Lock()
	prevFree := b.health.disk.FreeBytes
	b.health.disk = d
	was := b.health.diskFull
	now := diskFullReason(b.cfg, d, was != "")
	b.health.diskFull = now
	ro := b.readOnlyReasonLocked() != ""
	b.health.Unlock()
	b.readOnly.Store(ro)
	if ro {
		b.met.readOnly.Set(1)
	} else {
		b.met.readOnly.Set(0)
	}
	switch {
	case was == "" && now != "":
		b.log.Warn("bookie turns read-only", "reason", now)
		b.signalStateChange()
	case was != "" && now == "":
		b.log.Info("bookie is writable again", "used-bytes", d.UsedBytes, "free-bytes", d.FreeBytes)
		b.signalStateChange()
	case prevFree > 0 && (d.FreeBytes > prevFree+prevFree/20 || d.FreeBytes < prevFree-prevFree/20):
		b.signalStateChange() // registration carries free bytes
	}
	if now != "" {
		// Reclaim space from deleted ledgers now rather than at the next
		// compaction period.
		if _, err := b.store.Compact(); err != nil {
			b.log.Warn("compaction while read-only failed", "err", err)
		}
	}
}

// diskUsage samples usage with Config.DiskUsage, or: the ledger store's
// size plus the journal files', and the file system's free and total bytes
// when the FS can tell (zero otherwise).
func (b *Bookie) diskUsage() (DiskStats, error) {
	if b.cfg.DiskUsage != nil {
		return b.cfg.DiskUsage()
	}
	used, err := b.store.DiskUsage()
	if err != nil {
		return DiskStats{}, err
	}
	dir := b.cfg.journalDir(b.fs)
	names, err := b.fs.List(dir)
	if err != nil {
		return DiskStats{}, fmt.Errorf("bookie: list %s: %w", dir, err)
	}
	for _, n := range names {
		if fi, err := b.fs.Stat(b.fs.PathJoin(dir, n)); err == nil && !fi.IsDir() {
			used += fi.Size()
		}
	}
	d := DiskStats{UsedBytes: used}
	if du, err := b.fs.GetDiskUsage(b.cfg.Dir); err == nil {
		d.FreeBytes, d.TotalBytes = du.AvailBytes, du.TotalBytes
	}
	return d, nil
}
