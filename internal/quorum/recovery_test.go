package quorum

import (
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// decideOracle: data wins; absent when every ack quorum of the write set
// contains an explicit (fenced) negative; unrecoverable when nothing is
// pending any more.
func decideOracle(p Params, rs []ReadResult) Decision {
	positions := make([]int, len(rs))
	pending := false
	for i, r := range rs {
		positions[i] = i
		if r == ReadPresent {
			return Present
		}
		pending = pending || r == ReadPending
	}
	everyQuorumDenied := subsets(positions, p.AckQuorum, func(q []int) bool {
		for _, i := range q {
			if rs[i] == ReadNoEntry || rs[i] == ReadNoLedger {
				return true
			}
		}
		return false
	})
	switch {
	case everyQuorumDenied:
		return Absent
	case pending:
		return Undecided
	}
	return Unrecoverable
}

// TestDecideEntryExhaustive checks every answer vector for Qw ≤ 5.
func TestDecideEntryExhaustive(t *testing.T) {
	all := []ReadResult{ReadPending, ReadPresent, ReadNoEntry, ReadNoLedger, ReadUnknown}
	for _, p := range smallParams(5) {
		if p.EnsembleSize != p.WriteQuorum {
			continue // the decision depends on Qw and Qa only
		}
		t.Run(p.String(), func(t *testing.T) {
			rs := make([]ReadResult, p.WriteQuorum)
			forEachVector(len(rs), all, rs, func() {
				got, want := p.DecideEntry(rs), decideOracle(p, rs)
				if got != want {
					t.Fatalf("%v results %v: DecideEntry=%v, oracle=%v", p, rs, got, want)
				}
				unknowns := 0
				for _, r := range rs {
					if r == ReadUnknown {
						unknowns++
					}
				}
				// Turning unknowns into more unknowns never yields Absent
				// unless the negatives alone suffice.
				if got == Absent && len(rs)-unknowns < p.NegativesNeeded() {
					t.Fatalf("%v results %v: absent without enough negatives", p, rs)
				}
			})
		})
	}
}

func TestDecideEntryExamples(t *testing.T) {
	N, L, U, D, P := ReadNoEntry, ReadNoLedger, ReadUnknown, ReadPresent, ReadPending
	p := Params{3, 3, 2}
	tests := []struct {
		name string
		rs   []ReadResult
		want Decision
	}{
		{"one negative is not enough", []ReadResult{N, P, P}, Undecided},
		{"two negatives", []ReadResult{N, L, P}, Absent},
		{"data wins", []ReadResult{N, N, D}, Present},
		{"data first", []ReadResult{D, P, P}, Present},
		// BookKeeper #2908: a corrupt read must not become "no entry".
		{"checksum errors are unknown", []ReadResult{N, U, U}, Unrecoverable},
		{"all unknown", []ReadResult{U, U, U}, Unrecoverable},
		{"waiting on last", []ReadResult{N, U, P}, Undecided},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.DecideEntry(tc.rs); got != tc.want {
				t.Fatalf("DecideEntry(%v) = %v, want %v", tc.rs, got, tc.want)
			}
		})
	}
}

// TestScanProperty runs the recovery scan against the truth: the ledger's
// entries after the LAC are decided by a hidden per-entry verdict, decisions
// arrive in random order, and the outcome must be the first non-Present
// verdict, with confirmed ranges exactly the Present prefix in order.
func TestScanProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		lac := rapid.Int64Range(-1, 5).Draw(t, "lac")
		window := rapid.IntRange(1, 6).Draw(t, "window")
		n := rapid.IntRange(0, 12).Draw(t, "presentPrefix")
		end := rapid.SampledFrom([]Decision{Absent, Unrecoverable}).Draw(t, "end")
		// verdict of entry lac+1+i: Present for i < n, end at n, random after.
		tail := rapid.SliceOfN(rapid.SampledFrom([]Decision{Present, Absent, Unrecoverable}), 0, 8).Draw(t, "tail")
		verdict := func(e int64) Decision {
			i := int(e - lac - 1)
			switch {
			case i < n:
				return Present
			case i == n:
				return end
			case i-n-1 < len(tail):
				return tail[i-n-1]
			}
			return Unrecoverable
		}
		s := NewScan(lac, window)
		var outstanding []int64
		nextConfirmed := lac + 1
		for steps := 0; s.State() == Scanning; steps++ {
			if steps > 1000 {
				t.Fatal("scan does not terminate")
			}
			for {
				id, ok := s.Next()
				if !ok {
					break
				}
				outstanding = append(outstanding, id)
			}
			if len(outstanding) > window {
				t.Fatalf("%d outstanding, window %d", len(outstanding), window)
			}
			if len(outstanding) == 0 {
				t.Fatal("scanning with nothing outstanding and nothing to issue")
			}
			k := rapid.IntRange(0, len(outstanding)-1).Draw(t, "pick")
			id := outstanding[k]
			outstanding = append(outstanding[:k], outstanding[k+1:]...)
			r, err := s.Record(id, verdict(id))
			if err != nil {
				t.Fatal(err)
			}
			if !r.Empty() {
				if r.First != nextConfirmed {
					t.Fatalf("confirmed %v, expected to start at %d", r, nextConfirmed)
				}
				nextConfirmed = r.Last + 1
			}
		}
		if nextConfirmed != lac+1+int64(n) {
			t.Fatalf("confirmed up to %d, want %d", nextConfirmed-1, lac+int64(n))
		}
		switch end {
		case Absent:
			if s.State() != ScanDone || s.LastEntryID() != lac+int64(n) || s.Err() != nil {
				t.Fatalf("state %v last %d err %v, want done at %d", s.State(), s.LastEntryID(), s.Err(), lac+int64(n))
			}
		case Unrecoverable:
			if s.State() != ScanFailed || !errors.Is(s.Err(), ErrUnrecoverable) {
				t.Fatalf("state %v err %v, want failed", s.State(), s.Err())
			}
		}
		// Late decisions after the end are ignored.
		for _, id := range outstanding {
			if r, err := s.Record(id, verdict(id)); err != nil || !r.Empty() {
				t.Fatalf("late record of %d: %v %v", id, r, err)
			}
		}
	})
}

func TestScanMisuse(t *testing.T) {
	tests := []struct {
		name string
		run  func(s *Scan) error
	}{
		{"undecided", func(s *Scan) error { id, _ := s.Next(); _, err := s.Record(id, Undecided); return err }},
		{"never issued", func(s *Scan) error { _, err := s.Record(7, Present); return err }},
		{"twice", func(s *Scan) error {
			s.Next()
			id, _ := s.Next()
			if _, err := s.Record(id, Present); err != nil {
				return fmt.Errorf("first: %v", err)
			}
			_, err := s.Record(id, Present)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(NewScan(-1, 3)); !errors.Is(err, ErrScanMisuse) {
				t.Fatalf("got %v, want ErrScanMisuse", err)
			}
		})
	}
}

func TestScanEmptyLedger(t *testing.T) {
	s := NewScan(-1, 1)
	id, ok := s.Next()
	if !ok || id != 0 {
		t.Fatalf("Next = %d %v", id, ok)
	}
	if _, ok := s.Next(); ok {
		t.Fatal("window of 1 handed out two reads")
	}
	if _, err := s.Record(0, Absent); err != nil {
		t.Fatal(err)
	}
	if s.State() != ScanDone || s.LastEntryID() != -1 {
		t.Fatalf("state %v last %d", s.State(), s.LastEntryID())
	}
	if _, ok := s.Next(); ok {
		t.Fatal("Next after done")
	}
}
