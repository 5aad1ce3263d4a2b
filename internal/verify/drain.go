package verify

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/namespace"
)

// drainLogs writes the final drain of every log to path: per log the final
// metadata (segments with their sealed last entries, the truncation
// point) and every record a fresh reader delivers from the first
// untruncated position to the last record. clock is the history's clock;
// segEpoch names a segment's writer epoch from its metadata (writer id,
// segment number) as the target names the epochs of acknowledgements.
func drainLogs(ctx context.Context, store metadata.Store, ns *namespace.Namespace, logs []string, path string, clock func() int64, segEpoch func(writerID string, lssn int64) string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	dw := history.NewDrainWriter(f)
	for _, log := range logs {
		if err := drainLog(ctx, store, ns, dw, log, clock, segEpoch); err != nil {
			dw.Close()
			f.Close()
			return err
		}
	}
	if err := dw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func drainLog(ctx context.Context, store metadata.Store, ns *namespace.Namespace, dw *history.DrainWriter, log string, clock func() int64, segEpoch func(writerID string, lssn int64) string) error {
	st, err := store.GetLogState(ctx, namespaceName, log)
	if err != nil {
		// Without metadata there is nothing to read: the checker reports
		// the log's acknowledged appends as drain-incomplete.
		if err := dw.Begin(histLog(log), clock(), dlog.DLSN{}, nil); err != nil {
			return err
		}
		return dw.End(fmt.Errorf("read metadata: %w", err))
	}
	segs := make([]history.Segment, 0, len(st.Segments))
	for _, s := range st.Segments {
		hs := history.Segment{LSSN: s.LSSN, State: history.Completed, LastEntryID: s.LastEntryID, Epoch: segEpoch(s.WriterID, s.LSSN)}
		if s.State == metadata.SegmentInProgress {
			hs.State, hs.LastEntryID = history.InProgress, -1
		}
		start := s.StartSequenceID
		hs.StartSeqID = &start
		segs = append(segs, hs)
	}
	if err := dw.Begin(histLog(log), clock(), st.Truncation, segs); err != nil {
		return err
	}
	last, err := ns.LastDLSN(ctx, log)
	switch {
	case errors.Is(err, dlog.ErrNotFound):
		return dw.End(nil) // an empty (or wholly truncated) log
	case err != nil:
		return dw.End(fmt.Errorf("last DLSN: %w", err))
	}
	r, err := ns.OpenReader(ctx, log, namespace.AtStart(), namespace.ReaderOptions{SkipTruncated: true})
	if err != nil {
		return dw.End(fmt.Errorf("open reader: %w", err))
	}
	defer r.Close()
	for {
		rec, err := r.Next(ctx)
		if err != nil {
			return dw.End(fmt.Errorf("read after %v: %w", r.LastDLSN(), err))
		}
		if err := dw.Add(history.DrainRecord{DLSN: rec.DLSN, Value: ValueOf(rec.Payload), TxID: rec.TxID, SeqID: rec.SequenceID}); err != nil {
			return err
		}
		if !rec.DLSN.Less(last) {
			return dw.End(nil)
		}
	}
}
