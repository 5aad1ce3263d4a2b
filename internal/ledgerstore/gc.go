package ledgerstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/dlog-io/dlog/internal/entrylog"
)

// CompactStats says what one compaction pass did.
type CompactStats struct {
	LogsChecked   int   // finished logs whose live ratio was computed
	LogsCompacted int   // logs whose live entries were copied
	LogsRemoved   int   // logs deleted (after compaction, or with nothing live)
	BytesCopied   int64 // record bytes copied into the current log
	BytesRemoved  int64 // file bytes deleted
}

var errStopped = errors.New("ledgerstore: compaction stopped by Close")

func (s *Store) gcLoop() {
	t := time.NewTicker(s.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-t.C:
			st, err := s.Compact()
			switch {
			case errors.Is(err, errStopped), errors.Is(err, ErrClosed):
				return
			case err != nil:
				s.log.Error("compaction pass failed", "err", err)
			case st.LogsRemoved > 0:
				s.log.Info("compaction pass", "logs-compacted", st.LogsCompacted,
					"logs-removed", st.LogsRemoved, "bytes-copied", st.BytesCopied, "bytes-removed", st.BytesRemoved)
			}
		}
	}
}

// Compact runs one garbage-collection pass now (the background goroutine
// runs the same every GCInterval): for each finished entry log, the bytes of
// its records that belong to live ledgers, divided by its size, is its live
// ratio; a log with nothing live is removed, one below CompactionThreshold
// has its live entries copied into the current log, re-indexed (synced) and
// is then removed. Passes are serialised. Reads running meanwhile never
// fail because of it.
func (s *Store) Compact() (CompactStats, error) {
	if err := s.enter(); err != nil {
		return CompactStats{}, err
	}
	defer s.exit()
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var st CompactStats
	for _, id := range s.finishedLogs() {
		if s.stopping() {
			return st, errStopped
		}
		if err := s.collectLog(id, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

func (s *Store) stopping() bool {
	select {
	case <-s.stopc:
		return true
	default:
		return false
	}
}

// finishedLogs returns the logs nothing will append to any more and no
// flush in progress may still index into.
func (s *Store) finishedLogs() []int64 {
	s.writers.Lock()
	limit := s.logs.CurrentID()
	for _, start := range s.writers.starts {
		limit = min(limit, start)
	}
	s.writers.Unlock()
	var ids []int64
	for _, id := range s.logs.IDs() {
		if id < limit && !s.gcSkip[id] {
			ids = append(ids, id)
		}
	}
	return ids
}

// logUsage returns the indexed record bytes per ledger of a log.
func (s *Store) logUsage(logID int64) (map[int64]int64, error) {
	lower, upper := logUsageBounds(logID)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("ledgerstore: usage of log %d: %w", logID, err)
	}
	usage := make(map[int64]int64)
	for ok := it.First(); ok; ok = it.Next() {
		_, ledgerID, err := decodeUsageKey(it.Key())
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("%w: usage key %x", ErrCorrupt, it.Key())
		}
		n, err := decodeUsageValue(it.Value())
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("%w: usage of log %d ledger %d", ErrCorrupt, logID, ledgerID)
		}
		usage[ledgerID] = n
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("ledgerstore: usage of log %d: %w", logID, err)
	}
	return usage, nil
}

func (s *Store) collectLog(logID int64, st *CompactStats) error {
	size, err := s.logs.Size(logID)
	if err != nil {
		return fmt.Errorf("ledgerstore: %w", err)
	}
	usage, err := s.logUsage(logID)
	if err != nil {
		return err
	}
	var live int64
	s.mu.RLock()
	for ledgerID, n := range usage {
		if s.liveLocked(ledgerID) {
			live += n
		}
	}
	s.mu.RUnlock()
	st.LogsChecked++
	if live > 0 {
		data := max(size-entrylog.FileHeaderSize, 1)
		if float64(live)/float64(data) >= s.cfg.CompactionThreshold {
			return nil
		}
		ok, err := s.compactLog(logID, usage, st)
		if err != nil || !ok {
			return err
		}
	}
	return s.removeLog(logID, size, st)
}

type move struct {
	ledgerID, entryID int64
	from, to          entrylog.Location
}

// compactLog copies the live records of a log into the current log and
// re-indexes them. It reports false when the log must be kept (its scan
// stopped early and the index still points into it).
func (s *Store) compactLog(logID int64, usage map[int64]int64, st *CompactStats) (bool, error) {
	sc, err := s.logs.Scanner(logID)
	if err != nil {
		return false, fmt.Errorf("ledgerstore: compact log %d: %w", logID, err)
	}
	defer sc.Close()
	token := s.registerWriter()
	defer s.unregisterWriter(token)
	st.LogsCompacted++
	var moves []move
	var chunk int64
	for sc.Next() {
		rec := sc.Record()
		if !s.live(rec.LedgerID) {
			continue
		}
		from := entrylog.Location{LogID: logID, Offset: sc.Offset(), Size: int32(len(rec.Payload))}
		cur, found, err := s.lookup(rec.LedgerID, rec.EntryID)
		if err != nil {
			return false, err
		}
		if !found || cur != from {
			continue // deleted, or superseded by a later copy
		}
		to, err := s.logs.Append(rec.LedgerID, rec.EntryID, rec.Payload)
		if err != nil {
			return false, fmt.Errorf("ledgerstore: compact log %d: %w", logID, err)
		}
		moves = append(moves, move{rec.LedgerID, rec.EntryID, from, to})
		chunk += entrylog.RecordSize(len(rec.Payload))
		if chunk >= s.cfg.CompactionChunkBytes {
			if err := s.commitMoves(moves, st); err != nil {
				return false, err
			}
			moves, chunk = moves[:0], 0
			if s.stopping() {
				return false, errStopped
			}
		}
	}
	if err := s.commitMoves(moves, st); err != nil {
		return false, err
	}
	if scanErr := sc.Err(); scanErr != nil {
		// Records past a bad one cannot be found by scanning. A crash only
		// leaves garbage after every synced record, but corruption in the
		// middle could hide live entries: check the index before removing.
		referenced, err := s.indexReferences(logID, usage)
		if err != nil {
			return false, err
		}
		if referenced {
			s.gcSkip[logID] = true
			s.log.Error("entry log kept: unreadable record and still indexed", "log-id", logID, "err", scanErr)
			return false, nil
		}
		s.log.Warn("entry log scan stopped early; nothing after it is indexed", "log-id", logID, "err", scanErr)
	}
	return true, nil
}

// commitMoves syncs the copies and points the index at them, for each entry
// whose index still points at the old place (a delete or a newer add since
// the lookup wins).
func (s *Store) commitMoves(moves []move, st *CompactStats) error {
	if len(moves) == 0 {
		return nil
	}
	var ids []int64
	for _, m := range moves {
		if n := len(ids); n == 0 || ids[n-1] != m.to.LogID {
			ids = append(ids, m.to.LogID)
		}
	}
	if err := s.logs.Sync(ids...); err != nil {
		return fmt.Errorf("ledgerstore: compaction: %w", err)
	}
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	usage := make(usageDelta)
	var copied int64
	for _, m := range moves {
		cur, found, err := s.lookup(m.ledgerID, m.entryID)
		if err != nil {
			return err
		}
		if !found || cur != m.from {
			continue
		}
		if err := b.Set(indexKey(m.ledgerID, m.entryID), indexValue(m.to), nil); err != nil {
			return fmt.Errorf("ledgerstore: compaction: %w", err)
		}
		n := entrylog.RecordSize(int(m.to.Size))
		usage[[2]int64{m.to.LogID, m.ledgerID}] += n
		copied += n
	}
	if err := s.addUsage(b, usage); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("ledgerstore: compaction: index commit: %w", err)
	}
	st.BytesCopied += copied
	s.metrics.compactedBytes.Add(float64(copied))
	return nil
}

// indexReferences reports whether any index entry of the ledgers that have
// bytes in a log points into it.
func (s *Store) indexReferences(logID int64, usage map[int64]int64) (bool, error) {
	for ledgerID := range usage {
		lower, upper := ledgerIndexBounds(ledgerID)
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			return false, fmt.Errorf("ledgerstore: index scan: %w", err)
		}
		found := false
		for ok := it.First(); ok && !found; ok = it.Next() {
			loc, err := decodeIndexValue(it.Value())
			found = err != nil || loc.LogID == logID
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return false, fmt.Errorf("ledgerstore: index scan: %w", err)
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}

// removeLog forgets a log's usage (synced) and then deletes the file, so a
// crash in between leaves a file with no usage, which the next pass removes.
func (s *Store) removeLog(logID, size int64, st *CompactStats) error {
	lower, upper := logUsageBounds(logID)
	s.indexMu.Lock()
	err := s.db.DeleteRange(lower, upper, pebble.Sync)
	s.indexMu.Unlock()
	if err != nil {
		return fmt.Errorf("ledgerstore: forget usage of log %d: %w", logID, err)
	}
	if err := s.logs.Remove(logID); err != nil {
		return fmt.Errorf("ledgerstore: %w", err)
	}
	st.LogsRemoved++
	st.BytesRemoved += size
	s.metrics.logsRemoved.Inc()
	return nil
}
