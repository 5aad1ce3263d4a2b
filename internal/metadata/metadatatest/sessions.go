package metadatatest

import (
	"errors"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
)

// leaseTTL is the shortest TTL etcd grants with a short election timeout.
const leaseTTL = time.Second

func testSessionClose(t *testing.T, e *env) {
	st := e.store()
	ctx := ctxOf(t)
	_, err := st.NewSession(ctx, 0)
	mustBe(t, err, dlog.ErrInvalidArgument)
	s, err := st.NewSession(ctx, 3*time.Second)
	must(t, err)
	if s.TTL() < 3*time.Second || s.ID() == 0 {
		t.Fatalf("session TTL %v id %d", s.TTL(), s.ID())
	}
	must(t, st.RegisterBookie(ctx, s, metadata.BookieInfo{ID: "b", State: metadata.BookieWritable}))
	if isClosed(s.Done()) {
		t.Fatal("Done closed on a live session")
	}
	must(t, s.Close(ctx))
	closed(t, "Done after Close", s.Done())
	must(t, s.Close(ctx)) // twice is fine
	list, _, err := st.ListBookies(ctx)
	must(t, err)
	equal(t, "bookies after Close", len(list), 0)
	mustBe(t, st.RegisterBookie(ctx, s, metadata.BookieInfo{ID: "b", State: metadata.BookieWritable}), metadata.ErrSessionExpired)
	_, err = st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w"}, false)
	mustBe(t, err, metadata.ErrSessionExpired)
}

// testLeaseExpiry: a process that dies without revoking (its store closed,
// keepalives stopped) loses its registrations and ownerships when the lease
// expires; a waiting writer then takes over.
func testLeaseExpiry(t *testing.T, e *env) {
	observer := e.store()
	dying := e.store()
	ctx := ctxOf(t)
	must(t, observer.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	must(t, observer.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))

	s, err := dying.NewSession(ctx, leaseTTL)
	must(t, err)
	must(t, dying.RegisterBookie(ctx, s, metadata.BookieInfo{ID: "b1", State: metadata.BookieWritable}))
	must(t, dying.RegisterProxy(ctx, s, metadata.ProxyInfo{ID: "p1"}))
	o, err := dying.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "dying"}, false)
	must(t, err)

	list, rev, err := observer.ListBookies(ctx)
	must(t, err)
	equal(t, "bookies", len(list), 1)
	events := observer.WatchBookies(ctx, rev+1)

	successor, err := observer.NewSession(ctx, 10*time.Second)
	must(t, err)
	defer successor.Close(ctx)
	type result struct {
		o   metadata.Ownership
		err error
	}
	acquired := make(chan result, 1)
	go func() {
		o, err := observer.AcquireOwnership(ctx, successor, "ns", "l", metadata.OwnerInfo{ID: "successor"}, true)
		acquired <- result{o, err}
	}()

	// The process "dies": keepalives stop, nothing is revoked.
	must(t, dying.Close())
	closed(t, "Lost after the owner's store closed", o.Lost())
	closed(t, "Done after the store closed", s.Done())

	ev := recv(t, events)
	if ev.Err != nil || ev.Type != metadata.EventDelete || ev.Bookie.ID != "b1" {
		t.Fatalf("bookie event after expiry: %+v", ev)
	}
	list, _, err = observer.ListBookies(ctx)
	must(t, err)
	equal(t, "bookies after expiry", len(list), 0)
	proxies, _, err := observer.ListProxies(ctx)
	must(t, err)
	equal(t, "proxies after expiry", len(proxies), 0)
	var r result
	select {
	case r = <-acquired:
	case <-time.After(Deadline):
		t.Fatal("waiting writer did not take over")
	}
	must(t, r.err)
	owner, held, err := observer.GetOwner(ctx, "ns", "l")
	must(t, err)
	if !held || owner.ID != "successor" {
		t.Fatalf("owner after expiry = %+v held=%v", owner, held)
	}
	must(t, r.o.Release(ctx))
}

// testSessionDoneOnServerExpiry: when the server drops the lease (here
// revoked behind the session's back, as an expiry during a pause would),
// the session notices on its next renewal, and the ownership is lost.
func testSessionDoneOnServerExpiry(t *testing.T, e *env) {
	st := e.store()
	raw := e.kv()
	ctx := ctxOf(t)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
	s, err := st.NewSession(ctx, 2*time.Second)
	must(t, err)
	o, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w"}, false)
	must(t, err)
	must(t, raw.Revoke(ctx, s.ID()))
	closed(t, "Lost after the lease was revoked", o.Lost())
	closed(t, "Done after the lease was revoked", s.Done())
	_, held, err := st.GetOwner(ctx, "ns", "l")
	must(t, err)
	equal(t, "held", held, false)
	err = st.RegisterBookie(ctx, s, metadata.BookieInfo{ID: "b", State: metadata.BookieWritable})
	mustBe(t, err, metadata.ErrSessionExpired)
	must(t, s.Close(ctx))
	if err := o.Release(ctx); err != nil && !errors.Is(err, metadata.ErrBadVersion) {
		t.Fatal(err)
	}
}
