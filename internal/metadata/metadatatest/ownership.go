package metadatatest

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/metadata/kv"
	"github.com/dlog-io/dlog/internal/pb/metapb"
)

func setupLog(t *testing.T, st metadata.Store) {
	t.Helper()
	ctx := ctxOf(t)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
}

func testOwnershipImmediate(t *testing.T, e *env) {
	st := e.store()
	other := e.store()
	ctx := ctxOf(t)
	setupLog(t, st)
	s1, err := st.NewSession(ctx, 10*time.Second)
	must(t, err)
	defer s1.Close(ctx)
	s2, err := other.NewSession(ctx, 10*time.Second)
	must(t, err)
	defer s2.Close(ctx)

	_, err = st.AcquireOwnership(ctx, s1, "ns", "missing", metadata.OwnerInfo{ID: "w1"}, false)
	mustBe(t, err, metadata.ErrNotFound)
	o1, err := st.AcquireOwnership(ctx, s1, "ns", "l", metadata.OwnerInfo{ID: "w1", Address: "10.0.0.1:7000"}, false)
	must(t, err)
	if o1.Token() <= 0 || o1.SessionID() != s1.ID() || o1.Owner().ID != "w1" {
		t.Fatalf("ownership token %d session %x owner %+v", o1.Token(), o1.SessionID(), o1.Owner())
	}
	_, err = other.AcquireOwnership(ctx, s2, "ns", "l", metadata.OwnerInfo{ID: "w2"}, false)
	var owned *dlog.OwnedError
	if !errors.As(err, &owned) || owned.OwnerID != "w1" || owned.Owner != "10.0.0.1:7000" || owned.Log != "ns/l" {
		t.Fatalf("second immediate acquire: %v, want *OwnedError naming w1", err)
	}
	if !dlog.IsDefinite(err) {
		t.Fatal("OwnedError must be definite")
	}
	owner, held, err := other.GetOwner(ctx, "ns", "l")
	must(t, err)
	if !held || owner.ID != "w1" || owner.Acquired.IsZero() {
		t.Fatalf("GetOwner = %+v, %v", owner, held)
	}
	if isClosed(o1.Lost()) {
		t.Fatal("Lost closed while held")
	}
	must(t, o1.Release(ctx))
	closed(t, "Lost after Release", o1.Lost())
	must(t, o1.Release(ctx))
	o2, err := other.AcquireOwnership(ctx, s2, "ns", "l", metadata.OwnerInfo{ID: "w2"}, false)
	must(t, err)
	if o2.Token() == o1.Token() {
		t.Fatal("a new acquisition must have a new token")
	}
	// o1's Release after someone else took the lock must not delete it.
	must(t, o1.Release(ctx))
	_, held, err = st.GetOwner(ctx, "ns", "l")
	must(t, err)
	equal(t, "held by w2", held, true)
	// CheckOwner: w2's token passes, w1's fails.
	_, err = st.Commit(ctx, metadata.CheckOwner("ns", "l", o2))
	must(t, err)
	_, err = st.Commit(ctx, metadata.CheckOwner("ns", "l", o1))
	mustBe(t, err, metadata.ErrBadVersion)
	must(t, o2.Release(ctx))
}

func testOwnershipWaiting(t *testing.T, e *env) {
	st := e.store()
	other := e.store()
	ctx := ctxOf(t)
	setupLog(t, st)
	s1, err := st.NewSession(ctx, 10*time.Second)
	must(t, err)
	defer s1.Close(ctx)
	s2, err := other.NewSession(ctx, 10*time.Second)
	must(t, err)
	defer s2.Close(ctx)
	o1, err := st.AcquireOwnership(ctx, s1, "ns", "l", metadata.OwnerInfo{ID: "w1"}, false)
	must(t, err)

	type result struct {
		o   metadata.Ownership
		err error
	}
	got := make(chan result, 1)
	go func() {
		o, err := other.AcquireOwnership(ctx, s2, "ns", "l", metadata.OwnerInfo{ID: "w2"}, true)
		got <- result{o, err}
	}()
	// The waiter cannot have it while w1 holds it: the lock key still names
	// w1 once the waiter is known to be waiting (it wrote nothing).
	owner, _, err := st.GetOwner(ctx, "ns", "l")
	must(t, err)
	equal(t, "owner while waiting", owner.ID, "w1")
	select {
	case r := <-got:
		t.Fatalf("waiting acquire returned while held: %+v", r)
	default:
	}
	must(t, o1.Release(ctx))
	var r result
	select {
	case r = <-got:
	case <-time.After(Deadline):
		t.Fatal("waiter did not get the lock after release")
	}
	must(t, r.err)
	owner, _, err = st.GetOwner(ctx, "ns", "l")
	must(t, err)
	equal(t, "owner after release", owner.ID, "w2")

	// A waiter whose ctx ends gets ErrUnavailable wrapping the ctx error.
	wctx, cancel := contextWithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := st.AcquireOwnership(wctx, s1, "ns", "l", metadata.OwnerInfo{ID: "w1"}, true)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("canceled waiter acquired the lock")
		}
	case <-time.After(Deadline):
		t.Fatal("canceled waiter did not return")
	}
	must(t, r.o.Release(ctx))
}

func testOwnershipLostOnDelete(t *testing.T, e *env) {
	st := e.store()
	raw := e.kv()
	ctx := ctxOf(t)
	setupLog(t, st)
	s, err := st.NewSession(ctx, 10*time.Second)
	must(t, err)
	defer s.Close(ctx)
	o, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w"}, false)
	must(t, err)
	// An operator deletes the lock key by hand.
	lock := e.root() + "logdata/ns/l/lock"
	resp, err := raw.Txn(ctx, kvDelete(lock))
	must(t, err)
	equal(t, "lock keys deleted", resp.Results[0].Deleted, 1)
	closed(t, "Lost after the lock key was deleted", o.Lost())
	if isClosed(s.Done()) {
		t.Fatal("losing a lock must not end the session")
	}
	// The lock is free again: the same session can take it anew.
	o2, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w"}, false)
	must(t, err)
	if o2.Token() == o.Token() {
		t.Fatal("new acquisition kept the old token")
	}
	must(t, o2.Release(ctx))
}

func testOwnershipReentry(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	setupLog(t, st)
	s, err := st.NewSession(ctx, 10*time.Second)
	must(t, err)
	defer s.Close(ctx)
	o1, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w"}, false)
	must(t, err)
	o2, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w"}, false)
	must(t, err)
	equal(t, "re-entry token", o2.Token(), o1.Token())
	// Same session, other owner id: refused.
	_, err = st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "other"}, false)
	var owned *dlog.OwnedError
	if !errors.As(err, &owned) {
		t.Fatalf("other owner id on the same session: %v", err)
	}
	must(t, o2.Release(ctx))
	closed(t, "Lost of the first handle after releasing the second", o1.Lost())
}

func contextWithCancel(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(ctx)
}

func kvDelete(key string) kv.Txn { return kv.Txn{Then: []kv.Op{kv.Delete(key)}} }

// testOwnershipOrphan: an acquisition whose transaction etcd applied while
// its caller saw an error (a deadline) leaves a lock key bound to the
// caller's session that no Ownership holds. The next acquisition through
// that session, under any owner id, must remove it and take the log with a
// fresh token, instead of seeing the log owned by the ghost forever.
func testOwnershipOrphan(t *testing.T, e *env) {
	st := e.store()
	raw := e.kv()
	ctx := ctxOf(t)
	setupLog(t, st)
	s, err := st.NewSession(ctx, 10*time.Second)
	must(t, err)
	defer s.Close(ctx)

	lock := e.root() + "logdata/ns/l/lock"
	ghost, err := proto.Marshal(&metapb.Owner{Id: "ghost", Address: "127.0.0.1:1"})
	must(t, err)
	resp, err := raw.Txn(ctx, kv.Txn{Then: []kv.Op{kv.Put(lock, ghost, s.ID()), kv.Get(lock)}})
	must(t, err)
	ghostToken := metadata.Version(resp.Results[1].KVs[0].CreateRevision)

	// Another session sees the ghost as the owner (it is bound to a live
	// session it knows nothing about).
	other, err := st.NewSession(ctx, 10*time.Second)
	must(t, err)
	defer other.Close(ctx)
	_, err = st.AcquireOwnership(ctx, other, "ns", "l", metadata.OwnerInfo{ID: "stranger"}, false)
	var owned *dlog.OwnedError
	if !errors.As(err, &owned) || owned.OwnerID != "ghost" {
		t.Fatalf("other session: %v; want owned by ghost", err)
	}

	// The session the ghost is bound to takes the log back under a new id.
	o, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w2"}, false)
	must(t, err)
	if o.Token() == ghostToken {
		t.Fatal("the orphan's token survived: a stale holder could pass CheckOwner")
	}
	state, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	_, err = st.Commit(ctx, metadata.SetMaxTxID("ns", "l", 7, state.MaxTxIDVersion), metadata.CheckOwner("ns", "l", o))
	must(t, err)
	_, err = st.AcquireOwnership(ctx, other, "ns", "l", metadata.OwnerInfo{ID: "stranger"}, false)
	if !errors.As(err, &owned) || owned.OwnerID != "w2" {
		t.Fatalf("other session after adoption: %v; want owned by w2", err)
	}
	// A live holder is never treated as an orphan: the same session with
	// yet another id is refused while w2 holds the lock.
	_, err = st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w3"}, false)
	if !errors.As(err, &owned) || owned.OwnerID != "w2" {
		t.Fatalf("same session, live holder: %v; want owned by w2", err)
	}
	must(t, o.Release(ctx))
}
