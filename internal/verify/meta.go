package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/namespace"
)

func namespaceLogOptions() namespace.LogOptions { return namespace.LogOptions{} }

// metaWatch checks the metadata invariants of G7 on every change of every
// log, as the harness's etcd watch sees them (not only the final state):
// segment sequence numbers strictly increase; in-progress segments belong
// to one writer epoch at a time, at most two of them (a roll), checked
// per revision; a completed segment never changes its end or returns to
// in-progress; the truncation point, the max lssn and the max txid never
// move back.
type metaWatch struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     struct {
		sync.Mutex
		violations []string
	}
}

func startMetaWatch(ctx context.Context, store metadata.Store, logs []string) *metaWatch {
	wctx, cancel := context.WithCancel(ctx)
	m := &metaWatch{cancel: cancel}
	for _, l := range logs {
		m.wg.Go(func() { m.watch(wctx, store, l) })
	}
	return m
}

// stop ends the watches and returns the violations seen.
func (m *metaWatch) stop() []string {
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.violations
}

func (m *metaWatch) violate(log string, format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.mu.violations) < 100 {
		m.mu.violations = append(m.mu.violations, log+": "+fmt.Sprintf(format, args...))
	}
}

// logView is one log's metadata as the watch has seen it.
type logView struct {
	segs       map[int64]metadata.Segment
	completed  map[int64]metadata.Segment // first completed form of each segment
	maxLSSN    int64                      // highest segment lssn ever created
	truncation dlog.DLSN
	maxLSSNKey int64
	maxTxID    int64
}

func (m *metaWatch) watch(ctx context.Context, store metadata.Store, log string) {
	v := &logView{segs: map[int64]metadata.Segment{}, completed: map[int64]metadata.Segment{}, maxTxID: -1}
	rev := int64(-1)
	for ctx.Err() == nil {
		if rev < 0 {
			st, err := store.GetLogState(ctx, namespaceName, log)
			if err != nil {
				pause(ctx, 200*time.Millisecond) // metadata unreachable (a fault): try again
				continue
			}
			m.snapshot(log, v, st)
			rev = st.Revision
		}
		evs := store.WatchLog(ctx, namespaceName, log, rev+1)
		cur := int64(0)
		for ev := range evs {
			if ev.Err != nil {
				if !errors.Is(ev.Err, metadata.ErrWatchLagged) && ctx.Err() == nil {
					m.violate(log, "watch ended: %v", ev.Err)
				}
				rev = -1 // re-read and watch again
				break
			}
			if ev.Revision != cur && cur != 0 {
				m.checkRevision(log, v, cur)
			}
			cur = ev.Revision
			m.apply(log, v, ev)
			rev = ev.Revision
		}
		if cur != 0 {
			m.checkRevision(log, v, cur)
		}
	}
}

// snapshot adopts a full read (start, or after a lagged watch), checking
// it against what was seen before.
func (m *metaWatch) snapshot(log string, v *logView, st metadata.LogState) {
	v.segs = map[int64]metadata.Segment{}
	for _, s := range st.Segments {
		m.applySegment(log, v, s, st.Revision)
	}
	if st.Truncation.Less(v.truncation) {
		m.violate(log, "rev %d: truncation point moved back from %v to %v", st.Revision, v.truncation, st.Truncation)
	}
	v.truncation = st.Truncation
	m.checkRevision(log, v, st.Revision)
}

func (m *metaWatch) apply(log string, v *logView, ev metadata.LogEvent) {
	switch ev.Kind {
	case metadata.LogKeySegment:
		if ev.Type == metadata.EventDelete {
			delete(v.segs, ev.Segment.LSSN)
			return
		}
		m.applySegment(log, v, ev.Segment, ev.Revision)
	case metadata.LogKeyTruncation:
		if ev.Type == metadata.EventPut {
			if ev.Truncation.Less(v.truncation) {
				m.violate(log, "rev %d: truncation point moved back from %v to %v", ev.Revision, v.truncation, ev.Truncation)
			}
			v.truncation = ev.Truncation
		}
	case metadata.LogKeyMaxLSSN:
		if ev.Type == metadata.EventPut {
			if ev.Value < v.maxLSSNKey {
				m.violate(log, "rev %d: max lssn moved back from %d to %d", ev.Revision, v.maxLSSNKey, ev.Value)
			}
			v.maxLSSNKey = ev.Value
		}
	case metadata.LogKeyMaxTxID:
		if ev.Type == metadata.EventPut {
			if ev.Value < v.maxTxID {
				m.violate(log, "rev %d: max txid moved back from %d to %d", ev.Revision, v.maxTxID, ev.Value)
			}
			v.maxTxID = ev.Value
		}
	}
}

func (m *metaWatch) applySegment(log string, v *logView, s metadata.Segment, rev int64) {
	if _, known := v.segs[s.LSSN]; !known && v.completed[s.LSSN].LSSN == 0 && s.LSSN <= v.maxLSSN {
		m.violate(log, "rev %d: segment %d created after segment %d (lssn must increase)", rev, s.LSSN, v.maxLSSN)
	}
	v.maxLSSN = max(v.maxLSSN, s.LSSN)
	if c, ok := v.completed[s.LSSN]; ok {
		switch {
		case s.State != metadata.SegmentCompleted:
			m.violate(log, "rev %d: completed segment %d is in progress again", rev, s.LSSN)
		case s.LastEntryID != c.LastEntryID || s.LastSlotID != c.LastSlotID || s.RecordCount != c.RecordCount ||
			s.LastTxID != c.LastTxID || s.LedgerID != c.LedgerID || s.StartSequenceID != c.StartSequenceID:
			m.violate(log, "rev %d: completed segment %d changed its end: %d:%d (%d records) became %d:%d (%d records)",
				rev, s.LSSN, c.LastEntryID, c.LastSlotID, c.RecordCount, s.LastEntryID, s.LastSlotID, s.RecordCount)
		}
	} else if s.State == metadata.SegmentCompleted {
		v.completed[s.LSSN] = s
	}
	v.segs[s.LSSN] = s
}

// checkRevision checks the state reached at the end of revision rev. A
// writer rolls by creating the next segment before completing the
// current one (namespace.Writer.rollSegment), so two in-progress segments
// of one writer epoch are legal for a while; segments of two epochs in
// progress at once, or more than two, are not (G7: at most one writer
// epoch active).
func (m *metaWatch) checkRevision(log string, v *logView, rev int64) {
	n := 0
	writers := map[string]bool{}
	for _, s := range v.segs {
		if s.State == metadata.SegmentInProgress {
			n++
			writers[s.WriterID] = true
		}
	}
	switch {
	case len(writers) > 1:
		m.violate(log, "rev %d: segments of %d writer epochs in progress at once", rev, len(writers))
	case n > 2:
		m.violate(log, "rev %d: %d segments in progress at once", rev, n)
	}
}
