package quorum

import (
	"fmt"
	"testing"
)

// coverageOracle restates the rule by brute force over ack quorums:
// covered when no Qa members of any write set are all without an answer;
// never covered when Qa members of some write set have all failed.
func coverageOracle(p Params, states []Response) Coverage {
	covered, never := true, false
	for start := range p.EnsembleSize {
		ws := p.WriteSet(int64(start))
		subsets(ws, p.AckQuorum, func(q []int) bool {
			allSilent, allFailed := true, true
			for _, idx := range q {
				allSilent = allSilent && states[idx] != Answered
				allFailed = allFailed && states[idx] == Failed
			}
			covered = covered && !allSilent
			never = never || allFailed
			return true
		})
	}
	switch {
	case never:
		return NeverCovered
	case covered:
		return Covered
	}
	return NotCovered
}

// TestCoverageExhaustive checks every state vector for every E ≤ 5.
func TestCoverageExhaustive(t *testing.T) {
	for _, p := range smallParams(5) {
		t.Run(p.String(), func(t *testing.T) {
			states := make([]Response, p.EnsembleSize)
			counts := map[Coverage]int{}
			forEachVector(len(states), []Response{Pending, Answered, Failed}, states, func() {
				got, want := p.Coverage(states), coverageOracle(p, states)
				if got != want {
					t.Fatalf("%v states %v: Coverage=%v, oracle=%v", p, states, got, want)
				}
				counts[got]++
			})
			if counts[Covered] == 0 || counts[NotCovered] == 0 {
				t.Fatalf("%v: verdicts %v: enumeration did not reach every verdict", p, counts)
			}
		})
	}
}

func forEachVector[T any](n int, values []T, v []T, f func()) {
	var rec func(i int)
	rec = func(i int) {
		if i == n {
			f()
			return
		}
		for _, x := range values {
			v[i] = x
			rec(i + 1)
		}
	}
	rec(0)
}

func TestCoverageExamples(t *testing.T) {
	A, P, F := Answered, Pending, Failed
	tests := []struct {
		name   string
		p      Params
		states []Response
		want   Coverage
	}{
		// 3/3/2: one answer per write set is not enough; Qw−Qa+1 = 2.
		{"3/3/2 one answer", Params{3, 3, 2}, []Response{A, P, P}, NotCovered},
		{"3/3/2 two answers", Params{3, 3, 2}, []Response{A, P, A}, Covered},
		{"3/3/2 two failed", Params{3, 3, 2}, []Response{A, F, F}, NeverCovered},
		{"3/3/2 one failed", Params{3, 3, 2}, []Response{A, F, A}, Covered},
		// BookKeeper #2612: one "no entry" must not cover a 3/2/2 ledger;
		// every write set needs its own answer.
		{"3/2/2 one answer", Params{3, 2, 2}, []Response{A, P, P}, NotCovered},
		{"3/2/2 middle only", Params{3, 2, 2}, []Response{P, A, P}, NotCovered},
		{"3/2/2 two answers", Params{3, 2, 2}, []Response{A, P, A}, Covered},
		{"3/2/2 adjacent gap", Params{3, 2, 2}, []Response{A, A, P}, Covered},
		{"5/3/3 one per write set", Params{5, 3, 3}, []Response{A, P, P, A, P}, Covered},
		{"5/3/3 gap of three", Params{5, 3, 3}, []Response{A, P, P, P, A}, NotCovered},
		{"5/3/2 needs two per set", Params{5, 3, 2}, []Response{A, A, P, A, P}, NotCovered},
		{"5/3/2 all answered", Params{5, 3, 2}, []Response{A, A, A, A, A}, Covered},
		{"5/3/2 two failed in a set", Params{5, 3, 2}, []Response{F, A, F, A, A}, NeverCovered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.p.Coverage(tc.states); got != tc.want {
				t.Fatalf("Coverage(%v) = %v, want %v", tc.states, got, tc.want)
			}
		})
	}
}

func TestCoveragePanicsOnBadInput(t *testing.T) {
	p := Params{3, 3, 2}
	for _, states := range [][]Response{{Answered}, {Answered, Answered, 0}, {Answered, Answered, 9}} {
		t.Run(fmt.Sprint(states), func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			p.Coverage(states)
		})
	}
}
