package metadata_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/metadata/etcdserver"
	"github.com/dlog-io/dlog/internal/metadata/kv/memkv"
)

const deadline = 30 * time.Second

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	t.Cleanup(cancel)
	return ctx
}

func waitClosed(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(deadline):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func testLedger() metadata.LedgerMetadata {
	return metadata.LedgerMetadata{
		EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2, State: metadata.LedgerOpen, LastEntryID: -1,
		Fragments: []metadata.Fragment{{FirstEntryID: 0, Bookies: []string{"b1", "b2", "b3"}}},
	}
}

func TestOpenURLs(t *testing.T) {
	tests := []struct {
		name string
		url  string
		ok   bool
	}{
		{"memory", "memory:", true},
		{"external", "http://127.0.0.1:1,http://127.0.0.1:2", true},
		{"bare host:port", "127.0.0.1:1", true},
		{"empty", "", false},
		{"only commas", ",,", false},
		{"bad scheme", "zk://127.0.0.1:2181", false},
		{"embedded without dir", "embedded:", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := metadata.Open(t.Context(), tt.url, metadata.Options{})
			if (err == nil) != tt.ok {
				t.Fatalf("Open(%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
			if err == nil {
				must(t, st.Close())
			} else if !errors.Is(err, dlog.ErrInvalidArgument) {
				t.Fatalf("error %v does not wrap ErrInvalidArgument", err)
			}
		})
	}
	_, err := metadata.Open(t.Context(), "memory:", metadata.Options{Cluster: "a/b"})
	if !errors.Is(err, dlog.ErrInvalidName) {
		t.Fatalf("bad cluster name: %v", err)
	}
}

// TestEmbeddedRestartKeepsEverything stops the embedded etcd and starts it
// again on the same directory: every key, version and the ledger id
// counter survive.
func TestEmbeddedRestartKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	ctx := ctxOf(t)
	url := "embedded:" + dir

	st, err := metadata.Open(ctx, url, metadata.Options{Cluster: "restart"})
	must(t, err)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{Retention: time.Hour}))
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
	state, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	var lastID int64
	for range 5 {
		lastID, err = st.NewLedgerID(ctx)
		must(t, err)
	}
	lv, err := st.CreateLedger(ctx, lastID, testLedger())
	must(t, err)
	_, err = st.Commit(ctx,
		metadata.CreateSegment("ns", "l", metadata.Segment{LSSN: 1, LedgerID: lastID, State: metadata.SegmentInProgress, FirstTxID: 7}),
		metadata.SetMaxLSSN("ns", "l", 1, state.MaxLSSNVersion),
		metadata.SetMaxTxID("ns", "l", 7, state.MaxTxIDVersion))
	must(t, err)
	must(t, st.CommitSubscription(ctx, "ns", "l", "sub", dlog.DLSN{LSSN: 1, EntryID: 3}, false))
	cv, err := st.PutCookie(ctx, metadata.Cookie{BookieID: "b1", InstanceID: "i"}, 0)
	must(t, err)
	before, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	must(t, st.Close())

	st, err = metadata.Open(ctx, url, metadata.Options{Cluster: "restart"})
	must(t, err)
	defer st.Close()
	after, err := st.GetLogState(ctx, "ns", "l")
	must(t, err)
	if fmt.Sprintf("%+v", after.Segments) != fmt.Sprintf("%+v", before.Segments) ||
		after.MaxLSSN != 1 || after.MaxTxID != 7 || after.MaxLSSNVersion != before.MaxLSSNVersion {
		t.Fatalf("log state after restart\n got %+v\nwant %+v", after, before)
	}
	ns, _, err := st.GetNamespace(ctx, "ns")
	must(t, err)
	if ns.Retention != time.Hour {
		t.Fatalf("namespace after restart: %+v", ns)
	}
	_, v, err := st.GetLedger(ctx, lastID)
	must(t, err)
	if v != lv {
		t.Fatalf("ledger version after restart %d, want %d", v, lv)
	}
	_, v, err = st.GetCookie(ctx, "b1")
	must(t, err)
	if v != cv {
		t.Fatalf("cookie version after restart %d, want %d", v, cv)
	}
	sub, err := st.GetSubscription(ctx, "ns", "l", "sub")
	must(t, err)
	if sub.Position != (dlog.DLSN{LSSN: 1, EntryID: 3}) {
		t.Fatalf("subscription after restart: %+v", sub)
	}
	id, err := st.NewLedgerID(ctx)
	must(t, err)
	if id != lastID+1 {
		t.Fatalf("ledger id after restart %d, want %d", id, lastID+1)
	}
}

// TestUnreachable: with etcd gone, calls fail with ErrUnavailable once
// their ctx (or RequestTimeout) ends, sessions end after their TTL and
// ownership is lost.
func TestUnreachable(t *testing.T) {
	t.Run("closed port", func(t *testing.T) {
		urls, err := etcdserver.FreeLoopbackURLs(1)
		must(t, err)
		st, err := metadata.Open(t.Context(), urls[0], metadata.Options{})
		must(t, err)
		defer st.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		_, err = st.NewLedgerID(ctx)
		if !errors.Is(err, metadata.ErrUnavailable) || ctx.Err() == nil {
			t.Fatalf("NewLedgerID on a closed port: %v (ctx err %v)", err, ctx.Err())
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("error %v does not carry the ctx error", err)
		}
	})
	t.Run("request timeout without ctx deadline", func(t *testing.T) {
		urls, err := etcdserver.FreeLoopbackURLs(1)
		must(t, err)
		st, err := metadata.Open(t.Context(), urls[0], metadata.Options{RequestTimeout: 200 * time.Millisecond})
		must(t, err)
		defer st.Close()
		_, _, err = st.ListBookies(context.Background())
		if !errors.Is(err, metadata.ErrUnavailable) {
			t.Fatalf("ListBookies on a closed port: %v", err)
		}
	})
	t.Run("stopped server", func(t *testing.T) {
		srv := startEtcd(t, t.TempDir(), true)
		ctx := ctxOf(t)
		st, err := metadata.Open(ctx, srv.Endpoints()[0], metadata.Options{})
		must(t, err)
		defer st.Close()
		must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
		must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
		s, err := st.NewSession(ctx, time.Second)
		must(t, err)
		o, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w"}, false)
		must(t, err)
		state, err := st.GetLogState(ctx, "ns", "l")
		must(t, err)

		srv.Close()
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err = st.Commit(cctx, metadata.SetMaxTxID("ns", "l", 5, state.MaxTxIDVersion), metadata.CheckOwner("ns", "l", o))
		if !errors.Is(err, metadata.ErrUnavailable) {
			t.Fatalf("Commit on a stopped server: %v", err)
		}
		if dlog.IsDefinite(err) || !errors.Is(err, dlog.ErrUnavailable) {
			t.Fatal("ErrUnavailable must be indeterminate and match dlog.ErrUnavailable")
		}
		// Keepalives fail: the session ends within its TTL and the
		// ownership with it.
		waitClosed(t, "session Done without keepalives", s.Done())
		waitClosed(t, "Lost without keepalives", o.Lost())
	})
}

// TestMemoryPartition: the in-memory backend simulates a partition; the
// client side behaves as with etcd.
func TestMemoryPartition(t *testing.T) {
	srv, err := memkv.NewServer(memkv.Config{})
	must(t, err)
	defer srv.Close()
	st, err := metadata.New(srv.Client(), metadata.Options{})
	must(t, err)
	defer st.Close()
	ctx := ctxOf(t)
	must(t, st.CreateNamespace(ctx, "ns", metadata.NamespaceInfo{}))
	must(t, st.CreateLog(ctx, "ns", "l", metadata.LogInfo{}))
	s, err := st.NewSession(ctx, 500*time.Millisecond)
	must(t, err)
	o, err := st.AcquireOwnership(ctx, s, "ns", "l", metadata.OwnerInfo{ID: "w"}, false)
	must(t, err)

	srv.SetUnavailable(true)
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = st.NewLedgerID(cctx)
	if !errors.Is(err, metadata.ErrUnavailable) {
		t.Fatalf("NewLedgerID while partitioned: %v", err)
	}
	waitClosed(t, "session Done while partitioned", s.Done())
	waitClosed(t, "Lost while partitioned", o.Lost())
	srv.SetUnavailable(false)
	// The lease expired on the server too: the lock is free.
	_, held, err := st.GetOwner(ctx, "ns", "l")
	must(t, err)
	if held {
		// Expiry on the server may trail the client's verdict; wait for it.
		deadlineAt := time.Now().Add(deadline)
		for held && time.Now().Before(deadlineAt) {
			time.Sleep(20 * time.Millisecond)
			_, held, err = st.GetOwner(ctx, "ns", "l")
			must(t, err)
		}
		if held {
			t.Fatal("lock still held after the lease expired")
		}
	}
}
