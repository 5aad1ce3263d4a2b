package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/metadata"
)

// Scenario is one fault scenario: a cluster shape, a workload and a
// nemesis that injects faults until its context ends. The runner heals
// everything afterwards, so a nemesis may return in the middle of a fault.
type Scenario struct {
	Name string
	// Summary says what the nemesis does, in one line.
	Summary string
	// Guarantees names what the scenario stresses (DESIGN.md §3).
	Guarantees string
	Cluster    func(*ClusterConfig)
	Workload   func(*WorkloadConfig)
	Nemesis    func(ctx context.Context, r *Run) error
	// Bug is the bug switch this scenario proves the checker catches
	// (sensitivity), if any.
	Bug string
	// HarnessBug: the bug lives in code the harness process runs itself
	// (the readers), so the harness must be built with -tags dlogbugs too.
	HarnessBug bool
	// Failpoints: the scenario injects faults through failpoints
	// (bugs.WrapFS, DLOG_FAILPOINTS), so the cluster's binary must be
	// built with -tags dlogbugs, and the bookie must call bugs.WrapFS. The
	// nemesis checks both and fails the run (ErrFaultNotInjected) when the
	// failpoint does not fire.
	Failpoints bool
}

// ErrFaultNotInjected is returned (wrapped) by a nemesis that could not
// inject its fault at all, e.g. a failpoint that is not wired into the
// binary. The run then fails instead of passing without testing anything.
var ErrFaultNotInjected = errors.New("verify: fault not injected")

// ErrStuck is returned (wrapped) by a nemesis that saw the system fail to
// make progress it must make while the fault lasts (a takeover blocked by
// one hung bookie). The run goes on to its heal and checks, and is then
// reported as a liveness violation.
var ErrStuck = errors.New("verify: no progress during a fault")

var registry = map[string]*Scenario{}

func register(s *Scenario) *Scenario {
	if _, dup := registry[s.Name]; dup {
		panic("verify: scenario registered twice: " + s.Name)
	}
	registry[s.Name] = s
	return s
}

// Scenarios returns every scenario, sorted by name.
func Scenarios() []*Scenario {
	out := make([]*Scenario, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the named scenario, or an error listing the known ones.
func Lookup(name string) (*Scenario, error) {
	if s, ok := registry[name]; ok {
		return s, nil
	}
	var names []string
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	return nil, fmt.Errorf("verify: unknown scenario %q (known: %v)", name, names)
}

// ScenarioForBug returns the scenario that proves bug, or nil.
func ScenarioForBug(bug string) *Scenario {
	for _, s := range Scenarios() {
		if s.Bug == bug {
			return s
		}
	}
	return nil
}

// ---- helpers for nemeses ----

// ensembleBookies returns the ids of the bookies in the last fragment of
// every log's in-progress segment (what a kill hurts right now).
func (r *Run) ensembleBookies(ctx context.Context) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range r.W.Logs() {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := r.C.Store.GetLogState(cctx, namespaceName, l)
		cancel()
		if err != nil {
			continue
		}
		for _, s := range st.Segments {
			if s.State != metadata.SegmentInProgress {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			md, _, err := r.C.Store.GetLedger(cctx, s.LedgerID)
			cancel()
			if err != nil || len(md.Fragments) == 0 {
				continue
			}
			for _, b := range md.Fragments[len(md.Fragments)-1].Bookies {
				if !seen[b] {
					seen[b] = true
					out = append(out, b)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// pickBookie returns a running bookie, preferring one in a current
// ensemble; nil if none runs.
func (r *Run) pickBookie(ctx context.Context, exclude ...*Bookie) *Bookie {
	skip := map[*Bookie]bool{}
	for _, b := range exclude {
		skip[b] = true
	}
	var pool []*Bookie
	for _, id := range r.ensembleBookies(ctx) {
		if b := r.C.BookieByID(id); b != nil && b.Proc.Running() && !skip[b] {
			pool = append(pool, b)
		}
	}
	if len(pool) == 0 {
		for _, b := range r.C.Bookies {
			if b.Proc.Running() && !skip[b] {
				pool = append(pool, b)
			}
		}
	}
	if len(pool) == 0 {
		return nil
	}
	return pool[r.Rng.IntN(len(pool))]
}

// requireHarnessBugs switches bugs on in the harness's own process (for
// bugs in code the harness runs, its readers); it fails when this binary
// was built without the dlogbugs tag.
func requireHarnessBugs(names []string) error {
	for _, n := range names {
		if !bugs.Available {
			return fmt.Errorf("verify: bug %s lives in the harness's readers: build dlog with -tags dlogbugs", n)
		}
		if err := bugs.Set(n, true); err != nil {
			return err
		}
	}
	return nil
}
