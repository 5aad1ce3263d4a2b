package metadatatest

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/metadata/kv"
)

func testNames(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	bad := []string{"", ".", "..", "a/b", "a..b", "__x", ".hidden", "a b", "a\x00b", "é", string(make([]byte, dlog.MaxNameLength+1))}
	for _, name := range bad {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			mustBe(t, st.CreateNamespace(ctx, name, metadata.NamespaceInfo{}), dlog.ErrInvalidName)
			mustBe(t, st.CreateLog(ctx, "ns", name, metadata.LogInfo{}), dlog.ErrInvalidName)
			_, err := st.GetLogState(ctx, name, "log")
			mustBe(t, err, dlog.ErrInvalidName)
			mustBe(t, st.CommitSubscription(ctx, "ns", "log", name, dlog.InitialDLSN, false), dlog.ErrInvalidName)
			_, err = st.Commit(ctx, metadata.SetMaxLSSN("ns", name, 1, 1))
			mustBe(t, err, dlog.ErrInvalidName)
			_, _, err = st.ListLogs(ctx, "ns", name+"/", "", 10)
			mustBe(t, err, dlog.ErrInvalidName)
		})
	}
	badIDs := []string{"", ".x", "a/b", "a b", "a\nb", "a\\b", "ü"}
	s, err := st.NewSession(ctx, 5e9)
	must(t, err)
	defer s.Close(ctx)
	for _, id := range badIDs {
		mustBe(t, st.RegisterBookie(ctx, s, metadata.BookieInfo{ID: id, State: metadata.BookieWritable}), dlog.ErrInvalidName)
		mustBe(t, st.RegisterProxy(ctx, s, metadata.ProxyInfo{ID: id}), dlog.ErrInvalidName)
	}
	for _, id := range []string{"127.0.0.1:3181", "[::1]:3181", "bookie-7", "host.example.com:1"} {
		must(t, st.RegisterBookie(ctx, s, metadata.BookieInfo{ID: id, State: metadata.BookieWritable}))
	}
}

// testKeyIsolation: logs whose names are prefixes of each other never see
// each other's keys, in listings, state reads or deletes.
func testKeyIsolation(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	for _, ns := range []string{"n", "n1", "n.1"} {
		must(t, st.CreateNamespace(ctx, ns, metadata.NamespaceInfo{}))
	}
	logs := []string{"a", "ab", "a.b", "a-b", "a_b", "b"}
	for _, l := range logs {
		must(t, st.CreateLog(ctx, "n", l, metadata.LogInfo{}))
		state, err := st.GetLogState(ctx, "n", l)
		must(t, err)
		_, err = st.Commit(ctx,
			metadata.CreateSegment("n", l, metadata.Segment{LSSN: 1, LedgerID: 1, State: metadata.SegmentInProgress}),
			metadata.SetMaxLSSN("n", l, 1, state.MaxLSSNVersion))
		must(t, err)
		must(t, st.CommitSubscription(ctx, "n", l, "sub", dlog.InitialDLSN, false))
	}
	must(t, st.CreateLog(ctx, "n1", "a", metadata.LogInfo{}))

	got, more, err := st.ListLogs(ctx, "n", "", "", 0)
	must(t, err)
	want := slices.Clone(logs)
	sort.Strings(want)
	if !slices.Equal(got, want) || more {
		t.Fatalf("ListLogs(n) = %v more=%v, want %v", got, more, want)
	}
	got, _, err = st.ListLogs(ctx, "n", "a", "", 0)
	must(t, err)
	if !slices.Equal(got, []string{"a", "a-b", "a.b", "a_b", "ab"}) {
		t.Fatalf("ListLogs(n, prefix a) = %v", got)
	}
	got, _, err = st.ListLogs(ctx, "n1", "", "", 0)
	must(t, err)
	if !slices.Equal(got, []string{"a"}) {
		t.Fatalf("ListLogs(n1) = %v", got)
	}

	must(t, st.DeleteLog(ctx, "n", "a"))
	for _, l := range logs[1:] {
		state, err := st.GetLogState(ctx, "n", l)
		must(t, err)
		if len(state.Segments) != 1 || state.MaxLSSN != 1 {
			t.Fatalf("log %s after deleting a: %+v", l, state)
		}
		subs, err := st.ListSubscriptions(ctx, "n", l)
		must(t, err)
		equal(t, "subscriptions of "+l, len(subs), 1)
	}
	ok, err := st.LogExists(ctx, "n1", "a")
	must(t, err)
	equal(t, "n1/a exists", ok, true)
	ns, err := st.ListNamespaces(ctx)
	must(t, err)
	if !slices.Equal(ns, []string{"n", "n.1", "n1"}) {
		t.Fatalf("ListNamespaces = %v", ns)
	}
}

func testNamespaces(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	_, _, err := st.GetNamespace(ctx, "ns")
	mustBe(t, err, metadata.ErrNotFound)
	mustBe(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}), metadata.ErrNotFound)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{Retention: 3600e9}))
	mustBe(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}), metadata.ErrExists)
	info, v, err := st.GetNamespace(ctx, "ns")
	must(t, err)
	equal(t, "retention", info.Retention, 3600e9)
	if v == 0 || info.Created.IsZero() {
		t.Fatalf("namespace version %d, created %v", v, info.Created)
	}
	// Settings change only from the version read.
	info.Retention = 7200e9
	_, err = st.Commit(ctx, metadata.UpdateNamespaceInfo("ns", info, v))
	must(t, err)
	_, err = st.Commit(ctx, metadata.UpdateNamespaceInfo("ns", metadata.NamespaceInfo{}, v))
	mustBe(t, err, metadata.ErrBadVersion)
	_, err = st.Commit(ctx, metadata.UpdateNamespaceInfo("nope", metadata.NamespaceInfo{}, v))
	mustBe(t, err, metadata.ErrBadVersion)
	info2, v2, err := st.GetNamespace(ctx, "ns")
	must(t, err)
	equal(t, "retention after update", info2.Retention, 7200e9)
	equal(t, "created after update", info2.Created.Equal(info.Created), true)
	if v2 <= v {
		t.Fatalf("namespace version %d after update, was %d", v2, v)
	}
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
	mustBe(t, st.DeleteNamespace(ctx, "ns"), metadata.ErrNotEmpty)
	must(t, st.DeleteLog(ctx, "ns", "l"))
	must(t, st.DeleteNamespace(ctx, "ns"))
	mustBe(t, st.DeleteNamespace(ctx, "ns"), metadata.ErrNotFound)
	list, err := st.ListNamespaces(ctx)
	must(t, err)
	equal(t, "namespaces left", len(list), 0)
	_, _, err = st.ListLogs(ctx, "ns", "", "", 10)
	mustBe(t, err, metadata.ErrNotFound)
}

func testLogs(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	_, err := st.GetLogState(ctx, "ns", "l")
	mustBe(t, err, metadata.ErrNotFound)
	ok, err := st.LogExists(ctx, "ns", "l")
	must(t, err)
	equal(t, "exists before create", ok, false)
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{Retention: 60e9}))
	mustBe(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}), metadata.ErrExists)
	ok, err = st.LogExists(ctx, "ns", "l")
	must(t, err)
	equal(t, "exists after create", ok, true)
	state, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	equal(t, "max lssn", state.MaxLSSN, 0)
	equal(t, "max txid", state.MaxTxID, -1)
	equal(t, "truncation", state.Truncation, dlog.DLSN{})
	equal(t, "retention", state.Info.Retention, 60e9)
	equal(t, "segments", len(state.Segments), 0)
	if state.MaxLSSNVersion == 0 || state.MaxTxIDVersion == 0 || state.TruncationVersion == 0 || state.InfoVersion == 0 || state.Revision == 0 {
		t.Fatalf("versions not set: %+v", state)
	}

	// UpdateLogInfo and SetTruncation are CAS on their keys.
	rev, err := st.Commit(ctx,
		metadata.UpdateLogInfo("ns", "l", metadata.LogInfo{Created: state.Info.Created, Retention: 120e9}, state.InfoVersion),
		metadata.SetTruncation("ns", "l", dlog.DLSN{LSSN: 1, EntryID: 5}, state.TruncationVersion))
	must(t, err)
	_, err = st.Commit(ctx, metadata.SetTruncation("ns", "l", dlog.DLSN{LSSN: 2}, state.TruncationVersion))
	mustBe(t, err, metadata.ErrBadVersion)
	state, err = st.GetLogState(ctx, "ns", "l")
	must(t, err)
	equal(t, "retention after update", state.Info.Retention, 120e9)
	equal(t, "truncation after set", state.Truncation, dlog.DLSN{LSSN: 1, EntryID: 5})
	equal(t, "truncation version = commit revision", state.TruncationVersion, metadata.Version(rev))
}

func testDeleteLogRemovesEverything(t *testing.T, e *env) {
	st := e.store()
	raw := e.kv()
	ctx := ctxOf(t)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
	must(t, st.CreateLog(ctx, "ns", "l2", metadata.LogInfo{}))
	state, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	s, err := st.NewSession(ctx, 10e9)
	must(t, err)
	defer s.Close(ctx)
	o, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w1"}, false)
	must(t, err)
	_, err = st.Commit(ctx,
		metadata.CreateSegment("ns", "l", metadata.Segment{LSSN: 1, LedgerID: 7, State: metadata.SegmentInProgress}),
		metadata.SetMaxLSSN("ns", "l", 1, state.MaxLSSNVersion),
		metadata.CheckOwner("ns", "l", o))
	must(t, err)
	must(t, st.CommitSubscription(ctx, "ns", "l", "s1", dlog.InitialDLSN, false))

	must(t, st.DeleteLog(ctx, "ns", "l"))
	mustBe(t, st.DeleteLog(ctx, "ns", "l"), metadata.ErrNotFound)
	// Nothing of l is left anywhere under the cluster; l2 is intact.
	resp, err := raw.Txn(ctx, kv.Txn{Then: []kv.Op{kv.Range(e.root(), kv.PrefixEnd(e.root()), 0)}})
	must(t, err)
	for _, k := range resp.Results[0].KVs {
		if containsLog(k.Key, "l") {
			t.Errorf("key %s survived DeleteLog", k.Key)
		}
	}
	_, err = st.GetLogState(ctx, "ns", "l2")
	must(t, err)
	closed(t, "Lost after DeleteLog", o.Lost())

	// Re-created, the log starts clean.
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
	state, err = st.GetLogState(ctx, "ns", "l")
	must(t, err)
	if len(state.Segments) != 0 || state.MaxLSSN != 0 {
		t.Fatalf("re-created log not clean: %+v", state)
	}
	subs, err := st.ListSubscriptions(ctx, "ns", "l")
	must(t, err)
	equal(t, "subscriptions of re-created log", len(subs), 0)
	_, held, err := st.GetOwner(ctx, "ns", "l")
	must(t, err)
	equal(t, "owner of re-created log", held, false)
}

// containsLog reports whether key belongs to log "l" of namespace "ns": it
// names the log as its last path element or as a directory.
func containsLog(key, log string) bool {
	return strings.HasSuffix(key, "/ns/"+log) || strings.Contains(key, "/ns/"+log+"/")
}

func testListLogsPagination(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	var all []string
	for i := range 23 {
		name := fmt.Sprintf("log-%02d", i)
		if i%5 == 0 {
			name = fmt.Sprintf("other.%d", i)
		}
		all = append(all, name)
		must(t, st.CreateLog(ctx, "ns", name, metadata.LogInfo{}))
	}
	sort.Strings(all)
	tests := []struct {
		name   string
		prefix string
		limit  int
	}{
		{"all by 1", "", 1},
		{"all by 7", "", 7},
		{"all at once", "", 100},
		{"prefix by 4", "log-", 4},
		{"prefix by exact count", "other.", 5},
		{"no match", "zzz", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for _, n := range all {
				if len(n) >= len(tt.prefix) && n[:len(tt.prefix)] == tt.prefix {
					want = append(want, n)
				}
			}
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > len(all)+1 {
					t.Fatal("pagination does not end")
				}
				page, more, err := st.ListLogs(ctx, "ns", tt.prefix, after, tt.limit)
				must(t, err)
				if len(page) > tt.limit {
					t.Fatalf("page of %d > limit %d", len(page), tt.limit)
				}
				got = append(got, page...)
				if !more {
					break
				}
				if len(page) == 0 {
					t.Fatal("more without names")
				}
				after = page[len(page)-1]
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pages = %v, want %v", got, want)
			}
		})
	}
}

func newSegment(lssn, ledger int64) metadata.Segment {
	return metadata.Segment{LSSN: lssn, LedgerID: ledger, State: metadata.SegmentInProgress, FirstTxID: lssn * 100, WriterID: "w"}
}

// testCreateSegmentCommit: the segment-creation transaction of a writer,
// and a stale writer whose commit fails and writes nothing.
func testCreateSegmentCommit(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
	s, err := st.NewSession(ctx, 10e9)
	must(t, err)
	defer s.Close(ctx)
	o, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w1", Address: "127.0.0.1:7000"}, false)
	must(t, err)

	stale, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	rev, err := st.Commit(ctx,
		metadata.CreateSegment("ns", "l", newSegment(1, 10)),
		metadata.SetMaxLSSN("ns", "l", 1, stale.MaxLSSNVersion),
		metadata.SetMaxTxID("ns", "l", 100, stale.MaxTxIDVersion),
		metadata.CheckOwner("ns", "l", o))
	must(t, err)
	state, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	equal(t, "max lssn", state.MaxLSSN, 1)
	equal(t, "max txid", state.MaxTxID, 100)
	equal(t, "segments", len(state.Segments), 1)
	seg := state.Segments[0]
	equal(t, "segment version", seg.Version, metadata.Version(rev))
	equal(t, "max lssn version", state.MaxLSSNVersion, metadata.Version(rev))
	equal(t, "segment ledger", seg.LedgerID, 10)
	equal(t, "segment writer", seg.WriterID, "w")

	// A stale writer (versions read before) fails and writes nothing.
	_, err = st.Commit(ctx,
		metadata.CreateSegment("ns", "l", newSegment(2, 11)),
		metadata.SetMaxLSSN("ns", "l", 2, stale.MaxLSSNVersion),
		metadata.SetMaxTxID("ns", "l", 200, stale.MaxTxIDVersion))
	mustBe(t, err, metadata.ErrBadVersion)
	var oe *metadata.OpError
	if !errors.As(err, &oe) || oe.Op != "set max lssn of ns/l" {
		t.Fatalf("error %v does not name the failing op", err)
	}
	// Creating an existing segment: ErrExists.
	_, err = st.Commit(ctx, metadata.CreateSegment("ns", "l", newSegment(1, 12)))
	mustBe(t, err, metadata.ErrExists)

	// Complete segment 1 and open 2 in one commit (a roll).
	done := seg
	done.State, done.LastEntryID, done.LastTxID, done.RecordCount = metadata.SegmentCompleted, 41, 150, 42
	_, err = st.Commit(ctx,
		metadata.UpdateSegment("ns", "l", done, seg.Version),
		metadata.CreateSegment("ns", "l", newSegment(2, 11)),
		metadata.SetMaxLSSN("ns", "l", 2, state.MaxLSSNVersion),
		metadata.CheckOwner("ns", "l", o))
	must(t, err)
	// After losing ownership the same commit shape fails.
	must(t, o.Release(ctx))
	state2, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	_, err = st.Commit(ctx,
		metadata.CreateSegment("ns", "l", newSegment(3, 13)),
		metadata.SetMaxLSSN("ns", "l", 3, state2.MaxLSSNVersion),
		metadata.CheckOwner("ns", "l", o))
	mustBe(t, err, metadata.ErrBadVersion)
	mustBe(t, err, metadata.ErrOwnershipLost)
	mustBe(t, err, dlog.ErrFenced)
	state3, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	equal(t, "segments after refused commit", len(state3.Segments), 2)
	equal(t, "max lssn after refused commit", state3.MaxLSSN, 2)
	equal(t, "segment 1 state", state3.Segments[0].State, metadata.SegmentCompleted)
	equal(t, "segment 1 last entry", state3.Segments[0].LastEntryID, 41)

	// Segment deletion is versioned too.
	_, err = st.Commit(ctx, metadata.DeleteSegment("ns", "l", 1, state3.Segments[0].Version-1))
	mustBe(t, err, metadata.ErrBadVersion)
	_, err = st.Commit(ctx, metadata.DeleteSegment("ns", "l", 1, state3.Segments[0].Version))
	must(t, err)
	_, err = st.Commit(ctx, metadata.DeleteSegment("ns", "l", 1, 0))
	mustBe(t, err, metadata.ErrNotFound)
	// A segment cannot be created in a missing log.
	_, err = st.Commit(ctx, metadata.CreateSegment("ns", "missing", newSegment(1, 1)))
	mustBe(t, err, metadata.ErrNotFound)
}

// testCommitAllOrNothing: for each position of a failing expectation among
// several writes, nothing at all is written.
func testCommitAllOrNothing(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
	state, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	good := func() []metadata.Op {
		return []metadata.Op{
			metadata.CreateSegment("ns", "l", newSegment(1, 1)),
			metadata.SetMaxLSSN("ns", "l", 1, state.MaxLSSNVersion),
			metadata.SetMaxTxID("ns", "l", 5, state.MaxTxIDVersion),
			metadata.CreateLedgerOp(99, ledger(3, 2, 2)),
		}
	}
	// bad[i] replaces good()[i] with an op whose expectation fails.
	bad := []metadata.Op{
		metadata.CreateSegment("ns", "missing", newSegment(1, 1)),
		metadata.SetMaxLSSN("ns", "l", 1, state.MaxLSSNVersion+1000),
		metadata.SetMaxTxID("ns", "l", 5, state.MaxTxIDVersion+1000),
		metadata.UpdateLedgerOp(99, ledger(3, 2, 2), 5),
	}
	before, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	for i := range bad {
		ops := good()
		ops[i] = bad[i]
		_, err := st.Commit(ctx, ops...)
		if err == nil {
			t.Fatalf("commit with op %d failing succeeded", i)
		}
		after, err := st.GetLogState(ctx, "ns", "l")
		must(t, err)
		// (Revision is global: other tests move it.)
		if after.MaxLSSNVersion != before.MaxLSSNVersion || after.MaxTxIDVersion != before.MaxTxIDVersion ||
			len(after.Segments) != 0 || after.MaxLSSN != 0 || after.MaxTxID != -1 {
			t.Fatalf("failed commit %d wrote something: %+v", i, after)
		}
		_, _, err = st.GetLedger(ctx, 99)
		mustBe(t, err, metadata.ErrNotFound)
	}
	_, err = st.Commit(ctx, good()...)
	must(t, err)
}

func testCommitInvalid(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	tests := []struct {
		name string
		ops  []metadata.Op
		want error
	}{
		{"zero op", []metadata.Op{{}}, dlog.ErrInvalidArgument},
		{"duplicate key", []metadata.Op{metadata.SetMaxLSSN("ns", "l", 1, 1), metadata.SetMaxLSSN("ns", "l", 2, 1)}, dlog.ErrInvalidArgument},
		{"too many", make([]metadata.Op, metadata.MaxCommitOps+1), dlog.ErrInvalidArgument},
		{"bad segment", []metadata.Op{metadata.CreateSegment("ns", "l", metadata.Segment{})}, dlog.ErrInvalidArgument},
		{"update with version 0", []metadata.Op{metadata.UpdateSegment("ns", "l", newSegment(1, 1), 0)}, dlog.ErrInvalidArgument},
		{"bad ledger", []metadata.Op{metadata.CreateLedgerOp(1, metadata.LedgerMetadata{EnsembleSize: 1, WriteQuorum: 2, AckQuorum: 1})}, dlog.ErrInvalidArgument},
		{"nil owner", []metadata.Op{metadata.CheckOwner("ns", "l", nil)}, dlog.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.Commit(ctx, tt.ops...)
			mustBe(t, err, tt.want)
		})
	}
}
