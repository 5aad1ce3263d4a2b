package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
)

// seeder writes logs, segments and ledgers straight into metadata (and
// ledgers onto the bookies) to stage what the protocol never does.
type seeder struct {
	t  *testing.T
	st metadata.Store
	lc *ledger.Client
}

// ledger creates a ledger tagged for ns/log segment lssn with n entries;
// closed or left open (as a crashed writer leaves it).
func (s seeder) ledger(ctx context.Context, ns, log string, lssn int64, n int, closed bool) int64 {
	s.t.Helper()
	w, err := s.lc.Create(ctx, ledger.CreateOptions{EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2,
		Custom: map[string]string{"dlog.namespace": ns, "dlog.log": log, "dlog.lssn": strconv.FormatInt(lssn, 10)}})
	if err != nil {
		s.t.Fatal(err)
	}
	for i := range n {
		if _, err := w.Add(ctx, []byte(fmt.Sprintf("entry-%d", i))); err != nil {
			s.t.Fatal(err)
		}
	}
	if closed {
		if _, err := w.Close(ctx); err != nil {
			s.t.Fatal(err)
		}
	} else {
		w.Abort()
	}
	return w.ID()
}

// log creates ns/log with the given segments, max lssn, max txid and
// truncation point, in one transaction.
func (s seeder) log(ctx context.Context, ns, log string, segs []metadata.Segment, maxLSSN, maxTxID int64, trunc dlog.DLSN) {
	s.t.Helper()
	if err := s.st.CreateLog(ctx, ns, log, metadata.LogInfo{Created: time.Now()}); err != nil {
		s.t.Fatal(err)
	}
	ls, err := s.st.GetLogState(ctx, ns, log)
	if err != nil {
		s.t.Fatal(err)
	}
	ops := []metadata.Op{
		metadata.SetMaxLSSN(ns, log, maxLSSN, ls.MaxLSSNVersion),
		metadata.SetMaxTxID(ns, log, maxTxID, ls.MaxTxIDVersion),
	}
	if trunc != (dlog.DLSN{}) {
		ops = append(ops, metadata.SetTruncation(ns, log, trunc, ls.TruncationVersion))
	}
	for _, sg := range segs {
		if sg.Truncation == 0 {
			sg.Truncation = metadata.TruncationActive
		}
		sg.Created = time.Now()
		ops = append(ops, metadata.CreateSegment(ns, log, sg))
	}
	if _, err := s.st.Commit(ctx, ops...); err != nil {
		s.t.Fatal(err)
	}
}

func completed(lssn, ledgerID, start, count, lastEntry, lastTxID int64) metadata.Segment {
	return metadata.Segment{LSSN: lssn, LedgerID: ledgerID, State: metadata.SegmentCompleted, StartSequenceID: start,
		RecordCount: count, LastEntryID: lastEntry, LastSlotID: 0, FirstTxID: lastTxID, LastTxID: lastTxID, Completed: time.Now()}
}

func inProgress(lssn, ledgerID, start int64) metadata.Segment {
	return metadata.Segment{LSSN: lssn, LedgerID: ledgerID, State: metadata.SegmentInProgress, StartSequenceID: start,
		LastEntryID: -1, LastSlotID: -1, LastTxID: -1}
}

// problems returns the problems of `inspect -o json` as "problem@lssn:status".
func problems(t *testing.T, r result) []string {
	t.Helper()
	var out []string
	for _, f := range r.jsonLines(t) {
		out = append(out, fmt.Sprintf("%s@%v:%s", f["problem"], f["lssn"], f["status"]))
	}
	slices.Sort(out)
	return out
}

// TestAdminInspectAndRepair seeds inconsistencies through the metadata
// API, checks that inspect names each one, that --repair fixes every one
// it can (recovering ledgers, recovering in-progress segments as a writer,
// rewriting keys by CAS), and that what it cannot fix is reported and
// fails the command.
func TestAdminInspectAndRepair(t *testing.T) {
	sb := testSandbox(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	md := []string{"--metadata", sb.MetadataURL()}
	st := sb.Store()
	lc, err := ledger.New(ctx, st, ledger.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	s := seeder{t: t, st: st, lc: lc}

	// A healthy log written through the service.
	mustDlog(t, "", "log", "create", "clean", "--server", sb.Addr())
	mustDlog(t, "a\nb\n", "write", "clean", "--server", sb.Addr())
	if r := mustDlog(t, "", append([]string{"admin", "inspect", "clean", "-o", "json"}, md...)...); strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("a healthy log has findings: %s", r)
	}

	// "broken": every repairable kind of problem at once.
	//   1 completed, ledger closed at entry 2; marked active although the
	//     truncation point 1:1:0 lies inside it (mark behind)
	//   2 completed, start sequence id 7 instead of 3 (chain), its ledger
	//     still open (a writer crashed after completing it)
	//   3 in progress, before a completed segment, its ledger open and empty
	//   4 completed, marked truncated although after the truncation point
	//   max lssn 3 (behind segment 4), max txid 25 (behind txid 30)
	l1 := s.ledger(ctx, "default", "broken", 1, 3, true)
	l2 := s.ledger(ctx, "default", "broken", 2, 2, false)
	l3 := s.ledger(ctx, "default", "broken", 3, 0, false)
	l4 := s.ledger(ctx, "default", "broken", 4, 1, true)
	seg4 := completed(4, l4, 8, 1, 0, 30)
	seg4.Truncation = metadata.TruncationFull
	s.log(ctx, "default", "broken", []metadata.Segment{
		completed(1, l1, 0, 3, 2, 10),
		completed(2, l2, 7, 5, 1, 20),
		inProgress(3, l3, 8),
		seg4,
	}, 3, 25, dlog.DLSN{LSSN: 1, EntryID: 1})

	r := runDlog(t, "", append([]string{"admin", "inspect", "broken", "-o", "json"}, md...)...)
	if r.code != ExitError {
		t.Fatalf("inspect of a broken log: %s", r)
	}
	want := []string{
		"in-progress-not-last@3:found",
		"ledger-not-closed@2:found",
		"max-lssn-behind@4:found",
		"max-txid-behind@<nil>:found",
		"sequence-chain@2:found",
		"sequence-chain@3:found",
		"truncation-mark-ahead@4:found",
		"truncation-mark-behind@1:found",
	}
	if got := problems(t, r); !slices.Equal(got, want) {
		t.Fatalf("findings:\n%s\nwant:\n%s\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), r)
	}
	for _, f := range r.jsonLines(t) {
		if f["repair"] == nil || f["severity"] == nil || f["detail"] == "" {
			t.Fatalf("finding without repair, severity or detail: %v", f)
		}
	}
	// Table form names the problems too.
	if r := runDlog(t, "", append([]string{"admin", "inspect", "broken"}, md...)...); !strings.Contains(r.stdout, "sequence-chain") || !strings.Contains(r.stderr, "--repair") {
		t.Fatalf("inspect (table): %s", r)
	}

	// --repair without a terminal and without --yes changes nothing.
	if r := runDlog(t, "", append([]string{"admin", "inspect", "broken", "--repair"}, md...)...); r.code != ExitUsage || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("repair without confirmation: %s", r)
	}
	if got := problems(t, runDlog(t, "", append([]string{"admin", "inspect", "broken", "-o", "json"}, md...)...)); !slices.Equal(got, want) {
		t.Fatalf("a refused repair changed something: %v", got)
	}

	r = runDlog(t, "", append([]string{"admin", "inspect", "broken", "--repair", "--yes", "-o", "json"}, md...)...)
	if r.code != ExitOK {
		t.Fatalf("repair: %s", r)
	}
	for _, p := range problems(t, r) {
		if !strings.HasSuffix(p, ":repaired") {
			t.Fatalf("after repair: %v\n%s", problems(t, r), r)
		}
	}
	if r := mustDlog(t, "", append([]string{"admin", "inspect", "broken", "-o", "json"}, md...)...); strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("findings after repair: %s", r)
	}
	ls, err := st.GetLogState(ctx, "default", "broken")
	if err != nil {
		t.Fatal(err)
	}
	var lssns []int64
	for _, sg := range ls.Segments {
		lssns = append(lssns, sg.LSSN)
		if sg.State != metadata.SegmentCompleted {
			t.Fatalf("segment %d still in progress", sg.LSSN)
		}
	}
	if !slices.Equal(lssns, []int64{1, 2, 4}) || ls.Segments[1].StartSequenceID != 3 || ls.MaxTxID != 30 || ls.MaxLSSN < 4 {
		t.Fatalf("after repair: segments %v, %+v", lssns, ls)
	}
	if ls.Segments[0].Truncation != metadata.TruncationPartial || ls.Segments[2].Truncation != metadata.TruncationActive {
		t.Fatalf("marks after repair: %+v", ls.Segments)
	}
	if m, _, err := st.GetLedger(ctx, l2); err != nil || m.State != metadata.LedgerClosed || m.LastEntryID != 1 {
		t.Fatalf("ledger %d after repair: %+v %v", l2, m, err)
	}

	// "lost": what no repair can bring back.
	l5 := s.ledger(ctx, "default", "lost", 1, 1, true)
	s.log(ctx, "default", "lost", []metadata.Segment{
		completed(1, l5, 0, 3, 2, 5),      // its ledger was closed at entry 0
		completed(3, 987654, 10, 1, 0, 6), // records 3..9 gone with segment 2; ledger never existed
	}, 3, 6, dlog.DLSN{})
	r = runDlog(t, "", append([]string{"admin", "inspect", "lost", "--repair", "--yes", "-o", "json"}, md...)...)
	if got := problems(t, r); r.code != ExitError || !slices.Equal(got, []string{"ledger-end-mismatch@1:remains", "ledger-missing@3:remains", "lssn-gap@3:remains"}) {
		t.Fatalf("unrepairable log: %v\n%s", got, r)
	}

	// find-ledger, recover-ledger.
	if o := mustDlog(t, "", append([]string{"admin", "find-ledger", fmt.Sprint(l4), "-o", "json"}, md...)...).jsonLines(t); len(o) != 1 || o[0]["log"] != "broken" || o[0]["lssn"] != 4.0 {
		t.Fatalf("find-ledger: %v", o)
	}
	orphan := s.ledger(ctx, "default", "gone", 1, 2, false)
	if r := runDlog(t, "", append([]string{"admin", "find-ledger", fmt.Sprint(orphan)}, md...)...); r.code != ExitError || !strings.Contains(r.stderr, "no segment references") {
		t.Fatalf("find-ledger of a leak: %s", r)
	}
	if r := runDlog(t, "", append([]string{"admin", "recover-ledger", fmt.Sprint(orphan)}, md...)...); r.code != ExitUsage || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("recover-ledger without confirmation: %s", r)
	}
	o := mustDlog(t, "", append([]string{"admin", "recover-ledger", fmt.Sprint(orphan), "--yes", "-o", "json"}, md...)...).jsonLines(t)
	if len(o) != 1 || o[0]["state"] != "closed" || o[0]["last-entry-id"] != 1.0 {
		t.Fatalf("recover-ledger: %v", o)
	}
	if o := mustDlog(t, "", append([]string{"admin", "recover-ledger", fmt.Sprint(orphan), "-o", "json"}, md...)...).jsonLines(t); o[0]["was-closed"] != true {
		t.Fatalf("recover-ledger of a closed ledger: %v", o)
	}
	// The ledger of a log a proxy is writing needs --force.
	segs := mustDlog(t, "", "segments", "clean", "-o", "json", "--server", sb.Addr()).jsonLines(t)
	live := fmt.Sprint(int64(segs[len(segs)-1]["ledger-id"].(float64)))
	if r := runDlog(t, "", append([]string{"admin", "recover-ledger", live, "--yes"}, md...)...); r.code != ExitUsage || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("recover-ledger of a live writer's ledger: %s", r)
	}
}

// TestAdminAuditLedgers finds a ledger that no segment references (in
// metadata) and one whose metadata is gone but whose data a bookie keeps,
// deletes both, and finds nothing afterwards.
func TestAdminAuditLedgers(t *testing.T) {
	sb := testSandbox(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	md := []string{"--metadata", sb.MetadataURL()}
	st := sb.Store()
	lc, err := ledger.New(ctx, st, ledger.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	s := seeder{t: t, st: st, lc: lc}

	mustDlog(t, "", "log", "create", "kept", "--server", sb.Addr())
	mustDlog(t, "x\ny\n", "write", "kept", "--server", sb.Addr())
	leaked := s.ledger(ctx, "default", "crashed", 1, 2, true)
	onBookies := s.ledger(ctx, "default", "crashed", 2, 1, true)
	if err := st.DeleteLedger(ctx, onBookies, 0); err != nil { // metadata gone, data left
		t.Fatal(err)
	}

	audit := func(args ...string) result {
		return runDlog(t, "", append(append([]string{"admin", "audit-ledgers", "-o", "json"}, md...), args...)...)
	}
	// Young ledgers are never called leaks by default.
	r := audit()
	if r.code != ExitOK {
		t.Fatal(r)
	}
	for _, row := range r.jsonLines(t) {
		if row["where"] == "metadata" && row["status"] != "too-young" {
			t.Fatalf("young ledger reported as %v", row)
		}
	}
	r = audit("--min-age", "0s")
	rows := r.jsonLines(t)
	var got []string
	for _, row := range rows {
		got = append(got, fmt.Sprintf("%v:%v:%v", row["ledger-id"], row["where"], row["status"]))
	}
	slices.Sort(got)
	want := []string{
		fmt.Sprintf("%d:bookie:leaked", onBookies), fmt.Sprintf("%d:bookie:leaked", onBookies), fmt.Sprintf("%d:bookie:leaked", onBookies),
		fmt.Sprintf("%d:metadata:leaked", leaked),
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("audit: %v; want %v\n%s", got, want, r)
	}
	if r := audit("--min-age", "0s", "--delete"); r.code != ExitUsage || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("delete without confirmation: %s", r)
	}
	r = audit("--min-age", "0s", "--delete", "--yes")
	for _, row := range r.jsonLines(t) {
		if row["status"] != "deleted" {
			t.Fatalf("after --delete: %v\n%s", row, r)
		}
	}
	if r := audit("--min-age", "0s"); r.code != ExitOK || strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("audit after deletion: %s", r)
	}
	// The log written through the service is intact.
	if r := mustDlog(t, "", "read", "kept", "--server", sb.Addr()); r.stdout != "x\ny\n" {
		t.Fatalf("read after audit: %q", r.stdout)
	}
}
