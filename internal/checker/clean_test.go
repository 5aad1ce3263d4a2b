package checker

import (
	"fmt"
	"testing"

	"github.com/dlog-io/dlog/internal/history"
)

func seeds(t *testing.T, short, long int) int {
	if testing.Short() {
		return short
	}
	return long
}

// TestGeneratedHistoriesAreClean: the simulator's histories (writer
// failover with fenced indeterminate appends ending up present or absent,
// retries, lost replies, crashes, truncation, resumed readers) must pass
// every property, for many seeds.
func TestGeneratedHistoriesAreClean(t *testing.T) {
	n := seeds(t, 200, 600)
	var total Counts
	for seed := range uint64(n) {
		cfg := defaultGenConfig(seed)
		events, drains := generate(cfg)
		h, err := history.Validate(events)
		if err != nil {
			t.Fatalf("seed %d: generator made an invalid history: %v", seed, err)
		}
		rep := Check(h, drains, Options{})
		if !rep.Valid {
			t.Fatalf("seed %d (%+v): violations %v\n%s", seed, cfg, rep.Failed(), table(rep))
		}
		for _, l := range rep.Linearizability.Logs {
			if l.Verdict != VerdictOK && l.Verdict != VerdictEmpty {
				t.Fatalf("seed %d: porcupine verdict %s for %s", seed, l.Verdict, l.Log)
			}
		}
		total.add(rep.Stats.Total)
	}
	// The generator must exercise what it claims to.
	t.Logf("totals over %d seeds: %+v", n, total)
	switch {
	case total.ResolvedPresent == 0 || total.ResolvedAbsent == 0:
		t.Errorf("indeterminate appends not resolved both ways: %+v", total)
	case total.TruncatedAcked == 0:
		t.Errorf("no acknowledged append was truncated: %+v", total)
	case total.AppendsFail == 0 || total.AppendsPending == 0:
		t.Errorf("no definite failures or pending appends: %+v", total)
	}
}

func table(rep Report) string {
	var b fmtBuffer
	_ = rep.WriteTable(&b)
	for _, p := range rep.Properties {
		for _, ex := range p.Examples {
			fmt.Fprintf(&b, "\n%s: %s\n", p.Name, ex.Detail)
			for _, e := range ex.Events {
				fmt.Fprintf(&b, "  line %d: %v\n", e.Line, e.Event)
			}
			for _, d := range ex.Drain {
				fmt.Fprintf(&b, "  drain: %+v\n", d)
			}
		}
	}
	return b.String()
}

type fmtBuffer struct{ s []byte }

func (b *fmtBuffer) Write(p []byte) (int, error) { b.s = append(b.s, p...); return len(p), nil }
func (b *fmtBuffer) String() string              { return string(b.s) }
