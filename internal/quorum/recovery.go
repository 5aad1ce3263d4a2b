package quorum

import (
	"errors"
	"fmt"
)

// ReadResult is one write set member's answer to a recovery read of one
// entry. Recovery reads always carry the fence flag, so an explicit negative
// comes from a bookie that is fenced for the ledger: it can no longer accept
// the entry from the old writer, and its "I do not have it" is final. A
// negative from an unfenced bookie is not final (BookKeeper issue #2614) and
// must not be reported as ReadNoEntry or ReadNoLedger.
type ReadResult uint8

const (
	// ReadPending: no answer yet.
	ReadPending ReadResult = iota + 1
	// ReadPresent: the bookie returned the entry and its checksum verified.
	ReadPresent
	// ReadNoEntry: explicit, fenced "no such entry".
	ReadNoEntry
	// ReadNoLedger: explicit, fenced "no such ledger".
	ReadNoLedger
	// ReadUnknown: anything else — I/O error, checksum mismatch, timeout,
	// unreachable, an unexpected status. It says nothing about the entry,
	// and in particular never counts as a negative (BookKeeper issue #2908:
	// a corrupt log read as "no entry" truncated a ledger).
	ReadUnknown
)

func (r ReadResult) String() string {
	switch r {
	case ReadPending:
		return "pending"
	case ReadPresent:
		return "present"
	case ReadNoEntry:
		return "no-entry"
	case ReadNoLedger:
		return "no-ledger"
	case ReadUnknown:
		return "unknown"
	}
	return fmt.Sprintf("ReadResult(%d)", uint8(r))
}

// Decision is the recovery verdict for one entry.
type Decision uint8

const (
	// Undecided: wait for more answers.
	Undecided Decision = iota + 1
	// Present: a member returned valid data; the entry belongs to the
	// recovered ledger (it may or may not have been acknowledged; keeping it
	// is safe, as its writer got no definite failure).
	Present
	// Absent: at least Qw−Qa+1 fenced members of the write set lack the
	// entry, so no ack quorum held it: it was never acknowledged, and the
	// old writer can no longer complete it.
	Absent
	// Unrecoverable: every member answered, none returned data and too few
	// answered with explicit negatives. The entry may have been
	// acknowledged; recovery must fail and be retried later. Never treat it
	// as Absent.
	Unrecoverable
)

func (d Decision) String() string {
	switch d {
	case Undecided:
		return "undecided"
	case Present:
		return "present"
	case Absent:
		return "absent"
	case Unrecoverable:
		return "unrecoverable"
	}
	return fmt.Sprintf("Decision(%d)", uint8(d))
}

// DecideEntry decides a recovery read of one entry from the answers of its
// write set members (len(results) must be Qw; the order does not matter).
// Present wins as soon as any member returned data; then Absent once Qw−Qa+1
// explicit negatives arrived; otherwise Undecided while any answer is
// pending, and Unrecoverable when none is. It panics on a wrong length or
// an invalid result (programming errors).
func (p Params) DecideEntry(results []ReadResult) Decision {
	if len(results) != p.WriteQuorum {
		panic(fmt.Sprintf("quorum: DecideEntry got %d results for %v", len(results), p))
	}
	negatives, pending := 0, 0
	for i, r := range results {
		switch r {
		case ReadPresent:
			return Present
		case ReadNoEntry, ReadNoLedger:
			negatives++
		case ReadPending:
			pending++
		case ReadUnknown:
		default:
			panic(fmt.Sprintf("quorum: DecideEntry: invalid result %v at %d", r, i))
		}
	}
	switch {
	case negatives >= p.NegativesNeeded():
		return Absent
	case pending > 0:
		return Undecided
	default:
		return Unrecoverable
	}
}

// Recovery scan errors.
var (
	// ErrUnrecoverable: an entry that may have been acknowledged could not
	// be read from any member. Recovery must stop without closing the
	// ledger and be retried later.
	ErrUnrecoverable = errors.New("quorum: entry unrecoverable")
	// ErrScanMisuse: a call that breaks the Scan contract (recording an
	// entry that is not outstanding, or an Undecided decision).
	ErrScanMisuse = errors.New("quorum: recovery scan misuse")
)

// ScanState tells where a Scan is.
type ScanState uint8

const (
	// Scanning: reads are outstanding or more must be issued.
	Scanning ScanState = iota + 1
	// ScanDone: the first Absent entry was found; LastEntryID is final.
	ScanDone
	// ScanFailed: an entry before the first Absent one was Unrecoverable.
	ScanFailed
)

func (s ScanState) String() string {
	switch s {
	case Scanning:
		return "scanning"
	case ScanDone:
		return "done"
	case ScanFailed:
		return "failed"
	}
	return fmt.Sprintf("ScanState(%d)", uint8(s))
}

// EntryRange is the inclusive range [First, Last] of entry ids; it is empty
// when Last < First.
type EntryRange struct{ First, Last int64 }

// Empty reports whether the range holds no entry.
func (r EntryRange) Empty() bool { return r.Last < r.First }

// Len is the number of entries in the range.
func (r EntryRange) Len() int64 {
	if r.Empty() {
		return 0
	}
	return r.Last - r.First + 1
}

func (r EntryRange) String() string {
	if r.Empty() {
		return "[]"
	}
	return fmt.Sprintf("[%d..%d]", r.First, r.Last)
}

var emptyRange = EntryRange{0, -1}

// Scan finds the end of a ledger during recovery. It starts after the
// highest LAC seen among the fence answers (entries up to it were
// acknowledged and need no decision) and reads forward; the ledger's last
// entry is the one before the first Absent entry. Up to a window of reads
// may be in flight; decisions may arrive in any order.
//
// The shell loops: issue a fenced recovery read for every id Next returns,
// feed each entry's DecideEntry verdict (once not Undecided) to Record,
// re-add with the recovery flag every entry in the ranges Record returns
// (they are confirmed members of the recovered ledger, in order), and stop
// when State is no longer Scanning. Entries read beyond the first Absent
// one are ignored: they can never have been acknowledged, since an entry
// is acknowledged only after all earlier ones.
//
// A Scan is not safe for concurrent use.
type Scan struct {
	window   int
	next     int64      // next id Next hands out
	low      int64      // lowest entry not yet confirmed Present
	decided  []Decision // decided[i] is the verdict for low+i (0: none yet)
	state    ScanState
	lastID   int64
	failedAt int64
}

// NewScan starts a scan after lac (the maximum LAC among the fence
// answers; −1 if none) with at most window reads in flight (window < 1
// means 1).
func NewScan(lac int64, window int) *Scan {
	return &Scan{window: max(window, 1), next: lac + 1, low: lac + 1, state: Scanning, lastID: lac}
}

// Next returns the next entry to read, or ok=false when the window is full
// or the scan is over.
func (s *Scan) Next() (entryID int64, ok bool) {
	if s.state != Scanning || s.next-s.low >= int64(s.window) {
		return 0, false
	}
	s.next++
	s.decided = append(s.decided, 0)
	return s.next - 1, true
}

// Record stores the decision (Present, Absent or Unrecoverable) for an entry
// Next handed out, and returns the entries newly confirmed as part of the
// ledger, in order (possibly empty). Once the scan is over, Record ignores
// late decisions. Errors wrap ErrScanMisuse.
func (s *Scan) Record(entryID int64, d Decision) (EntryRange, error) {
	if d != Present && d != Absent && d != Unrecoverable {
		return emptyRange, fmt.Errorf("%w: decision %v for entry %d", ErrScanMisuse, d, entryID)
	}
	if s.state != Scanning {
		return emptyRange, nil
	}
	if entryID < s.low || entryID >= s.next {
		return emptyRange, fmt.Errorf("%w: entry %d is not outstanding (outstanding %v)",
			ErrScanMisuse, entryID, EntryRange{s.low, s.next - 1})
	}
	i := entryID - s.low
	if s.decided[i] != 0 {
		return emptyRange, fmt.Errorf("%w: entry %d decided twice", ErrScanMisuse, entryID)
	}
	s.decided[i] = d
	confirmed := EntryRange{s.low, s.low - 1}
	for len(s.decided) > 0 {
		switch s.decided[0] {
		case Present:
			confirmed.Last = s.low
			s.low++
			s.decided = s.decided[1:]
			continue
		case Absent:
			s.state, s.lastID = ScanDone, s.low-1
		case Unrecoverable:
			s.state, s.failedAt = ScanFailed, s.low
		}
		break
	}
	if s.state != Scanning {
		s.decided = nil
	} else if len(s.decided) == 0 {
		s.decided = s.decided[:0:0] // let the consumed prefix be collected
	}
	return confirmed, nil
}

// State returns the scan state.
func (s *Scan) State() ScanState { return s.state }

// LastEntryID returns the ledger's last entry once the scan is done (−1 for
// an empty ledger); before that, the highest entry confirmed so far.
func (s *Scan) LastEntryID() int64 {
	if s.state == ScanDone {
		return s.lastID
	}
	return s.low - 1
}

// Err returns nil unless the scan failed, then an error wrapping
// ErrUnrecoverable that names the entry.
func (s *Scan) Err() error {
	if s.state != ScanFailed {
		return nil
	}
	return fmt.Errorf("%w: entry %d: no member returned it and fewer than Qw−Qa+1 fenced members denied it",
		ErrUnrecoverable, s.failedAt)
}

// InFlight returns how many handed-out entries await a decision.
func (s *Scan) InFlight() int {
	if s.state != Scanning {
		return 0
	}
	n := 0
	for _, d := range s.decided {
		if d == 0 {
			n++
		}
	}
	return n
}
