package segment

import (
	"errors"
	"fmt"
	"slices"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
)

// Sentinel errors of the plan builders. Each also matches the dlog error
// named in its comment, so the log core can pass them up unchanged.
var (
	// ErrInvalidState: the snapshot does not allow the transition (a
	// segment that is not in progress to recover, two in-progress segments
	// where one is allowed, a tail that contradicts the metadata). Matches
	// dlog.ErrCorrupt: metadata the protocol never writes.
	ErrInvalidState = fmt.Errorf("segment: invalid state transition: %w", dlog.ErrCorrupt)
	// ErrFuture: a position after the end of the log. Matches
	// dlog.ErrInvalidArgument (definite).
	ErrFuture = fmt.Errorf("segment: position after the end of the log: %w", dlog.ErrInvalidArgument)
	// ErrSealed: the log ends with an end-of-stream marker. Matches
	// dlog.ErrEndOfStream.
	ErrSealed = fmt.Errorf("segment: log sealed: %w", dlog.ErrEndOfStream)
)

// MaxPlanOps bounds the metadata ops of one plan, leaving room for the
// CheckOwner op the caller adds (metadata.MaxCommitOps is the hard limit).
const MaxPlanOps = metadata.MaxCommitOps - 2

// Plan is one metadata transaction over a log, computed from a snapshot
// (metadata.LogState) by the builders of this package. It is data, so
// tests can inspect it; Ops turns it into metadata ops and Apply replays it
// on a snapshot once the commit succeeded.
type Plan struct {
	// Create lists segments to create (CreateSegment: must not exist).
	Create []metadata.Segment
	// Update lists segments to replace, each at the version it was read.
	Update []metadata.Segment
	// Delete lists segments to delete, each at the version it was read
	// (only LSSN, LedgerID and Version are used).
	Delete []metadata.Segment
	// MaxLSSN, MaxTxID and Truncation, when set, write the log's keys at
	// the version the snapshot had.
	MaxLSSN    *Int
	MaxTxID    *Int
	Truncation *DLSNValue
	// DeleteLedgers are ledgers to delete after the commit succeeded (not
	// part of the transaction: a crash in between leaves an unreferenced
	// ledger, never a segment without its ledger).
	DeleteLedgers []int64
}

// Int is a versioned write of an int64 key.
type Int struct {
	Value  int64
	Expect metadata.Version
}

// DLSNValue is a versioned write of a DLSN key.
type DLSNValue struct {
	Value  dlog.DLSN
	Expect metadata.Version
}

// Empty reports whether the plan writes nothing.
func (p Plan) Empty() bool {
	return len(p.Create) == 0 && len(p.Update) == 0 && len(p.Delete) == 0 &&
		p.MaxLSSN == nil && p.MaxTxID == nil && p.Truncation == nil
}

// Len is the number of metadata ops the plan needs (without CheckOwner).
func (p Plan) Len() int {
	n := len(p.Create) + len(p.Update) + len(p.Delete)
	for _, set := range []bool{p.MaxLSSN != nil, p.MaxTxID != nil, p.Truncation != nil} {
		if set {
			n++
		}
	}
	return n
}

// Ops returns the metadata ops of the plan for log ns/log, preceded by a
// CheckOwner op when own is not nil (the commit then fails unless own
// still holds the log).
func (p Plan) Ops(ns, log string, own metadata.Ownership) []metadata.Op {
	ops := make([]metadata.Op, 0, p.Len()+1)
	if own != nil {
		ops = append(ops, metadata.CheckOwner(ns, log, own))
	}
	for _, s := range p.Create {
		ops = append(ops, metadata.CreateSegment(ns, log, s))
	}
	for _, s := range p.Update {
		ops = append(ops, metadata.UpdateSegment(ns, log, s, s.Version))
	}
	for _, s := range p.Delete {
		ops = append(ops, metadata.DeleteSegment(ns, log, s.LSSN, s.Version))
	}
	if p.MaxLSSN != nil {
		ops = append(ops, metadata.SetMaxLSSN(ns, log, p.MaxLSSN.Value, p.MaxLSSN.Expect))
	}
	if p.MaxTxID != nil {
		ops = append(ops, metadata.SetMaxTxID(ns, log, p.MaxTxID.Value, p.MaxTxID.Expect))
	}
	if p.Truncation != nil {
		ops = append(ops, metadata.SetTruncation(ns, log, p.Truncation.Value, p.Truncation.Expect))
	}
	return ops
}

// Apply returns st as it is after the plan committed at revision rev: every
// key the plan wrote gets version rev (what metadata.Store.Commit promises),
// so a writer can keep its snapshot current without re-reading it.
func (p Plan) Apply(st metadata.LogState, rev int64) metadata.LogState {
	out := st
	out.Segments = slices.Clone(st.Segments)
	v := metadata.Version(rev)
	for _, d := range p.Delete {
		out.Segments = slices.DeleteFunc(out.Segments, func(s metadata.Segment) bool { return s.LSSN == d.LSSN })
	}
	for _, u := range p.Update {
		for i := range out.Segments {
			if out.Segments[i].LSSN == u.LSSN {
				out.Segments[i] = u
				out.Segments[i].Version = v
			}
		}
	}
	for _, c := range p.Create {
		c.Version = v
		out.Segments = append(out.Segments, c)
	}
	slices.SortFunc(out.Segments, func(a, b metadata.Segment) int { return cmpInt(a.LSSN, b.LSSN) })
	if p.MaxLSSN != nil {
		out.MaxLSSN, out.MaxLSSNVersion = p.MaxLSSN.Value, v
	}
	if p.MaxTxID != nil {
		out.MaxTxID, out.MaxTxIDVersion = p.MaxTxID.Value, v
	}
	if p.Truncation != nil {
		out.Truncation, out.TruncationVersion = p.Truncation.Value, v
	}
	if rev > out.Revision {
		out.Revision = rev
	}
	return out
}

// Landed reports whether st (read after a commit whose answer was lost)
// shows every write of the plan. Commits are atomic, so either all writes
// are visible or none is; Landed checks all of them anyway, which also
// catches a snapshot that moved on since.
func (p Plan) Landed(st metadata.LogState) bool {
	find := func(lssn int64) (metadata.Segment, bool) {
		for _, s := range st.Segments {
			if s.LSSN == lssn {
				return s, true
			}
		}
		return metadata.Segment{}, false
	}
	for _, c := range p.Create {
		s, ok := find(c.LSSN)
		if !ok || s.LedgerID != c.LedgerID {
			return false
		}
	}
	for _, u := range p.Update {
		s, ok := find(u.LSSN)
		if !ok || !sameContent(s, u) {
			return false
		}
	}
	for _, d := range p.Delete {
		if s, ok := find(d.LSSN); ok && s.LedgerID == d.LedgerID {
			return false
		}
	}
	if p.MaxLSSN != nil && st.MaxLSSN != p.MaxLSSN.Value {
		return false
	}
	if p.MaxTxID != nil && st.MaxTxID != p.MaxTxID.Value {
		return false
	}
	if p.Truncation != nil && st.Truncation != p.Truncation.Value {
		return false
	}
	return true
}

// sameContent compares the fields a plan writes (not Version, and times
// only to the millisecond the metadata stores).
func sameContent(a, b metadata.Segment) bool {
	return a.LSSN == b.LSSN && a.LedgerID == b.LedgerID && a.State == b.State &&
		a.FirstTxID == b.FirstTxID && a.LastTxID == b.LastTxID && a.LastEntryID == b.LastEntryID &&
		a.LastSlotID == b.LastSlotID && a.RecordCount == b.RecordCount &&
		a.StartSequenceID == b.StartSequenceID && a.Truncation == b.Truncation &&
		a.MinActive == b.MinActive && a.EndOfStream == b.EndOfStream &&
		a.Completed.UnixMilli() == b.Completed.UnixMilli()
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Find returns the segment with the given lssn.
func Find(st metadata.LogState, lssn int64) (metadata.Segment, bool) {
	for _, s := range st.Segments {
		if s.LSSN == lssn {
			return s, true
		}
	}
	return metadata.Segment{}, false
}

// InProgress returns the in-progress segments in lssn order: what a new
// writer must recover, oldest first.
func InProgress(st metadata.LogState) []metadata.Segment {
	var out []metadata.Segment
	for _, s := range st.Segments {
		if s.State == metadata.SegmentInProgress {
			out = append(out, s)
		}
	}
	return out
}

// Sealed reports whether the log ends with an end-of-stream marker: its
// last segment is completed with EndOfStream.
func Sealed(st metadata.LogState) bool {
	if len(st.Segments) == 0 {
		return false
	}
	last := st.Segments[len(st.Segments)-1]
	return last.State == metadata.SegmentCompleted && last.EndOfStream
}

// LastDLSN returns the position of the last record (of any kind) of a
// completed segment, and false for an in-progress or empty one.
func LastDLSN(s metadata.Segment) (dlog.DLSN, bool) {
	if s.State != metadata.SegmentCompleted || s.LastEntryID < 0 {
		return dlog.DLSN{}, false
	}
	return dlog.DLSN{LSSN: s.LSSN, EntryID: s.LastEntryID, SlotID: s.LastSlotID}, true
}

var errNoPrevCount = errors.New("segment: the previous segment is in progress and its record count was not given")
