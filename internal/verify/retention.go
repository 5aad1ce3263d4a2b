package verify

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
)

// Retention deletes whole old segments on the collector's own schedule,
// not at a client's request, so the history has no truncate to excuse the
// records it removes. The roll-retention nemesis records one: it watches
// every log's segments and, before any collector may act and then every
// retentionRecordEvery, records an indeterminate truncate (process
// "retention") to the first segment that retention could not yet collect
// retentionMargin from now. Any collection at time t removes only
// segments completed before t − retention, which the truncate recorded at
// most retentionRecordEvery before t covers (t − retention < recorded +
// margin − retention). The checker then treats retention exactly like a
// client's truncation: records below the final truncation point may go,
// nothing above it.
const (
	retentionPeriod      = 6 * time.Second
	retentionMargin      = 3 * time.Second
	retentionRecordEvery = time.Second
	// retentionFinalMargin covers a collector pass that read the log's
	// retention before it was switched off and commits late.
	retentionFinalMargin = 30 * time.Second
)

var _ = register(&Scenario{
	Name: "roll-retention",
	Summary: "small segments (32 KiB) collected by a 6 s retention (collector every second) while 2 slow readers " +
		"lag in old segments and bookies are killed",
	Guarantees: "G1 with retention (nothing above the truncation point it moves is lost), G6 across collected " +
		"segments, G7 (truncation point monotonic)",
	Cluster: func(c *ClusterConfig) {
		c.Bookies = 4
		c.SegmentRollBytes = 32 << 10
		c.GCInterval = time.Second
	},
	Workload: func(w *WorkloadConfig) {
		w.PayloadPad = 256 // a roll every ~100 records: collections all the time
		w.SlowReaders = 2
		w.SlowReaderDelay = 30 * time.Millisecond
	},
	Nemesis: func(ctx context.Context, r *Run) error {
		rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		var wg sync.WaitGroup
		defer func() {
			// Switch retention off, then cover any collector pass still
			// working with the old setting, then stop recording.
			for _, l := range r.W.Logs() {
				sctx, cancel := context.WithTimeout(rctx, 10*time.Second)
				if err := r.C.NS.SetRetention(sctx, l, 0); err != nil {
					r.Note("retention off %s: %v", l, err)
				}
				cancel()
			}
			r.recordRetention(rctx, retentionFinalMargin)
			stop()
			wg.Wait()
			for _, l := range r.W.Logs() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				st, err := r.C.Store.GetLogState(sctx, namespaceName, l)
				cancel()
				if err == nil {
					r.Note("%s: retention moved the truncation point to %v (%d segments left)", l, st.Truncation, len(st.Segments))
				}
			}
		}()
		// Cover the first collections before enabling retention.
		r.recordRetention(rctx, retentionMargin)
		wg.Go(func() {
			for pause(rctx, retentionRecordEvery) {
				r.recordRetention(rctx, retentionMargin)
			}
		})
		for _, l := range r.W.Logs() {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := r.C.NS.SetRetention(sctx, l, retentionPeriod)
			cancel()
			if err != nil {
				return fmt.Errorf("set retention of %s: %w", l, err)
			}
		}
		for r.Wait(ctx, r.Jitter(4*time.Second, 8*time.Second)) {
			if err := r.killAndRestartBookie(ctx); err != nil {
				return err
			}
		}
		return nil
	},
})

// recordRetention records, for every log, an indeterminate truncate up to
// the first segment that retention cannot collect before now + margin. A
// log whose state cannot be read records nothing; then the previous
// record must still cover (the metadata is unreachable for the collector
// too only if the fault is on its links as well, which this scenario's
// nemesis never does).
func (r *Run) recordRetention(ctx context.Context, margin time.Duration) {
	cutoff := time.Now().Add(margin - retentionPeriod)
	for _, l := range r.W.Logs() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := r.C.Store.GetLogState(sctx, namespaceName, l)
		cancel()
		if err != nil {
			continue
		}
		target, ok := retentionTarget(st.Segments, cutoff)
		if !ok {
			continue
		}
		op := r.Rec.InvokeTruncate("retention", histLog(l), target)
		_ = op.Error(fmt.Errorf("%w: retention may collect every segment before %v", dlog.ErrIndeterminate, target))
	}
}

// retentionTarget is the start of the first segment that is not a
// completed one completed before cutoff (collection deletes only such a
// prefix); false when no segment could be collected.
func retentionTarget(segs []metadata.Segment, cutoff time.Time) (dlog.DLSN, bool) {
	for i, s := range segs {
		if s.State == metadata.SegmentCompleted && !s.Completed.IsZero() && s.Completed.Before(cutoff) {
			continue
		}
		if i == 0 {
			return dlog.DLSN{}, false
		}
		return dlog.DLSN{LSSN: s.LSSN}, true
	}
	if len(segs) == 0 {
		return dlog.DLSN{}, false
	}
	return dlog.DLSN{LSSN: segs[len(segs)-1].LSSN + 1}, true
}
