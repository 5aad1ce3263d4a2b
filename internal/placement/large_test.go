package placement

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestLargeTopologies places big ensembles on big clusters: no brute force
// here, only the invariants and a bound on the search time. Slow-ish: skip
// under -short.
func TestLargeTopologies(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	rng := seeded(7)
	var slowest time.Duration
	failures := 0
	for iter := range 400 {
		nRegions := 1 + rng.IntN(5)
		var bs []Bookie
		for i := range 20 + rng.IntN(80) {
			r := rng.IntN(nRegions)
			bs = append(bs, Bookie{ID: fmt.Sprintf("b%03d", i), Region: fmt.Sprintf("g%d", r),
				Rack: fmt.Sprintf("k%d", rng.IntN(4)), Writable: rng.IntN(10) > 0})
		}
		minRegions := 1 + rng.IntN(3)
		e := 1 + rng.IntN(32)
		qw := 1 + rng.IntN(e)
		qa := 1 + rng.IntN(qw)
		p, _ := NewRegionAware(bs, seeded(uint64(iter)), minRegions)
		if p.Validate(e, qw, qa) != nil {
			continue
		}
		start := time.Now()
		ens, err := p.NewEnsemble(e, qw, qa, nil)
		slowest = max(slowest, time.Since(start))
		if err != nil {
			if !errors.Is(err, ErrNotEnoughBookies) {
				t.Fatal(err)
			}
			failures++
			continue
		}
		if !AckQuorumsSpanRegions(ens, qw, qa, minRegions, regionsOf(bs)) {
			t.Fatalf("%v breaks the rule", ens)
		}
		rp, _ := NewRackAware(bs, seeded(uint64(iter)))
		start = time.Now()
		if _, err := rp.NewEnsemble(e, qw, qa, nil); err != nil && !errors.Is(err, ErrNotEnoughBookies) {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("slowest placement %v, %d region-infeasible", slowest, failures)
}
