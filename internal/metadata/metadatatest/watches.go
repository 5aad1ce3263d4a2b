package metadatatest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/metadata/kv"
)

func testSubscriptions(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	setupLog(t, st)
	_, err := st.GetSubscription(ctx, "ns", "l", "s")
	mustBe(t, err, metadata.ErrNotFound)
	mustBe(t, st.CommitSubscription(ctx, "ns", "missing", "s", dlog.InitialDLSN, false), metadata.ErrNotFound)

	p := func(l, e, s int64) dlog.DLSN { return dlog.DLSN{LSSN: l, EntryID: e, SlotID: s} }
	steps := []struct {
		name  string
		pos   dlog.DLSN
		reset bool
		want  error
		after dlog.DLSN
	}{
		{"create", p(1, 5, 0), false, nil, p(1, 5, 0)},
		{"forward slot", p(1, 5, 3), false, nil, p(1, 5, 3)},
		{"same position", p(1, 5, 3), false, nil, p(1, 5, 3)},
		{"forward segment", p(2, 0, 0), false, nil, p(2, 0, 0)},
		{"backwards", p(1, 9, 9), false, metadata.ErrBackwards, p(2, 0, 0)},
		{"reset backwards", p(1, 0, 0), true, nil, p(1, 0, 0)},
	}
	for _, s := range steps {
		err := st.CommitSubscription(ctx, "ns", "l", "s", s.pos, s.reset)
		if s.want == nil {
			must(t, err)
		} else {
			mustBe(t, err, s.want)
		}
		sub, err := st.GetSubscription(ctx, "ns", "l", "s")
		must(t, err)
		if sub.Position != s.after || sub.Version == 0 || sub.Updated.IsZero() {
			t.Fatalf("after %s: %+v, want position %v", s.name, sub, s.after)
		}
	}
	// Concurrent commits from several readers never move it backwards.
	const n = 6
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- st.CommitSubscription(ctx, "ns", "l", "s", p(5, int64(i), 0), false) }()
	}
	for range n {
		if err := <-errs; err != nil {
			mustBe(t, err, metadata.ErrBackwards)
		}
	}
	sub, err := st.GetSubscription(ctx, "ns", "l", "s")
	must(t, err)
	equal(t, "position after concurrent commits", sub.Position, p(5, n-1, 0))

	must(t, st.CommitSubscription(ctx, "ns", "l", "t", p(1, 0, 0), false))
	subs, err := st.ListSubscriptions(ctx, "ns", "l")
	must(t, err)
	if len(subs) != 2 || subs["s"].Position != p(5, n-1, 0) || subs["t"].Position != p(1, 0, 0) {
		t.Fatalf("ListSubscriptions = %+v", subs)
	}
	// SetSubscription is the CAS form for a Commit.
	_, err = st.Commit(ctx, metadata.SetSubscription("ns", "l", "t", p(9, 0, 0), subs["s"].Version))
	mustBe(t, err, metadata.ErrBadVersion)
	_, err = st.Commit(ctx, metadata.SetSubscription("ns", "l", "t", p(9, 0, 0), subs["t"].Version))
	must(t, err)
	must(t, st.DeleteSubscription(ctx, "ns", "l", "t"))
	mustBe(t, st.DeleteSubscription(ctx, "ns", "l", "t"), metadata.ErrNotFound)
}

// testWatchLog: a writer's life on one log — segments created, completed
// and deleted, counters moved, ownership taken and released, subscriptions
// — is seen by a watcher as every change, in revision order, each with its
// decoded value.
func testWatchLog(t *testing.T, e *env) {
	st := e.store()
	watcher := e.store()
	ctx := ctxOf(t)
	setupLog(t, st)
	state, err := watcher.GetLogState(ctx, "ns", "l")
	must(t, err)
	events := watcher.WatchLog(ctx, "ns", "l", state.Revision+1)

	s, err := st.NewSession(ctx, 10*time.Second)
	must(t, err)
	defer s.Close(ctx)
	o, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w", Address: "a:1"}, false)
	must(t, err)
	type want struct {
		typ   metadata.EventType
		kind  metadata.LogKeyKind
		lssn  int64
		value int64
	}
	var wants []want
	lssnV, txidV := state.MaxLSSNVersion, state.MaxTxIDVersion
	wants = append(wants, want{metadata.EventPut, metadata.LogKeyOwner, 0, 0})
	const segments = 12
	var segV []metadata.Version
	for i := int64(1); i <= segments; i++ {
		rev, err := st.Commit(ctx,
			metadata.CreateSegment("ns", "l", newSegment(i, 100+i)),
			metadata.SetMaxLSSN("ns", "l", i, lssnV),
			metadata.SetMaxTxID("ns", "l", i*100, txidV),
			metadata.CheckOwner("ns", "l", o))
		must(t, err)
		lssnV, txidV = metadata.Version(rev), metadata.Version(rev)
		segV = append(segV, metadata.Version(rev))
		// Within one revision, events come in the order of the ops.
		wants = append(wants,
			want{metadata.EventPut, metadata.LogKeySegment, i, 0},
			want{metadata.EventPut, metadata.LogKeyMaxLSSN, 0, i},
			want{metadata.EventPut, metadata.LogKeyMaxTxID, 0, i * 100})
	}
	done := newSegment(1, 101)
	done.State = metadata.SegmentCompleted
	_, err = st.Commit(ctx, metadata.UpdateSegment("ns", "l", done, segV[0]))
	must(t, err)
	wants = append(wants, want{metadata.EventPut, metadata.LogKeySegment, 1, 0})
	_, err = st.Commit(ctx, metadata.DeleteSegment("ns", "l", 2, 0))
	must(t, err)
	wants = append(wants, want{metadata.EventDelete, metadata.LogKeySegment, 2, 0})
	must(t, st.CommitSubscription(ctx, "ns", "l", "sub", dlog.InitialDLSN, false))
	wants = append(wants, want{metadata.EventPut, metadata.LogKeySubscription, 0, 0})
	must(t, o.Release(ctx))
	wants = append(wants, want{metadata.EventDelete, metadata.LogKeyOwner, 0, 0})
	must(t, st.DeleteLog(ctx, "ns", "l"))

	var last int64
	for i, w := range wants {
		ev := recv(t, events)
		must(t, ev.Err)
		got := want{ev.Type, ev.Kind, ev.Segment.LSSN, ev.Value}
		if got != w {
			t.Fatalf("event %d = %+v, want %+v", i, got, w)
		}
		if ev.Revision < last {
			t.Fatalf("event %d revision %d after %d", i, ev.Revision, last)
		}
		last = ev.Revision
		switch ev.Kind {
		case metadata.LogKeyOwner:
			if ev.Type == metadata.EventPut && (ev.Owner.ID != "w" || ev.Owner.Address != "a:1") {
				t.Fatalf("owner event %+v", ev)
			}
		case metadata.LogKeySegment:
			if ev.Type == metadata.EventPut && (ev.Segment.LedgerID != 100+ev.Segment.LSSN || ev.Version != metadata.Version(ev.Revision)) {
				t.Fatalf("segment event %+v", ev)
			}
		case metadata.LogKeySubscription:
			if ev.SubscriptionName != "sub" || ev.Subscription.Position != dlog.InitialDLSN {
				t.Fatalf("subscription event %+v", ev)
			}
		}
	}
	// DeleteLog: every remaining key deleted at one revision, the info key
	// among them (the sign that the log is gone).
	sawInfo := false
	rev := int64(0)
	for !sawInfo {
		ev := recv(t, events)
		must(t, ev.Err)
		if ev.Type != metadata.EventDelete {
			t.Fatalf("after DeleteLog: %+v", ev)
		}
		if rev != 0 && ev.Revision != rev {
			t.Fatalf("DeleteLog events at revisions %d and %d", rev, ev.Revision)
		}
		rev = ev.Revision
		sawInfo = ev.Kind == metadata.LogKeyInfo
	}
}

func testWatchLedger(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	v, err := st.CreateLedger(ctx, 7, ledger(3, 2, 2))
	must(t, err)
	events := st.WatchLedger(ctx, 7, int64(v))        // from the create on
	_, err = st.CreateLedger(ctx, 8, ledger(3, 2, 2)) // another ledger: not seen
	must(t, err)
	m := ledger(3, 2, 2)
	var versions []metadata.Version
	versions = append(versions, v)
	for i := range 5 {
		m.Custom["step"] = fmt.Sprint(i)
		v, err = st.UpdateLedger(ctx, 7, m, v)
		must(t, err)
		versions = append(versions, v)
	}
	must(t, st.DeleteLedger(ctx, 7, v))
	for i, want := range versions {
		ev := recv(t, events)
		must(t, ev.Err)
		if ev.Type != metadata.EventPut || ev.Version != want {
			t.Fatalf("ledger event %d = %+v, want put at %d", i, ev, want)
		}
		if i > 0 && ev.Ledger.Custom["step"] != fmt.Sprint(i-1) {
			t.Fatalf("ledger event %d carries %v", i, ev.Ledger.Custom)
		}
	}
	ev := recv(t, events)
	if ev.Err != nil || ev.Type != metadata.EventDelete {
		t.Fatalf("last ledger event %+v", ev)
	}
}

// testWatchLagged: a consumer that stops reading is cut off with one final
// ErrWatchLagged event after exactly the buffered events; the store and
// the writers never wait for it.
func testWatchLagged(t *testing.T, e *env) {
	const buffer = 4
	st := e.storeWith(metadata.Options{WatchBufferEvents: buffer})
	ctx := ctxOf(t)
	v, err := st.CreateLedger(ctx, 1, ledger(3, 2, 2))
	must(t, err)
	events := st.WatchLedger(ctx, 1, int64(v)+1)
	m := ledger(3, 2, 2)
	for range 3 * buffer {
		v, err = st.UpdateLedger(ctx, 1, m, v)
		must(t, err)
	}
	// Nobody reads until the channel is full: buffer events + the final one.
	waitFor(t, "the lagged watch to fill its channel", func() bool {
		if n := len(events); n < buffer+1 {
			t.Logf("lagged watch: %d of %d slots used", n, buffer+1)
			return false
		}
		return true
	})
	got := drain(t, events)
	equal(t, "events delivered", len(got), buffer+1)
	for i, ev := range got[:buffer] {
		must(t, ev.Err)
		if i > 0 && ev.Revision <= got[i-1].Revision {
			t.Fatalf("lagged watch events out of order: %+v", got)
		}
	}
	mustBe(t, got[buffer].Err, metadata.ErrWatchLagged)
}

func testWatchCompacted(t *testing.T, e *env) {
	if e.h.Compact == nil {
		t.Skip("the harness cannot compact")
	}
	st := e.store()
	ctx := ctxOf(t)
	v, err := st.CreateLedger(ctx, 1, ledger(3, 2, 2))
	must(t, err)
	for range 3 {
		v, err = st.UpdateLedger(ctx, 1, ledger(3, 2, 2), v)
		must(t, err)
	}
	e.h.Compact(t)
	got := drain(t, st.WatchLedger(ctx, 1, 1))
	if len(got) != 1 {
		t.Fatalf("watch from a compacted revision delivered %+v", got)
	}
	mustBe(t, got[0].Err, metadata.ErrWatchLagged)
}

// testWatchEnds: a watch ends without an error when its ctx ends, and with
// ErrClosed when the store closes.
func testWatchEnds(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	wctx, cancel := context.WithCancel(ctx)
	events := st.WatchBookies(wctx, 0)
	cancel()
	if got := drain(t, events); len(got) != 0 {
		t.Fatalf("canceled watch delivered %+v", got)
	}
	events = st.WatchBookies(ctx, 0)
	logEvents := st.WatchLog(ctx, "ns", "l", 0)
	must(t, st.Close())
	for _, got := range [][]error{errsOf(drain(t, events)), errsOfLog(drain(t, logEvents))} {
		if len(got) != 1 {
			t.Fatalf("watch of a closed store delivered %v", got)
		}
		mustBe(t, got[0], metadata.ErrClosed)
	}
	// Calls on a closed store fail with ErrClosed.
	_, _, err := st.ListBookies(ctx)
	mustBe(t, err, metadata.ErrClosed)
	must(t, st.Close())
}

func errsOf(evs []metadata.BookieEvent) []error {
	var out []error
	for _, e := range evs {
		out = append(out, e.Err)
	}
	return out
}

func errsOfLog(evs []metadata.LogEvent) []error {
	var out []error
	for _, e := range evs {
		out = append(out, e.Err)
	}
	return out
}

// testCorrupt: a value that does not decode is reported as ErrCorrupt, on
// reads and on watches.
func testCorrupt(t *testing.T, e *env) {
	st := e.store()
	raw := e.kv()
	ctx := ctxOf(t)
	_, rev, err := st.ListBookies(ctx)
	must(t, err)
	events := st.WatchBookies(ctx, rev+1)
	v, err := st.CreateLedger(ctx, 3, ledger(3, 2, 2))
	must(t, err)
	_ = v
	junk := []byte{0xff, 0xff, 0xff}
	_, err = raw.Txn(ctx, kv.Txn{Then: []kv.Op{
		kv.Put(e.root()+"ledgers/0000000000000000003", junk, 0),
		kv.Put(e.root()+"bookies/b", junk, 0),
	}})
	must(t, err)
	_, _, err = st.GetLedger(ctx, 3)
	mustBe(t, err, metadata.ErrCorrupt)
	_, _, err = st.ListBookies(ctx)
	mustBe(t, err, metadata.ErrCorrupt)
	got := drain(t, events)
	if len(got) != 1 {
		t.Fatalf("watch over a corrupt value delivered %+v", got)
	}
	mustBe(t, got[0].Err, metadata.ErrCorrupt)
}
