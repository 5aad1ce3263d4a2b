package quorum

import (
	"errors"
	"slices"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name      string
		e, qw, qa int
		ok        bool
	}{
		{"3/3/2", 3, 3, 2, true},
		{"1/1/1", 1, 1, 1, true},
		{"5/3/2 striped", 5, 3, 2, true},
		{"max ensemble", MaxEnsembleSize, 3, 2, true},
		{"ack quorum zero", 3, 3, 0, false},
		{"negative", -1, -1, -1, false},
		{"ack above write", 3, 2, 3, false},
		{"write above ensemble", 2, 3, 2, false},
		{"ensemble too large", MaxEnsembleSize + 1, 3, 2, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.e, tc.qw, tc.qa)
			if (err == nil) != tc.ok {
				t.Fatalf("Validate(%d,%d,%d) = %v, want ok=%v", tc.e, tc.qw, tc.qa, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("error %v does not wrap ErrInvalidParams", err)
			}
		})
	}
}

func TestWriteSet(t *testing.T) {
	tests := []struct {
		name  string
		entry int64
		e, qw int
		want  []int
	}{
		{"no striping", 7, 3, 3, []int{1, 2, 0}},
		{"first entry", 0, 5, 3, []int{0, 1, 2}},
		{"wraps", 4, 5, 3, []int{4, 0, 1}},
		{"single", 9, 4, 1, []int{1}},
		{"large id", 1<<62 + 3, 5, 2, []int{int((1<<62 + 3) % 5), int((1<<62+3)%5+1) % 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := WriteSet(tc.entry, tc.e, tc.qw); !slices.Equal(got, tc.want) {
				t.Fatalf("WriteSet = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInWriteSetMatchesWriteSet(t *testing.T) {
	for e := 1; e <= 6; e++ {
		for qw := 1; qw <= e; qw++ {
			p := Params{e, qw, 1}
			for entry := int64(0); entry < int64(2*e+1); entry++ {
				ws := p.WriteSet(entry)
				for idx := -1; idx <= e; idx++ {
					if got, want := p.InWriteSet(entry, idx), slices.Contains(ws, idx); got != want {
						t.Fatalf("%v entry %d idx %d: InWriteSet=%v, write set %v", p, entry, idx, got, ws)
					}
				}
			}
		}
	}
}

func TestWriteSetPanicsOutOfDomain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		entry int64
		e, qw int
	}{{"negative entry", -1, 3, 3}, {"qw zero", 0, 3, 0}, {"qw above e", 0, 2, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			WriteSet(tc.entry, tc.e, tc.qw)
		})
	}
}

// smallParams enumerates every valid (E, Qw, Qa) with E ≤ maxE.
func smallParams(maxE int) []Params {
	var out []Params
	for e := 1; e <= maxE; e++ {
		for qw := 1; qw <= e; qw++ {
			for qa := 1; qa <= qw; qa++ {
				out = append(out, Params{e, qw, qa})
			}
		}
	}
	return out
}

// subsets calls f with every k-subset of items; it stops when f is false.
func subsets(items []int, k int, f func([]int) bool) bool {
	var rec func(start int, cur []int) bool
	rec = func(start int, cur []int) bool {
		if len(cur) == k {
			return f(cur)
		}
		for i := start; i < len(items); i++ {
			if !rec(i+1, append(cur, items[i])) {
				return false
			}
		}
		return true
	}
	return rec(0, nil)
}
