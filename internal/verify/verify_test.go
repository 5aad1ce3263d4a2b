package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/history"
	"github.com/dlog-io/dlog/internal/metadata"
)

// testLogger logs the harness's progress to stderr when DLOG_VERIFY_LOG
// names a level ("info", "debug"); otherwise it discards.
func testLogger(t *testing.T) *slog.Logger {
	var lvl slog.Level
	if s := os.Getenv("DLOG_VERIFY_LOG"); s == "" || lvl.UnmarshalText([]byte(s)) != nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("test", t.Name())
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value string
		pad   int
	}{
		{"bare", "w3-1042", 0},
		{"padded", "w0-1", 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Payload(tc.value, tc.pad)
			if got := ValueOf(p); got != tc.value {
				t.Fatalf("ValueOf(Payload(%q)) = %q", tc.value, got)
			}
			if len(p) < tc.pad {
				t.Fatalf("payload of %d bytes for pad %d", len(p), tc.pad)
			}
		})
	}
	if got := ValueOf([]byte("not ours!")); got[0] != '?' {
		t.Fatalf("a foreign payload reads as %q; want it marked", got)
	}
}

// TestWireErrorKeepsClass: an error that crosses the agent API classifies
// exactly as on the agent, so the history records what the system said.
func TestWireErrorKeepsClass(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("log x: %w", dlog.ErrFenced),
		fmt.Errorf("metadata: %w", dlog.ErrUnavailable),
		dlog.Indeterminate(errors.New("segment failed")),
		fmt.Errorf("x: %w", dlog.ErrTxIDOutOfOrder),
		fmt.Errorf("x: %w", dlog.ErrOverCapacity),
		&dlog.OwnedError{Log: "l0", OwnerID: "agent-1.p7.w2"},
		context.DeadlineExceeded,
		fmt.Errorf("x: %w", dlog.ErrClosed),
		errors.New("something unknown"),
	} {
		w := toWire(err)
		if got, want := history.ErrorClass(w), history.ErrorClass(err); got != want {
			t.Errorf("%v: class %q across the wire, %q before", err, got, want)
		}
		if got, want := dlog.IsDefinite(w), dlog.IsDefinite(err); got != want {
			t.Errorf("%v: definite %v across the wire, %v before", err, got, want)
		}
		var owned *dlog.OwnedError
		if errors.As(err, &owned) {
			var o2 *dlog.OwnedError
			if !errors.As(w, &o2) || o2.OwnerID != owned.OwnerID {
				t.Errorf("owner id lost across the wire: %v", w)
			}
		}
	}
}

func TestAgentOfEpoch(t *testing.T) {
	for in, want := range map[string]string{"agent-1.p9.w3": "agent-1", "agent-0": "agent-0", "": ""} {
		if got := agentOfEpoch(in); got != want {
			t.Errorf("agentOfEpoch(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEveryBugHasAScenario: each seeded bug is proven by a scenario.
func TestEveryBugHasAScenario(t *testing.T) {
	for _, b := range bugs.All {
		if ScenarioForBug(b) == nil {
			t.Logf("bug %s has no scenario yet (see docs/verification.md)", b)
		}
	}
	for _, s := range Scenarios() {
		if s.Nemesis == nil || s.Summary == "" || s.Guarantees == "" {
			t.Errorf("scenario %s is incomplete", s.Name)
		}
	}
}

// TestMetaWatchRules feeds the metadata watch synthetic changes.
func TestMetaWatchRules(t *testing.T) {
	seg := func(lssn int64, state metadata.SegmentState, last int64, writer string) metadata.LogEvent {
		return metadata.LogEvent{Type: metadata.EventPut, Kind: metadata.LogKeySegment,
			Segment: metadata.Segment{LSSN: lssn, State: state, LastEntryID: last, WriterID: writer}}
	}
	in, done := metadata.SegmentInProgress, metadata.SegmentCompleted
	for _, tc := range []struct {
		name   string
		events [][]metadata.LogEvent // one slice per revision
		bad    bool
	}{
		{"roll by one writer", [][]metadata.LogEvent{
			{seg(1, in, -1, "a")}, {seg(2, in, -1, "a")}, {seg(1, done, 9, "a")},
		}, false},
		{"takeover", [][]metadata.LogEvent{
			{seg(1, in, -1, "a")}, {seg(1, done, 9, "b")}, {seg(2, in, -1, "b")},
		}, false},
		{"two epochs in progress", [][]metadata.LogEvent{
			{seg(1, in, -1, "a")}, {seg(2, in, -1, "b")},
		}, true},
		{"completed segment changes", [][]metadata.LogEvent{
			{seg(1, in, -1, "a")}, {seg(1, done, 9, "a")}, {seg(1, done, 7, "a")},
		}, true},
		{"completed segment reopens", [][]metadata.LogEvent{
			{seg(1, done, 9, "a")}, {seg(1, in, -1, "a")},
		}, true},
		{"lssn goes back", [][]metadata.LogEvent{
			{seg(2, done, 3, "a")}, {seg(1, in, -1, "a")},
		}, true},
		{"truncation goes back", [][]metadata.LogEvent{
			{{Type: metadata.EventPut, Kind: metadata.LogKeyTruncation, Truncation: dlog.DLSN{LSSN: 2}}},
			{{Type: metadata.EventPut, Kind: metadata.LogKeyTruncation, Truncation: dlog.DLSN{LSSN: 1, EntryID: 5}}},
		}, true},
		{"collected segment", [][]metadata.LogEvent{
			{seg(1, done, 9, "a")}, {seg(2, in, -1, "a")},
			{{Type: metadata.EventDelete, Kind: metadata.LogKeySegment, Segment: metadata.Segment{LSSN: 1}}},
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &metaWatch{}
			v := &logView{segs: map[int64]metadata.Segment{}, completed: map[int64]metadata.Segment{}, maxTxID: -1}
			for i, rev := range tc.events {
				for _, ev := range rev {
					ev.Revision = int64(i + 1)
					m.apply("l", v, ev)
				}
				m.checkRevision("l", v, int64(i+1))
			}
			if got := len(m.mu.violations) > 0; got != tc.bad {
				t.Fatalf("violations %v; want some: %v", m.mu.violations, tc.bad)
			}
		})
	}
}

// TestBaseline runs the whole harness without faults: a cluster of
// processes, the workload, the drain and the checker must agree.
func TestBaseline(t *testing.T) {
	r := runScenario(t, "baseline", 4*time.Second, nil)
	requirePass(t, r, 50)
}

// TestOwnerKill chases the owner of the hot log for a few seconds: process
// kills, takeovers and recoveries, checked.
func TestOwnerKill(t *testing.T) {
	d := 20 * time.Second
	if testing.Short() {
		d = 8 * time.Second
	}
	r := runScenario(t, "owner-kill", d, nil)
	requirePass(t, r, 50)
	if r.Faults == 0 {
		t.Fatal("the nemesis injected no fault")
	}
}

// TestScenarios runs a set of scenarios (DLOG_VERIFY_SCENARIOS, comma-
// separated, default a few that cover kills, pauses, fencing and crashes)
// for DLOG_VERIFY_DURATION each (default 20 s). Long: skipped under -short.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("long: runs several fault scenarios")
	}
	names := []string{"bookie-kill", "owner-pause", "fence-drop", "coordinated-crash", "hung-bookie-recovery"}
	if s := os.Getenv("DLOG_VERIFY_SCENARIOS"); s != "" {
		names = splitList(s)
	}
	d := 20 * time.Second
	if s := os.Getenv("DLOG_VERIFY_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			requirePass(t, runScenario(t, n, d, nil), 100)
		})
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
