package segment

import (
	"fmt"

	"github.com/dlog-io/dlog"

	"github.com/dlog-io/dlog/internal/recordset"
)

// TailScan finds a closed ledger's Tail by reading it backwards: the last
// entry gives the last slot, the record count (its base position plus its
// user records) and whether it ends the stream; entries are read further
// back only while they hold no user record, to find the last user txid.
// A writer writes at most one control-only entry (end-of-stream) at the
// end, so the scan reads one or two entries.
//
//	scan := NewTailScan(md.LastEntryID)
//	for id, ok := scan.Want(); ok; id, ok = scan.Want() {
//		if err := scan.Feed(id, readEntry(id)); err != nil { ... }
//	}
//	tail := scan.Tail()
type TailScan struct {
	next int64 // entry to read next; -1 when done
	tail Tail
	seen bool // the last entry was read
}

// NewTailScan starts a scan of a ledger whose last entry is lastEntryID
// (-1 for an empty ledger: the scan is done at once).
func NewTailScan(lastEntryID int64) *TailScan {
	s := &TailScan{next: lastEntryID, tail: EmptyTail}
	s.tail.LastEntryID = lastEntryID
	if lastEntryID < 0 {
		s.next = -1
		s.tail.LastEntryID = -1
	}
	return s
}

// Want returns the entry to read next, or false when the tail is known.
func (s *TailScan) Want() (int64, bool) { return s.next, s.next >= 0 }

// Feed gives the scan the payload of the entry it asked for. Errors: the
// entry does not decode (wraps recordset.ErrCorrupt), a wrong entry id, or
// positions that contradict each other (ErrInvalidState).
func (s *TailScan) Feed(entryID int64, payload []byte) error {
	if entryID != s.next || s.next < 0 {
		return fmt.Errorf("%w: tail scan fed entry %d, wants %d", ErrInvalidState, entryID, s.next)
	}
	set, err := recordset.Decode(payload, 0)
	if err != nil {
		return fmt.Errorf("entry %d: %w", entryID, err)
	}
	users := int64(0)
	lastUser := -1
	for i, r := range set.Records {
		if !r.Flags.IsControl() {
			if r.TxID < 0 {
				return fmt.Errorf("%w: entry %d slot %d: negative txid %d", dlog.ErrCorrupt, entryID, i, r.TxID)
			}
			users++
			lastUser = i
		}
	}
	if !s.seen {
		s.seen = true
		s.tail.LastSlotID = int64(len(set.Records) - 1)
		s.tail.RecordCount = set.BasePosition + users
		s.tail.EndOfStream = set.Records[len(set.Records)-1].Flags.IsEndOfStream()
	} else if set.BasePosition+users > s.tail.RecordCount {
		return fmt.Errorf("%w: entry %d ends at position %d, after the last entry's %d", ErrInvalidState, entryID, set.BasePosition+users, s.tail.RecordCount)
	}
	if lastUser >= 0 {
		s.tail.LastTxID = set.Records[lastUser].TxID
		s.next = -1
		return nil
	}
	if set.BasePosition == 0 {
		s.next = -1 // no user record at or before this entry
		return nil
	}
	s.next--
	return nil
}

// Tail returns the result once Want reports false.
func (s *TailScan) Tail() Tail { return s.tail }
