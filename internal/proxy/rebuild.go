package proxy

import (
	"context"
	"fmt"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/namespace"
)

// windowStart is the first position of the last `entries` entries of the
// log's completed segments (segments in lssn order).
func windowStart(segs []namespace.SegmentInfo, entries int64) dlog.DLSN {
	start := dlog.InitialDLSN
	need := entries
	for i := len(segs) - 1; i >= 0 && need > 0; i-- {
		sg := segs[i]
		if sg.InProgress || sg.LastEntryID < 0 {
			continue
		}
		n := sg.LastEntryID + 1
		if n >= need {
			return dlog.DLSN{LSSN: sg.LSSN, EntryID: n - need}
		}
		need -= n
		start = dlog.DLSN{LSSN: sg.LSSN}
	}
	return start
}

// rebuildProducers fills a new owner's dedup table from the idempotency
// tags of the records at the end of the log: the last
// IdempotencyWindowEntries entries. w was just opened, so every earlier
// segment is completed (the previous owner's were recovered and fenced)
// and nothing was written through w yet: the log ends at w.LastDLSN().
func (s *Server) rebuildProducers(ctx context.Context, nsp *namespace.Namespace, k logKey, w *namespace.Writer, t *producerTable) error {
	if s.cfg.IdempotencyWindowEntries == 0 {
		return nil
	}
	end := w.LastDLSN()
	if !end.IsValid() {
		return nil // no record yet
	}
	st, err := s.store.GetLogState(ctx, k.ns, k.log)
	if err != nil {
		return err
	}
	if end.Less(st.Truncation) {
		return nil // everything is truncated
	}
	segs, err := nsp.ListSegments(ctx, k.log)
	if err != nil {
		return err
	}
	start := windowStart(segs, int64(s.cfg.IdempotencyWindowEntries))
	r, err := nsp.OpenReader(ctx, k.log, namespace.AtDLSN(start), namespace.ReaderOptions{SkipTruncated: true})
	if err != nil {
		return fmt.Errorf("open reader at %v: %w", start, err)
	}
	defer r.Close()
	mRecs := s.metrics.bookieRecords.WithLabelValues(k.String())
	mEntries := s.metrics.bookieEntries.WithLabelValues(k.String())
	var entry dlog.DLSN
	for {
		recs, err := r.NextBatch(ctx, tailBatchRecords)
		if err != nil {
			return fmt.Errorf("read back the log end: %w", err)
		}
		mRecs.Add(float64(len(recs)))
		mEntries.Add(float64(countEntries(&entry, recs)))
		for _, rec := range recs {
			if rec.ProducerID != "" {
				t.apply(rec.ProducerID, rec.Sequence, rec.DLSN, rec.TxID)
			}
		}
		if !recs[len(recs)-1].DLSN.Less(end) {
			return nil
		}
	}
}
