package metadatatest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
)

func ledger(e, qw, qa int) metadata.LedgerMetadata {
	bookies := make([]string, e)
	for i := range bookies {
		bookies[i] = fmt.Sprintf("bookie-%d:3181", i)
	}
	return metadata.LedgerMetadata{
		EnsembleSize: e, WriteQuorum: qw, AckQuorum: qa, State: metadata.LedgerOpen, LastEntryID: -1,
		Fragments: []metadata.Fragment{{FirstEntryID: 0, Bookies: bookies}},
		MasterKey: []byte("secret"), Custom: map[string]string{"app": "test"},
		Created: time.UnixMilli(time.Now().UnixMilli()), EntryFormat: 1,
	}
}

func sameLedger(t *testing.T, got, want metadata.LedgerMetadata) {
	t.Helper()
	g, w := fmt.Sprintf("%+v", got), fmt.Sprintf("%+v", want)
	if g != w {
		t.Fatalf("ledger metadata\n got %s\nwant %s", g, w)
	}
}

// testCASRace: N goroutines race on the same expectation; exactly one wins,
// the others get ErrBadVersion (ErrExists for creates).
func testCASRace(t *testing.T, e *env) {
	const n = 8
	stores := make([]metadata.Store, 3)
	for i := range stores {
		stores[i] = e.store()
	}
	ctx := ctxOf(t)
	st := stores[0]
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
	v, err := st.CreateLedger(ctx, 1, ledger(3, 3, 2))
	must(t, err)
	state, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)

	race := func(name string, loser error, try func(i int) error) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make([]error, n)
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					errs[i] = try(i)
				})
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case !errors.Is(err, loser):
					t.Fatalf("loser got %v, want %v", err, loser)
				}
			}
			equal(t, "winners", wins, 1)
		})
	}
	race("UpdateLedger", metadata.ErrBadVersion, func(i int) error {
		m := ledger(3, 3, 2)
		m.State = metadata.LedgerInRecovery
		m.Custom["by"] = fmt.Sprint(i)
		_, err := stores[i%len(stores)].UpdateLedger(ctx, 1, m, v)
		return err
	})
	race("CreateLedger", metadata.ErrExists, func(i int) error {
		_, err := stores[i%len(stores)].CreateLedger(ctx, 2, ledger(3, 2, 2))
		return err
	})
	race("CreateSegmentCommit", metadata.ErrBadVersion, func(i int) error {
		// Different ledgers, same lssn expectation: the max-lssn CAS decides.
		_, err := stores[i%len(stores)].Commit(ctx,
			metadata.SetMaxLSSN("ns", "l", 1, state.MaxLSSNVersion),
			metadata.CreateSegment("ns", "l", newSegment(1, int64(100+i))),
			metadata.SetMaxTxID("ns", "l", 100, state.MaxTxIDVersion))
		if errors.Is(err, metadata.ErrExists) {
			// The segment-key create lost instead of the CAS: also a loss.
			return fmt.Errorf("%w (create lost)", metadata.ErrBadVersion)
		}
		return err
	})
	race("PutCookie", metadata.ErrExists, func(i int) error {
		_, err := stores[i%len(stores)].PutCookie(ctx, metadata.Cookie{BookieID: "b1", InstanceID: fmt.Sprint(i)}, 0)
		return err
	})
	after, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	equal(t, "segments after race", len(after.Segments), 1)
}

func testLedgerIDs(t *testing.T, e *env) {
	const workers, each = 4, 25
	ctx := ctxOf(t)
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for range workers {
		st := e.store()
		wg.Go(func() {
			last := int64(0)
			for range each {
				id, err := st.NewLedgerID(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if id <= last {
					t.Errorf("ledger id %d after %d", id, last)
				}
				last = id
				mu.Lock()
				if seen[id] {
					t.Errorf("ledger id %d issued twice", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	equal(t, "distinct ids", len(seen), workers*each)
	for id := range seen {
		if id < 1 || id > workers*each {
			t.Fatalf("id %d outside 1..%d (the counter skipped)", id, workers*each)
		}
	}
}

func testLedgers(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	_, _, err := st.GetLedger(ctx, 5)
	mustBe(t, err, metadata.ErrNotFound)
	m := ledger(5, 3, 2)
	v1, err := st.CreateLedger(ctx, 5, m)
	must(t, err)
	got, v, err := st.GetLedger(ctx, 5)
	must(t, err)
	equal(t, "version", v, v1)
	sameLedger(t, got, m)

	// Ensemble change then close, each a CAS on the previous version.
	m.Fragments = append(m.Fragments, metadata.Fragment{FirstEntryID: 10, Bookies: []string{"bookie-0:3181", "bookie-9:3181", "bookie-2:3181", "bookie-3:3181", "bookie-4:3181"}})
	v2, err := st.UpdateLedger(ctx, 5, m, v1)
	must(t, err)
	_, err = st.UpdateLedger(ctx, 5, m, v1)
	mustBe(t, err, metadata.ErrBadVersion)
	m.State, m.LastEntryID, m.Length = metadata.LedgerClosed, 20, 4096
	v3, err := st.UpdateLedger(ctx, 5, m, v2)
	must(t, err)
	got, v, err = st.GetLedger(ctx, 5)
	must(t, err)
	equal(t, "version after close", v, v3)
	sameLedger(t, got, m)

	for _, id := range []int64{1, 2, 3, 10, 11} {
		_, err := st.CreateLedger(ctx, id, ledger(3, 2, 2))
		must(t, err)
	}
	ids, err := st.ListLedgers(ctx, 0, 100)
	must(t, err)
	if !slices.Equal(ids, []int64{1, 2, 3, 5, 10, 11}) {
		t.Fatalf("ListLedgers = %v", ids)
	}
	ids, err = st.ListLedgers(ctx, 3, 2)
	must(t, err)
	if !slices.Equal(ids, []int64{5, 10}) {
		t.Fatalf("ListLedgers(after 3, 2) = %v", ids)
	}

	mustBe(t, st.DeleteLedger(ctx, 5, v2), metadata.ErrBadVersion)
	must(t, st.DeleteLedger(ctx, 5, v3))
	mustBe(t, st.DeleteLedger(ctx, 5, 0), metadata.ErrNotFound)
	_, err = st.UpdateLedger(ctx, 5, m, v3)
	mustBe(t, err, metadata.ErrNotFound)
	must(t, st.DeleteLedger(ctx, 10, 0))
	// In a Commit, with other ops.
	_, v11, err := st.GetLedger(ctx, 11)
	must(t, err)
	_, err = st.Commit(ctx, metadata.DeleteLedgerOp(11, v11), metadata.DeleteLedgerOp(1, 0))
	must(t, err)
	ids, err = st.ListLedgers(ctx, 0, 100)
	must(t, err)
	if !slices.Equal(ids, []int64{2, 3}) {
		t.Fatalf("ListLedgers after deletes = %v", ids)
	}

	invalid := []metadata.LedgerMetadata{
		{},
		func() metadata.LedgerMetadata {
			m := ledger(3, 2, 2)
			m.Fragments[0].Bookies[1] = "bookie-0:3181"
			return m
		}(),
		func() metadata.LedgerMetadata { m := ledger(3, 2, 2); m.Fragments[0].FirstEntryID = 1; return m }(),
		func() metadata.LedgerMetadata {
			m := ledger(3, 2, 2)
			m.Fragments[0].Bookies = m.Fragments[0].Bookies[:2]
			return m
		}(),
		func() metadata.LedgerMetadata { m := ledger(3, 2, 3); return m }(),
		func() metadata.LedgerMetadata { m := ledger(3, 2, 2); m.EntryFormat = -1; return m }(),
	}
	for i, m := range invalid {
		_, err := st.CreateLedger(ctx, 100+int64(i), m)
		mustBe(t, err, dlog.ErrInvalidArgument)
	}
}

func testBookies(t *testing.T, e *env) {
	st := e.store()
	other := e.store()
	ctx := ctxOf(t)
	list, rev, err := st.ListBookies(ctx)
	must(t, err)
	equal(t, "bookies at start", len(list), 0)
	events := st.WatchBookies(ctx, rev+1)

	s, err := st.NewSession(ctx, 10e9)
	must(t, err)
	b := metadata.BookieInfo{ID: "127.0.0.1:3181", Address: "127.0.0.1:3181", Region: "r1", Rack: "k1",
		State: metadata.BookieWritable, InstanceID: "i-1", FreeBytes: 10, TotalBytes: 100}
	must(t, st.RegisterBookie(ctx, s, b))
	b2 := b
	b2.ID, b2.Address = "127.0.0.1:3182", "127.0.0.1:3182"
	must(t, st.RegisterBookie(ctx, s, b2))
	// Read-only by re-registering through the same session.
	b.State = metadata.BookieReadOnly
	must(t, st.RegisterBookie(ctx, s, b))
	// Another session cannot take a live id.
	s2, err := other.NewSession(ctx, 10e9)
	must(t, err)
	defer s2.Close(ctx)
	mustBe(t, other.RegisterBookie(ctx, s2, b), metadata.ErrExists)
	// A session of another store is refused.
	mustBe(t, st.RegisterBookie(ctx, s2, b), dlog.ErrInvalidArgument)

	list, _, err = other.ListBookies(ctx)
	must(t, err)
	if len(list) != 2 || list[0] != b || list[1] != b2 {
		t.Fatalf("ListBookies = %+v", list)
	}

	must(t, s.Close(ctx)) // revokes: both registrations go at once
	list, _, err = other.ListBookies(ctx)
	must(t, err)
	equal(t, "bookies after session close", len(list), 0)
	// Now the id is free for another session.
	must(t, other.RegisterBookie(ctx, s2, b))

	want := []struct {
		typ   metadata.EventType
		id    string
		state metadata.BookieState
	}{
		{metadata.EventPut, b.ID, metadata.BookieWritable},
		{metadata.EventPut, b2.ID, metadata.BookieWritable},
		{metadata.EventPut, b.ID, metadata.BookieReadOnly},
		{metadata.EventDelete, b.ID, 0},
		{metadata.EventDelete, b2.ID, 0},
		{metadata.EventPut, b.ID, metadata.BookieReadOnly},
	}
	var last int64
	for i, w := range want {
		ev := recv(t, events)
		must(t, ev.Err)
		if ev.Type != w.typ || ev.Bookie.ID != w.id || ev.Bookie.State != w.state {
			t.Fatalf("event %d = %+v, want %+v", i, ev, w)
		}
		if ev.Revision < last {
			t.Fatalf("event %d revision %d after %d", i, ev.Revision, last)
		}
		last = ev.Revision
	}
}

func testCookies(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	_, _, err := st.GetCookie(ctx, "b1")
	mustBe(t, err, metadata.ErrNotFound)
	c := metadata.Cookie{BookieID: "b1", InstanceID: "i-1", Address: "127.0.0.1:3181", Dirs: []string{"/d/j", "/d/e"},
		Created: time.UnixMilli(1_700_000_000_000)}
	v1, err := st.PutCookie(ctx, c, 0)
	must(t, err)
	_, err = st.PutCookie(ctx, c, 0)
	mustBe(t, err, metadata.ErrExists)
	got, v, err := st.GetCookie(ctx, "b1")
	must(t, err)
	equal(t, "cookie version", v, v1)
	if fmt.Sprint(got) != fmt.Sprint(c) {
		t.Fatalf("cookie = %+v, want %+v", got, c)
	}
	c.Dirs = append(c.Dirs, "/d/x")
	v2, err := st.PutCookie(ctx, c, v1)
	must(t, err)
	_, err = st.PutCookie(ctx, c, v1)
	mustBe(t, err, metadata.ErrBadVersion)
	mustBe(t, st.DeleteCookie(ctx, "b1", v1), metadata.ErrBadVersion)
	must(t, st.DeleteCookie(ctx, "b1", v2))
	mustBe(t, st.DeleteCookie(ctx, "b1", 0), metadata.ErrNotFound)
}

func testProxies(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	_, rev, err := st.ListProxies(ctx)
	must(t, err)
	events := st.WatchProxies(ctx, rev+1)
	s, err := st.NewSession(ctx, 10e9)
	must(t, err)
	p := metadata.ProxyInfo{ID: "proxy-1", Address: "127.0.0.1:7000", HTTPAddress: "127.0.0.1:7001", Region: "r", AcceptNewLogs: true}
	must(t, st.RegisterProxy(ctx, s, p))
	list, _, err := st.ListProxies(ctx)
	must(t, err)
	if len(list) != 1 || list[0] != p {
		t.Fatalf("ListProxies = %+v", list)
	}
	must(t, s.Close(ctx))
	ev := recv(t, events)
	if ev.Err != nil || ev.Type != metadata.EventPut || ev.Proxy != p {
		t.Fatalf("first proxy event %+v", ev)
	}
	ev = recv(t, events)
	if ev.Err != nil || ev.Type != metadata.EventDelete || ev.Proxy.ID != p.ID {
		t.Fatalf("second proxy event %+v", ev)
	}
}
