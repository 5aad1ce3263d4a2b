package ledgerstore

import (
	"bytes"
	"fmt"
	"maps"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/dlog-io/dlog/internal/entrylog"
)

// Flush makes durable, atomically with mark, every entry added and every
// state change (fence, LAC, master key) made before Flush was called:
//
//  1. swap the write cache: adds from now on go to a fresh half, reads
//     still see the half being flushed;
//  2. append its entries, sorted by (ledger, entry), to the current entry
//     log and fsync it;
//  3. commit index entries, ledger states, per-log usage and mark in one
//     synced pebble batch;
//  4. drop the flushed half.
//
// mark is opaque (the owner's journal position) and is what CheckpointMark
// returns afterwards. On error nothing is reported persisted: the mark is
// unchanged, the entries go back into the write cache and the changed
// states stay dirty for the next Flush, and everything stays readable. A
// failed entry log is abandoned; the next Flush writes a new one. Flush
// calls are serialised.
func (s *Store) Flush(mark []byte) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	start := time.Now()
	if len(mark) == 0 {
		mark = nil
	}
	mark = bytes.Clone(mark)

	s.mu.Lock()
	snap := &flushSnap{cache: s.mu.active, states: make(map[int64]ledgerMeta, len(s.mu.dirty))}
	for id := range s.mu.dirty {
		m := s.mu.ledgers[id]
		snap.states[id] = ledgerMeta{deleted: m.deleted, fenced: m.fenced, lac: m.lac, masterKey: bytes.Clone(m.masterKey)}
	}
	clear(s.mu.dirty)
	s.mu.active = newWriteCache()
	s.mu.flushing = snap
	entries := snap.cache.list()
	s.mu.Unlock()
	sortEntries(entries) // outside the lock: adds and reads go on meanwhile

	token := s.registerWriter()
	defer s.unregisterWriter(token)

	bytesFlushed, err := s.writeSnapshot(snap, entries, mark)
	if err != nil {
		s.restoreSnapshot(snap)
		s.metrics.flushErrors.Inc()
		s.log.Error("flush failed", "entries", len(entries), "err", err)
		return err
	}
	s.mu.Lock()
	s.mu.flushing = nil
	s.mu.mark = mark
	s.mu.Unlock()
	took := time.Since(start)
	s.metrics.flushSeconds.Observe(took.Seconds())
	s.metrics.flushBytes.Add(float64(bytesFlushed))
	if took > s.cfg.SlowOpThreshold {
		s.log.Warn("slow flush", "entries", len(entries), "bytes", bytesFlushed, "took", took)
	}
	return nil
}

// registerWriter records that a writer may append to the current entry log
// or later ones, so compaction leaves them alone until it unregisters.
func (s *Store) registerWriter() uint64 {
	s.writers.Lock()
	defer s.writers.Unlock()
	s.writers.next++
	s.writers.starts[s.writers.next] = s.logs.CurrentID()
	return s.writers.next
}

func (s *Store) unregisterWriter(token uint64) {
	s.writers.Lock()
	defer s.writers.Unlock()
	delete(s.writers.starts, token)
}

type usageDelta map[[2]int64]int64 // (log, ledger) → record bytes

func (s *Store) writeSnapshot(snap *flushSnap, entries []cachedEntry, mark []byte) (int64, error) {
	locs := make([]entrylog.Location, len(entries))
	var logIDs []int64
	var total int64
	for i, e := range entries {
		loc, err := s.logs.Append(e.ledgerID, e.entryID, e.data)
		if err != nil {
			return 0, fmt.Errorf("ledgerstore: flush: %w", err)
		}
		locs[i] = loc
		if n := len(logIDs); n == 0 || logIDs[n-1] != loc.LogID {
			logIDs = append(logIDs, loc.LogID)
		}
		total += entrylog.RecordSize(len(e.data))
	}
	syncStart := time.Now()
	if err := s.logs.Sync(logIDs...); err != nil {
		return 0, fmt.Errorf("ledgerstore: flush: %w", err)
	}
	s.metrics.syncSeconds.Observe(time.Since(syncStart).Seconds())

	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	usage := make(usageDelta)
	// Under s.mu: DeleteLedger may have dropped ledgers from the snapshot
	// since the swap; their entries must not be indexed. indexMu keeps it
	// from dropping more until the commit is done.
	s.mu.RLock()
	var err error
	for i, e := range entries {
		if !snap.cache.has(e.ledgerID, e.entryID) {
			continue
		}
		err = b.Set(indexKey(e.ledgerID, e.entryID), indexValue(locs[i]), nil)
		if err != nil {
			break
		}
		usage[[2]int64{locs[i].LogID, e.ledgerID}] += entrylog.RecordSize(len(e.data))
	}
	states := maps.Clone(snap.states)
	s.mu.RUnlock()
	if err != nil {
		return 0, fmt.Errorf("ledgerstore: flush: %w", err)
	}
	for id, m := range states {
		if err := b.Set(ledgerKey(id), ledgerValue(m), nil); err != nil {
			return 0, fmt.Errorf("ledgerstore: flush: %w", err)
		}
	}
	if err := s.addUsage(b, usage); err != nil {
		return 0, err
	}
	if err := b.Set(metaMarkKey, mark, nil); err != nil {
		return 0, fmt.Errorf("ledgerstore: flush: %w", err)
	}
	commitStart := time.Now()
	if err := b.Commit(pebble.Sync); err != nil {
		return 0, fmt.Errorf("ledgerstore: flush: index commit: %w", err)
	}
	s.metrics.commitSeconds.Observe(time.Since(commitStart).Seconds())
	return total, nil
}

// addUsage adds usage deltas to the batch (read-modify-write; indexMu must
// be held so no other commit changes the same keys meanwhile).
func (s *Store) addUsage(b *pebble.Batch, usage usageDelta) error {
	for k, n := range usage {
		key := usageKey(k[0], k[1])
		cur := int64(0)
		v, closer, err := s.db.Get(key)
		switch {
		case err == nil:
			cur, err = decodeUsageValue(v)
			_ = closer.Close()
			if err != nil {
				return fmt.Errorf("%w: usage of log %d ledger %d", ErrCorrupt, k[0], k[1])
			}
		case err != pebble.ErrNotFound:
			return fmt.Errorf("ledgerstore: read usage: %w", err)
		}
		if err := b.Set(key, usageValue(cur+n), nil); err != nil {
			return fmt.Errorf("ledgerstore: usage: %w", err)
		}
	}
	return nil
}

// restoreSnapshot puts a failed flush's entries back into the active write
// cache (unless re-added since) and marks its states dirty again, so that
// nothing is lost and the next Flush retries them.
func (s *Store) restoreSnapshot(snap *flushSnap) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for lid, l := range snap.cache.ledgers {
		if !s.liveLocked(lid) {
			continue
		}
		for eid, d := range l.entries {
			if !s.mu.active.has(lid, eid) {
				s.mu.active.put(lid, eid, d)
			}
		}
	}
	for id := range snap.states {
		if s.liveLocked(id) {
			s.mu.dirty[id] = struct{}{}
		}
	}
	s.mu.flushing = nil
}
