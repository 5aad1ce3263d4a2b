package segment

import (
	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/recordset"
)

// TxIDSegment returns the segment where the search for the first record
// with txid >= n must look: the first readable segment (not wholly before
// the truncation point) that is in progress, or completed with a user
// record whose txid reaches n (txids never decrease, so its LastTxID
// decides). ok is false when no segment can hold such a record yet: the
// record, if it ever exists, will be written after the current end.
func TxIDSegment(st metadata.LogState, n int64) (metadata.Segment, bool) {
	for _, s := range st.Segments {
		if last, ok := LastDLSN(s); ok && last.Less(st.Truncation) {
			continue
		}
		if s.State == metadata.SegmentInProgress {
			return s, true
		}
		if s.RecordCount > 0 && s.LastTxID >= n {
			return s, true
		}
	}
	return metadata.Segment{}, false
}

// EntrySearch is a binary search for the first entry in [lo, hi] that
// satisfies a monotone predicate (false ... false true ... true), driven
// by the caller who reads the probed entries:
//
//	s := NewEntrySearch(lo, hi)
//	for e, ok := s.Probe(); ok; e, ok = s.Probe() {
//		s.Feed(e, predicate(read(e)))
//	}
//	first := s.Result() // hi+1 when no entry satisfies it
type EntrySearch struct {
	lo, hi int64 // the answer is in [lo, hi+1]
	end    int64 // the original hi+1
}

// NewEntrySearch searches [lo, hi] (empty when hi < lo).
func NewEntrySearch(lo, hi int64) *EntrySearch {
	return &EntrySearch{lo: lo, hi: hi, end: hi + 1}
}

// Probe returns the entry to read next, or false when the search is done.
func (s *EntrySearch) Probe() (int64, bool) {
	if s.lo > s.hi {
		return 0, false
	}
	return s.lo + (s.hi-s.lo)/2, true
}

// Feed reports whether the probed entry satisfies the predicate.
func (s *EntrySearch) Feed(entry int64, satisfied bool) {
	if satisfied {
		s.hi = entry - 1
	} else {
		s.lo = entry + 1
	}
}

// Result is the first satisfying entry, or the original hi+1.
func (s *EntrySearch) Result() int64 {
	if s.lo > s.end {
		return s.end
	}
	return s.lo
}

// ReachesTxID is the txid search predicate for one entry: its last user
// record has txid >= n, or it holds no user record (only an end-of-stream
// entry does, and it is last). Errors wrap recordset.ErrCorrupt.
func ReachesTxID(payload []byte, n int64) (bool, error) {
	set, err := recordset.Decode(payload, 0)
	if err != nil {
		return false, err
	}
	for i := len(set.Records) - 1; i >= 0; i-- {
		if r := set.Records[i]; !r.Flags.IsControl() {
			return r.TxID >= n, nil
		}
	}
	return true, nil
}

// FirstTxIDInEntry returns the DLSN of the first user record with txid >= n
// in the entry, or false. Errors: those of recordset.Decode (the entry is
// not a valid record set: recordset.ErrCorrupt).
func FirstTxIDInEntry(lssn, entryID int64, payload []byte, n int64) (dlog.DLSN, bool, error) {
	set, err := recordset.Decode(payload, 0)
	if err != nil {
		return dlog.DLSN{}, false, err
	}
	for i, r := range set.Records {
		if !r.Flags.IsControl() && r.TxID >= n {
			return dlog.DLSN{LSSN: lssn, EntryID: entryID, SlotID: int64(i)}, true, nil
		}
	}
	return dlog.DLSN{}, false, nil
}
