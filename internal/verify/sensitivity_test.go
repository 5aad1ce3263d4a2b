//go:build dlogbugs

package verify

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/checker"
)

// The sensitivity tests prove that the harness catches each seeded bug
// (internal/bugs) in its scenario, and that the same scenario is clean
// with the bug off: a checker that never fails proves nothing.
//
//	go test -tags dlogbugs -run TestSensitivity ./internal/verify          # long
//	go test -tags dlogbugs -short -run TestSensitivity ./internal/verify   # bug-on runs only, shorter

var sensitivity = []struct {
	bug, scenario string
	// expect: the run must fail at least one of these properties.
	expect []string
	// unreachable explains why the bug cannot show through the public
	// API; the test then only reports what it saw.
	unreachable string
}{
	{bug: bugs.AckBeforeFsync, scenario: "coordinated-crash", expect: []string{checker.PropLost}},
	{bug: bugs.RecoveryReadsDoNotFence, scenario: "fence-drop", expect: []string{checker.PropLost, checker.PropPostFenceAck}},
	{bug: bugs.AckBeforeEnsembleCAS, scenario: "ensemble-change-etcd-stall", expect: []string{checker.PropLost, checker.PropPostFenceAck}},
	{bug: bugs.IOErrorAsNoEntry, scenario: "corrupt-bookie", expect: []string{checker.PropLost, checker.PropPostFenceAck}},
	{bug: bugs.ReaderPastLAC, scenario: "reader-tail-crash", expect: []string{checker.PropReadPastSeal, checker.PropPhantom}},
	{bug: bugs.JournalSkipFsync, scenario: "power-loss", expect: []string{checker.PropLost}},
}

func TestSensitivity(t *testing.T) {
	for _, s := range sensitivity {
		if ScenarioForBug(s.bug) == nil || ScenarioForBug(s.bug).Name != s.scenario {
			t.Errorf("bug %s: registered scenario %v, table says %s", s.bug, ScenarioForBug(s.bug), s.scenario)
		}
	}
	for _, s := range sensitivity {
		t.Run(s.bug, func(t *testing.T) {
			d, attempts := 40*time.Second, 3
			if testing.Short() {
				d, attempts = 20*time.Second, 1
			}
			caught := false
			for i := 0; i < attempts && !caught; i++ {
				r := runScenario(t, s.scenario, d, []string{s.bug})
				if r.Err != "" {
					t.Fatalf("run with %s: %s", s.bug, r.Err)
				}
				failed := violations(r)
				t.Logf("with %s, run %d: %s", s.bug, i+1, strings.Join(failed, ", "))
				for _, p := range s.expect {
					caught = caught || slices.Contains(failed, p)
				}
			}
			switch {
			case !caught && s.unreachable != "":
				t.Skipf("bug %s not observable in %s: %s", s.bug, s.scenario, s.unreachable)
			case !caught:
				t.Fatalf("the checker did not catch %s in %s within %d runs of %v (want one of %v)", s.bug, s.scenario, attempts, d, s.expect)
			case s.unreachable != "":
				t.Errorf("bug %s was caught although the table says it cannot be: update the table", s.bug)
			}
			if testing.Short() {
				return
			}
			requirePass(t, runScenario(t, s.scenario, d, nil), 100)
		})
	}
}
