package kvstore

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/namespace"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestReplicasConvergeAndRestartFromSnapshot: a leader and a follower
// apply the same log; the follower snapshots, stops, misses writes,
// restarts from its snapshot and replays only what it missed.
func TestReplicasConvergeAndRestartFromSnapshot(t *testing.T) {
	ccfg := cluster.DefaultConfig(t.TempDir())
	ccfg.SessionTTL = 10 * time.Second
	ccfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	c, err := cluster.Start(t.Context(), ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cfg := namespace.DefaultConfig("")
	cfg.Store = c.Store()
	cfg.GCInterval = 0
	ns, err := namespace.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := ns.CreateLog(ctx, "kv", namespace.LogOptions{}); err != nil {
		t.Fatal(err)
	}
	leader, err := Open(ctx, ns, "kv", t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close(ctx)
	followerDir := t.TempDir()
	follower, err := Open(ctx, ns, "kv", followerDir, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := follower.Put(ctx, "x", "y"); err != ErrNotLeader {
		t.Fatalf("follower put: %v", err)
	}
	put := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := leader.Put(ctx, fmt.Sprintf("k%03d", i%50), fmt.Sprintf("v%d", i)); err != nil {
				t.Fatalf("put %d: %v", i, err)
			}
		}
	}
	put(0, 100)
	last, err := leader.Delete(ctx, "k007")
	if err != nil {
		t.Fatal(err)
	}
	if err := follower.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	same := func(a, b *Store) {
		t.Helper()
		if a.Len() != b.Len() {
			t.Fatalf("replicas hold %d and %d keys", a.Len(), b.Len())
		}
		for i := range 50 {
			k := fmt.Sprintf("k%03d", i)
			va, oka := a.Get(k)
			vb, okb := b.Get(k)
			if va != vb || oka != okb {
				t.Fatalf("key %s: %q %v vs %q %v", k, va, oka, vb, okb)
			}
		}
	}
	same(leader, follower)
	if _, ok := follower.Get("k007"); ok {
		t.Fatal("deleted key present")
	}
	if err := follower.Snapshot(); err != nil {
		t.Fatal(err)
	}
	snapAt, _ := follower.Applied()
	if err := follower.Close(ctx); err != nil {
		t.Fatal(err)
	}

	put(100, 130) // the follower is down
	last, _ = leader.Applied()

	follower, err = Open(ctx, ns, "kv", followerDir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close(ctx)
	if err := follower.WaitApplied(ctx, last); err != nil {
		t.Fatal(err)
	}
	same(leader, follower)
	applied, replayed := follower.Applied()
	if replayed != 30 || applied != last || !snapAt.Less(applied) {
		t.Fatalf("restarted follower replayed %d records (want 30) up to %v (want %v)", replayed, applied, last)
	}
}
