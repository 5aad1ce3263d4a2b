package quorum

import (
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"slices"
)

// Tracker errors. Each is returned wrapped with detail.
var (
	// ErrInvalidAck: an ack that cannot belong to this ledger writer (an
	// entry never added, an index outside the ensemble or the entry's write
	// set). Acks that are merely late, stale or duplicated are ignored
	// without error.
	ErrInvalidAck = errors.New("quorum: invalid ack")
	// ErrChangeInProgress: BeginChange while another change is open.
	ErrChangeInProgress = errors.New("quorum: ensemble change in progress")
	// ErrNoChange: CommitChange or AbortChange without BeginChange.
	ErrNoChange = errors.New("quorum: no ensemble change in progress")
	// ErrInvalidReplacement: a replacement that would break the ensemble
	// (bad index, empty id, a bookie already in the ensemble, duplicates).
	ErrInvalidReplacement = errors.New("quorum: invalid replacement")
	// ErrInvalidEnsemble: NewTracker got an ensemble of the wrong size or
	// with empty or duplicate ids.
	ErrInvalidEnsemble = errors.New("quorum: invalid ensemble")
)

// Send asks the shell to send (or resend) an entry to one bookie.
type Send struct {
	EntryID int64
	Index   int    // ensemble index the bookie serves for this entry
	Bookie  string // the bookie's id
}

// ChangeResult is what committing an ensemble change requires and yields.
type ChangeResult struct {
	// FirstEntryID starts the new fragment (as returned by BeginChange).
	FirstEntryID int64
	// Resend lists every (pending entry, replaced index) pair, in entry
	// order: the new members must receive these entries before they can
	// count toward completion.
	Resend []Send
	// Acked are the entries acknowledged as the change ends (acks that
	// arrived while it was open), in order.
	Acked EntryRange
}

// Tracker is the acknowledgement state machine of one pipelined ledger
// writer. It assigns entry ids, says where each entry goes, counts acks and
// advances the LAC through the contiguous prefix of complete entries.
//
// An entry is complete when AckQuorum distinct members of its write set
// acked it; it is acknowledged (and the LAC reaches it) when it is complete
// and every earlier entry is acknowledged. Acknowledged entries are final.
//
// An ack counts when it comes from the bookie that currently serves that
// ensemble index. Bookie ids must identify a bookie incarnation (address +
// instance id): an ack means "this disk holds the entry", which a wiped disk
// with the same id would falsely claim.
//
// Ensemble change, in BookKeeper's shape: BeginChange freezes the LAC and
// returns LAC+1, the first entry of the new fragment; the shell picks
// replacements, writes the new fragment to metadata by CAS, and then calls
// CommitChange (or AbortChange if the CAS failed or no replacement exists).
// Every pending entry — even one already complete — belongs to the new
// fragment, so the replaced members' acks for pending entries stop counting
// and the entries are resent to the new members. Freezing matters: had an
// entry ≥ LAC+1 been acknowledged between BeginChange and the CAS with an
// ack from a member the new fragment no longer lists, metadata would name
// fewer than Qa holders of an acknowledged entry. The shell must not send
// anything to a new member before the CAS succeeded (BookKeeper #1591).
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	p        Params
	ensemble []string
	failed   []bool
	lac      int64
	// pending[i] is the ack bitmask (by ensemble index) of entry lac+1+i.
	pending []uint64
	// changing is set between BeginChange and CommitChange/AbortChange.
	changing bool
}

// NewTracker starts a writer of a new ledger (first entry 0, LAC −1) on the
// given ensemble (len E, distinct non-empty ids; the slice is copied).
func NewTracker(p Params, ensemble []string) (*Tracker, error) {
	return NewTrackerAfter(p, ensemble, -1)
}

// NewTrackerAfter starts a tracker whose first Add is entry lac+1, for
// writes that continue after entries known acknowledged: recovery re-adds
// the entries its Scan confirmed, starting after the fenced LAC, to the
// ensemble of the ledger's last fragment.
func NewTrackerAfter(p Params, ensemble []string, lac int64) (*Tracker, error) {
	if lac < -1 {
		return nil, fmt.Errorf("%w: LAC %d below -1", ErrInvalidParams, lac)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(ensemble) != p.EnsembleSize {
		return nil, fmt.Errorf("%w: %d bookies for %v", ErrInvalidEnsemble, len(ensemble), p)
	}
	seen := make(map[string]bool, len(ensemble))
	for i, b := range ensemble {
		if b == "" || seen[b] {
			return nil, fmt.Errorf("%w: index %d: empty or duplicate bookie %q", ErrInvalidEnsemble, i, b)
		}
		seen[b] = true
	}
	return &Tracker{
		p:        p,
		ensemble: slices.Clone(ensemble),
		failed:   make([]bool, len(ensemble)),
		lac:      lac,
	}, nil
}

// Params returns the tracker's replication sizes.
func (t *Tracker) Params() Params { return t.p }

// LAC returns the last acknowledged entry (−1 before the first). Every add
// should carry it.
func (t *Tracker) LAC() int64 { return t.lac }

// NextEntryID returns the id the next Add will assign.
func (t *Tracker) NextEntryID() int64 { return t.lac + 1 + int64(len(t.pending)) }

// Pending returns the number of added but unacknowledged entries.
func (t *Tracker) Pending() int { return len(t.pending) }

// Changing reports whether an ensemble change is open.
func (t *Tracker) Changing() bool { return t.changing }

// Ensemble returns a copy of the current ensemble (the one pending and new
// entries are written to).
func (t *Tracker) Ensemble() []string { return slices.Clone(t.ensemble) }

// Failed returns the ensemble indices currently marked failed, ascending.
func (t *Tracker) Failed() []int {
	var out []int
	for i, f := range t.failed {
		if f {
			out = append(out, i)
		}
	}
	return out
}

// Add assigns the next entry id and returns the sends to perform: one per
// write set member not marked failed, in write set order. The caller owns
// the slice.
func (t *Tracker) Add() (entryID int64, sends []Send) {
	entryID = t.NextEntryID()
	t.pending = append(t.pending, 0)
	for _, idx := range t.p.WriteSet(entryID) {
		if !t.failed[idx] {
			sends = append(sends, Send{EntryID: entryID, Index: idx, Bookie: t.ensemble[idx]})
		}
	}
	return entryID, sends
}

// Ack records that bookie, serving ensemble index, fsynced entryID, and
// returns the entries this acknowledged, in order (empty while an ensemble
// change is open). Duplicates, acks for acknowledged entries, and acks from
// a bookie that no longer serves index (replaced) are ignored. An ack for an
// entry never added or for an index outside the entry's write set is an
// error wrapping ErrInvalidAck.
func (t *Tracker) Ack(entryID int64, index int, bookie string) (EntryRange, error) {
	if entryID >= t.NextEntryID() || entryID < 0 {
		return emptyRange, fmt.Errorf("%w: entry %d was never added (next %d)", ErrInvalidAck, entryID, t.NextEntryID())
	}
	if !t.p.InWriteSet(entryID, index) {
		return emptyRange, fmt.Errorf("%w: index %d is not in the write set of entry %d (%v)",
			ErrInvalidAck, index, entryID, t.p)
	}
	if entryID <= t.lac || t.ensemble[index] != bookie {
		return emptyRange, nil
	}
	t.pending[entryID-t.lac-1] |= 1 << index
	return t.advance(), nil
}

// advance moves the LAC through complete entries, unless frozen.
func (t *Tracker) advance() EntryRange {
	if t.changing {
		return emptyRange
	}
	r := EntryRange{t.lac + 1, t.lac}
	n := 0
	for n < len(t.pending) && bits.OnesCount64(t.pending[n]) >= t.p.AckQuorum {
		n++
	}
	if n == 0 {
		return r
	}
	t.pending = t.pending[n:]
	if len(t.pending) == 0 {
		t.pending = nil // drop the consumed backing array
	}
	t.lac += int64(n)
	r.Last = t.lac
	return r
}

// Fail marks the member at index failed: Add stops sending to it until it
// is replaced. Its acks still count (an ack is a fact about its disk). Fail
// returns the pending entries that can no longer complete without a
// replacement (see Stalled); the shell decides whether to change the
// ensemble now or, BookKeeper's delayEnsembleChange, only once some entry
// is stalled, and fails the writer if no replacement can be found.
func (t *Tracker) Fail(index int) ([]int64, error) {
	if index < 0 || index >= len(t.failed) {
		return nil, fmt.Errorf("%w: index %d outside the ensemble (%v)", ErrInvalidAck, index, t.p)
	}
	t.failed[index] = true
	return t.Stalled(), nil
}

// Stalled returns the pending entries, ascending, whose acks so far plus
// the acks their write set members not marked failed could still give fall
// short of AckQuorum.
func (t *Tracker) Stalled() []int64 {
	var out []int64
	for i, mask := range t.pending {
		e := t.lac + 1 + int64(i)
		possible := 0
		for _, idx := range t.p.WriteSet(e) {
			if mask&(1<<idx) != 0 || !t.failed[idx] {
				possible++
			}
		}
		if possible < t.p.AckQuorum {
			out = append(out, e)
		}
	}
	return out
}

// BeginChange opens an ensemble change and freezes the LAC. It returns the
// first entry of the new fragment, LAC+1: every entry from there on, pending
// or future, is written to the new ensemble. Acks keep being recorded while
// the change is open.
func (t *Tracker) BeginChange() (firstEntryID int64, err error) {
	if t.changing {
		return 0, ErrChangeInProgress
	}
	t.changing = true
	return t.lac + 1, nil
}

// CommitChange installs the replacements (ensemble index → new bookie id),
// which must already be persisted in metadata as the fragment starting at
// the id BeginChange returned. It clears the replaced members' acks and
// failure marks, lists the resends, unfreezes the LAC and reports entries
// acknowledged by acks recorded during the change. On error (wrapping
// ErrNoChange or ErrInvalidReplacement) nothing changes.
func (t *Tracker) CommitChange(replacements map[int]string) (ChangeResult, error) {
	if !t.changing {
		return ChangeResult{}, ErrNoChange
	}
	if len(replacements) == 0 {
		return ChangeResult{}, fmt.Errorf("%w: no replacement", ErrInvalidReplacement)
	}
	next := slices.Clone(t.ensemble)
	for _, idx := range slices.Sorted(maps.Keys(replacements)) {
		b := replacements[idx]
		if idx < 0 || idx >= len(next) || b == "" {
			return ChangeResult{}, fmt.Errorf("%w: index %d → %q", ErrInvalidReplacement, idx, b)
		}
		next[idx] = b
	}
	seen := make(map[string]bool, len(next))
	for idx, b := range next {
		if seen[b] {
			return ChangeResult{}, fmt.Errorf("%w: bookie %q would appear twice (index %d)", ErrInvalidReplacement, b, idx)
		}
		seen[b] = true
	}
	var clear uint64
	for idx := range replacements {
		clear |= 1 << idx
		t.failed[idx] = false
	}
	t.ensemble = next
	res := ChangeResult{FirstEntryID: t.lac + 1}
	for i := range t.pending {
		t.pending[i] &^= clear
		e := t.lac + 1 + int64(i)
		for _, idx := range t.p.WriteSet(e) {
			if clear&(1<<idx) != 0 {
				res.Resend = append(res.Resend, Send{EntryID: e, Index: idx, Bookie: next[idx]})
			}
		}
	}
	t.changing = false
	res.Acked = t.advance()
	return res, nil
}

// AbortChange closes an open change without replacing anyone (the metadata
// CAS failed, or no replacement was found: the shell then usually fails the
// writer). It unfreezes the LAC and returns the entries that became
// acknowledged.
func (t *Tracker) AbortChange() (EntryRange, error) {
	if !t.changing {
		return emptyRange, ErrNoChange
	}
	t.changing = false
	return t.advance(), nil
}
