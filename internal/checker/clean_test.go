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
	n := seeds(t, 400, 2000)
	var total Counts
	var fencedPresent, fencedAbsent int
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
		fencedPresent, fencedAbsent = countFenced(events, drains, fencedPresent, fencedAbsent)
	}
	t.Logf("fenced indeterminate appends: %d present, %d absent", fencedPresent, fencedAbsent)
	if fencedPresent == 0 || fencedAbsent == 0 {
		t.Errorf("failover must leave fenced appends both present and absent")
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

// countFenced adds the appends that completed with a fenced error and
// whose value the drain has (present) or not (absent).
func countFenced(events []history.Event, drains history.Drains, present, absent int) (int, int) {
	in := map[string]bool{}
	for _, d := range drains {
		for _, r := range d.Records {
			in[r.Value] = true
		}
	}
	for _, e := range events {
		if e.Kind == history.Append && e.Type == history.Info && e.Error == history.ClassFenced {
			if in[e.Value] {
				present++
			} else {
				absent++
			}
		}
	}
	return present, absent
}
