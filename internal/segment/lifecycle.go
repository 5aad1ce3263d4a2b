package segment

import (
	"fmt"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
)

// Tail is what the end of a segment's ledger holds, found by reading it
// backwards after the ledger was closed (recovery) or known by the writer
// that wrote every entry (roll, close).
type Tail struct {
	// LastEntryID is the ledger's last entry (-1: no entry at all).
	LastEntryID int64
	// LastSlotID is the slot of the last record (of any kind) in that
	// entry; -1 when there is no entry.
	LastSlotID int64
	// RecordCount is the number of user records in the segment: the base
	// position of the last entry plus its user records.
	RecordCount int64
	// LastTxID is the txid of the last user record; -1 when there is none.
	LastTxID int64
	// EndOfStream: the last entry holds the end-of-stream record.
	EndOfStream bool
}

// EmptyTail is the tail of a ledger without entries.
var EmptyTail = Tail{LastEntryID: -1, LastSlotID: -1, LastTxID: -1}

// Validate checks the tail's internal consistency. Errors: one wrapping
// ErrInvalidState naming the first inconsistency.
func (t Tail) Validate() error {
	switch {
	case t.LastEntryID < -1:
		return fmt.Errorf("%w: tail: last entry %d", ErrInvalidState, t.LastEntryID)
	case t.LastEntryID == -1 && (t.RecordCount != 0 || t.EndOfStream || t.LastSlotID != -1):
		return fmt.Errorf("%w: tail: records without entries", ErrInvalidState)
	case t.LastEntryID >= 0 && t.LastSlotID < 0:
		return fmt.Errorf("%w: tail: entry %d without a slot", ErrInvalidState, t.LastEntryID)
	case t.RecordCount < 0:
		return fmt.Errorf("%w: tail: %d records", ErrInvalidState, t.RecordCount)
	case t.RecordCount > 0 && t.LastTxID < 0:
		return fmt.Errorf("%w: tail: %d records but no last txid", ErrInvalidState, t.RecordCount)
	}
	return nil
}

// Empty reports whether the segment holds nothing a reader would see: no
// user record and no end-of-stream marker. Such a segment is deleted
// rather than completed (an empty in-progress segment left by a crashed
// writer must not linger; DistributedLog's PR #2099).
func (t Tail) Empty() bool { return t.RecordCount == 0 && !t.EndOfStream }

// Complete plans the completion of the in-progress segment seg (as read in
// st, with its Version) from its tail: one transaction that marks it
// completed with its last entry, slot, txid and record count and raises the
// log's max txid; or, for an empty segment, deletes it (and its ledger
// afterwards). The segment must be in st at seg.Version and in progress;
// otherwise the error wraps ErrInvalidState.
func Complete(st metadata.LogState, seg metadata.Segment, tail Tail, now time.Time) (Plan, error) {
	cur, ok := Find(st, seg.LSSN)
	switch {
	case !ok:
		return Plan{}, fmt.Errorf("%w: complete segment %d: not in the log", ErrInvalidState, seg.LSSN)
	case cur.Version != seg.Version || cur.LedgerID != seg.LedgerID:
		return Plan{}, fmt.Errorf("%w: complete segment %d: changed since read", ErrInvalidState, seg.LSSN)
	case cur.State != metadata.SegmentInProgress:
		return Plan{}, fmt.Errorf("%w: complete segment %d: not in progress", ErrInvalidState, seg.LSSN)
	}
	if err := tail.Validate(); err != nil {
		return Plan{}, err
	}
	if tail.Empty() {
		return Plan{Delete: []metadata.Segment{cur}, DeleteLedgers: []int64{cur.LedgerID}}, nil
	}
	done := cur
	done.State = metadata.SegmentCompleted
	done.LastEntryID = tail.LastEntryID
	done.LastSlotID = tail.LastSlotID
	done.LastTxID = tail.LastTxID
	done.RecordCount = tail.RecordCount
	done.EndOfStream = tail.EndOfStream
	done.Completed = now
	p := Plan{Update: []metadata.Segment{done}}
	if tail.RecordCount > 0 && tail.LastTxID > st.MaxTxID {
		p.MaxTxID = &Int{Value: tail.LastTxID, Expect: st.MaxTxIDVersion}
	}
	return p, nil
}

// NewSegment describes the segment a writer starts.
type NewSegment struct {
	LedgerID int64
	// FirstTxID is a lower bound of the txids the segment will hold (the
	// writer's last txid when it starts the segment).
	FirstTxID int64
	WriterID  string
	Now       time.Time
	// Rolling is set when the writer starts the segment while its previous
	// one is still in progress (a roll creates the next segment before it
	// completes the previous); PrevRecordCount is then that segment's final
	// record count, which the writer knows because it waited for every
	// pending add.
	Rolling         bool
	PrevRecordCount int64
}

// Create plans the creation of the next segment: lssn = MaxLSSN + 1,
// in progress, with the start sequence id continuing the previous segment,
// in one transaction with the max lssn (CAS on its version). Errors:
// ErrSealed (the log ends with end-of-stream), ErrInvalidState (an
// in-progress segment that is not the one being rolled, inconsistent max
// lssn).
func Create(st metadata.LogState, ns NewSegment) (Plan, metadata.Segment, error) {
	if Sealed(st) {
		return Plan{}, metadata.Segment{}, ErrSealed
	}
	if ns.LedgerID < 1 {
		return Plan{}, metadata.Segment{}, fmt.Errorf("%w: create segment: ledger id %d", ErrInvalidState, ns.LedgerID)
	}
	var start int64
	if n := len(st.Segments); n > 0 {
		last := st.Segments[n-1]
		if last.LSSN > st.MaxLSSN {
			return Plan{}, metadata.Segment{}, fmt.Errorf("%w: segment %d above max lssn %d", ErrInvalidState, last.LSSN, st.MaxLSSN)
		}
		for _, s := range st.Segments[:n-1] {
			if s.State == metadata.SegmentInProgress {
				return Plan{}, metadata.Segment{}, fmt.Errorf("%w: create segment: segment %d is still in progress", ErrInvalidState, s.LSSN)
			}
		}
		switch {
		case last.State == metadata.SegmentCompleted:
			if ns.Rolling {
				return Plan{}, metadata.Segment{}, fmt.Errorf("%w: rolling from segment %d, which is completed", ErrInvalidState, last.LSSN)
			}
			start = last.StartSequenceID + last.RecordCount
		case !ns.Rolling:
			return Plan{}, metadata.Segment{}, fmt.Errorf("%w: create segment: segment %d is in progress: %w", ErrInvalidState, last.LSSN, errNoPrevCount)
		case ns.PrevRecordCount < 0:
			return Plan{}, metadata.Segment{}, fmt.Errorf("%w: rolling from segment %d with %d records", ErrInvalidState, last.LSSN, ns.PrevRecordCount)
		default:
			start = last.StartSequenceID + ns.PrevRecordCount
		}
	} else if ns.Rolling {
		return Plan{}, metadata.Segment{}, fmt.Errorf("%w: rolling in a log without segments", ErrInvalidState)
	}
	seg := metadata.Segment{
		LSSN:            st.MaxLSSN + 1,
		LedgerID:        ns.LedgerID,
		State:           metadata.SegmentInProgress,
		FirstTxID:       ns.FirstTxID,
		LastTxID:        -1,
		LastEntryID:     -1,
		LastSlotID:      -1,
		StartSequenceID: start,
		Created:         ns.Now,
		Truncation:      metadata.TruncationActive,
		WriterID:        ns.WriterID,
	}
	return Plan{
		Create:  []metadata.Segment{seg},
		MaxLSSN: &Int{Value: seg.LSSN, Expect: st.MaxLSSNVersion},
	}, seg, nil
}

// Truncate plans moving the log's truncation point forward to d: every
// record before d becomes unreadable. One transaction marks the completed
// segments wholly before d TRUNCATED, the completed segment containing d
// PARTIALLY_TRUNCATED with MinActive = d, and sets the truncation point.
// The marks are advisory (garbage collection and readers go by the
// truncation point); when more segments need marking than one transaction
// holds, the oldest are marked and the rest are left to the point.
//
// end, when valid, is an exclusive bound the caller knows (the position
// after the last acknowledged record); d after it fails with ErrFuture.
// d is also checked against the metadata: not after the segment it names
// when that segment is completed, not in a segment that was never created.
// A d at or before the current point is a no-op (changed false). Errors
// wrap dlog.ErrInvalidArgument (dlog.ErrInvalidDLSN for an invalid d).
func Truncate(st metadata.LogState, d dlog.DLSN, end dlog.DLSN) (p Plan, changed bool, err error) {
	if !d.IsValid() {
		return Plan{}, false, fmt.Errorf("%w: %w: truncate at %v", dlog.ErrInvalidArgument, dlog.ErrInvalidDLSN, d)
	}
	if end.IsValid() && end.Less(d) {
		return Plan{}, false, fmt.Errorf("%w: truncate at %v: the log ends at %v", ErrFuture, d, end)
	}
	if err := CheckPosition(st, d); err != nil {
		return Plan{}, false, fmt.Errorf("truncate: %w", err)
	}
	if !st.Truncation.Less(d) {
		return Plan{}, false, nil
	}
	for _, s := range st.Segments {
		if p.Len() >= MaxPlanOps-1 || s.State != metadata.SegmentCompleted {
			break
		}
		if (dlog.DLSN{LSSN: s.LSSN}).Compare(d) >= 0 {
			break // this segment and every later one start at or after d
		}
		if last, ok := LastDLSN(s); !ok || last.Less(d) {
			if s.Truncation != metadata.TruncationFull {
				s.Truncation = metadata.TruncationFull
				p.Update = append(p.Update, s)
			}
			continue
		}
		if s.Truncation == metadata.TruncationActive || s.Truncation == metadata.TruncationPartial && s.MinActive.Less(d) {
			s.Truncation = metadata.TruncationPartial
			s.MinActive = d
			p.Update = append(p.Update, s)
		}
		break
	}
	p.Truncation = &DLSNValue{Value: d, Expect: st.TruncationVersion}
	return p, true, nil
}

// CheckPosition checks that d can name a position of the log in st:
// valid, in a segment that was created (lssn <= MaxLSSN, or the first
// position after a completed last segment), and not after the end of the
// completed segment it names. It does not look at truncation. Errors wrap
// ErrFuture or dlog.ErrInvalidDLSN (both dlog.ErrInvalidArgument).
func CheckPosition(st metadata.LogState, d dlog.DLSN) error {
	if !d.IsValid() {
		return fmt.Errorf("%w: %w: %v", dlog.ErrInvalidArgument, dlog.ErrInvalidDLSN, d)
	}
	if d.LSSN > st.MaxLSSN {
		next := dlog.DLSN{LSSN: st.MaxLSSN + 1}
		lastDone := len(st.Segments) == 0 || st.Segments[len(st.Segments)-1].State == metadata.SegmentCompleted
		if d == next && lastDone {
			return nil
		}
		return fmt.Errorf("%w: %v: the log's last segment is %d", ErrFuture, d, st.MaxLSSN)
	}
	s, ok := Find(st, d.LSSN)
	if !ok || s.State != metadata.SegmentCompleted {
		return nil
	}
	end := s.LastEntryID + 1
	if d.EntryID > end || d.EntryID == end && d.SlotID > 0 {
		return fmt.Errorf("%w: %v: segment %d ends at entry %d", ErrFuture, d, s.LSSN, s.LastEntryID)
	}
	return nil
}

// Collect plans garbage collection: it deletes, oldest first, completed
// segments that are wholly before the truncation point (or marked
// TRUNCATED), or, with retention > 0, were completed before now −
// retention. It stops at the first segment that does not qualify (only a
// prefix of the log is ever deleted, so a reader never loses a segment
// between two it can still read), never deletes an in-progress segment,
// and always keeps the last completed segment (its start sequence id and
// record count seed the next segment's sequence ids). The same
// transaction moves the truncation point to the start of the first
// remaining segment if it was before it. The ledgers are deleted after the
// commit (Plan.DeleteLedgers). An empty plan means nothing to collect.
func Collect(st metadata.LogState, now time.Time, retention time.Duration) Plan {
	lastCompleted := -1
	for i, s := range st.Segments {
		if s.State == metadata.SegmentCompleted {
			lastCompleted = i
		}
	}
	var p Plan
	for i, s := range st.Segments {
		if i >= lastCompleted || s.State != metadata.SegmentCompleted || len(p.Delete) >= MaxPlanOps-1 {
			break
		}
		truncated := s.Truncation == metadata.TruncationFull
		if last, ok := LastDLSN(s); ok {
			truncated = truncated || last.Less(st.Truncation)
		} else {
			truncated = truncated || (dlog.DLSN{LSSN: s.LSSN + 1}).Compare(st.Truncation) <= 0
		}
		expired := retention > 0 && !s.Completed.IsZero() && s.Completed.Before(now.Add(-retention))
		if !truncated && !expired {
			break
		}
		p.Delete = append(p.Delete, s)
		p.DeleteLedgers = append(p.DeleteLedgers, s.LedgerID)
	}
	if len(p.Delete) == 0 {
		return Plan{}
	}
	next := dlog.DLSN{LSSN: p.Delete[len(p.Delete)-1].LSSN + 1}
	if st.Truncation.Less(next) {
		p.Truncation = &DLSNValue{Value: next, Expect: st.TruncationVersion}
	}
	return p
}

// FirstPosition is where a reader starting at the beginning starts: the
// truncation point, or the first position of the first existing segment
// when that is later (segments before it were collected or never held a
// record).
func FirstPosition(st metadata.LogState) dlog.DLSN {
	d := dlog.InitialDLSN
	if len(st.Segments) > 0 {
		d = dlog.DLSN{LSSN: st.Segments[0].LSSN}
	} else if st.MaxLSSN > 0 {
		d = dlog.DLSN{LSSN: st.MaxLSSN + 1}
	}
	if d.Less(st.Truncation) {
		d = st.Truncation
	}
	return d
}
