package metadatatest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/metadata/kv"
)

// Harness gives the suite access to one running metadata service.
type Harness struct {
	// Open returns a new Store (its own client) of the service with opts
	// (the suite sets Cluster and may set WatchBufferEvents). The suite
	// closes it, possibly before the test ends.
	Open func(t *testing.T, opts metadata.Options) metadata.Store
	// KV returns a raw client of the same service (the suite closes it);
	// tests use it to revoke leases behind a store's back and to plant
	// corrupt values.
	KV func(t *testing.T) kv.KV
	// Compact, if not nil, discards the service's history up to its
	// current revision.
	Compact func(t *testing.T)
}

// Deadline bounds every wait of the suite. It only catches hangs.
const Deadline = 30 * time.Second

var clusterSeq atomic.Int64

// env is what one test works with: a fresh cluster prefix.
type env struct {
	t       *testing.T
	h       Harness
	cluster string
}

func newEnv(t *testing.T, h Harness) *env {
	return &env{t: t, h: h, cluster: fmt.Sprintf("c%d-%d", time.Now().UnixNano()%1e9, clusterSeq.Add(1))}
}

// store opens a store on the test's cluster, closed at cleanup.
func (e *env) store() metadata.Store { return e.storeWith(metadata.Options{}) }

func (e *env) storeWith(opts metadata.Options) metadata.Store {
	e.t.Helper()
	opts.Cluster = e.cluster
	s := e.h.Open(e.t, opts)
	e.t.Cleanup(func() { s.Close() })
	return s
}

func (e *env) kv() kv.KV {
	e.t.Helper()
	c := e.h.KV(e.t)
	e.t.Cleanup(func() { c.Close() })
	return c
}

// root is the cluster's key prefix (as documented in package metadata).
func (e *env) root() string { return "/dlog/" + e.cluster + "/" }

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"Names", testNames},
		{"KeyIsolation", testKeyIsolation},
		{"Namespaces", testNamespaces},
		{"Logs", testLogs},
		{"DeleteLogRemovesEverything", testDeleteLogRemovesEverything},
		{"ListLogsPagination", testListLogsPagination},
		{"CreateSegmentCommit", testCreateSegmentCommit},
		{"CommitAllOrNothing", testCommitAllOrNothing},
		{"CommitInvalid", testCommitInvalid},
		{"CASRaceOneWinner", testCASRace},
		{"LedgerIDs", testLedgerIDs},
		{"Ledgers", testLedgers},
		{"Bookies", testBookies},
		{"Cookies", testCookies},
		{"Proxies", testProxies},
		{"SessionClose", testSessionClose},
		{"LeaseExpiryRemovesRegistrations", testLeaseExpiry},
		{"SessionDoneOnServerExpiry", testSessionDoneOnServerExpiry},
		{"OwnershipImmediate", testOwnershipImmediate},
		{"OwnershipWaiting", testOwnershipWaiting},
		{"OwnershipLostOnDelete", testOwnershipLostOnDelete},
		{"OwnershipReentry", testOwnershipReentry},
		{"OwnershipOrphan", testOwnershipOrphan},
		{"Subscriptions", testSubscriptions},
		{"WatchLogEveryChangeInOrder", testWatchLog},
		{"WatchLedger", testWatchLedger},
		{"WatchLagged", testWatchLagged},
		{"WatchEnds", testWatchEnds},
		{"CorruptValue", testCorrupt},
	}
	t.Run("Parallel", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				tt.fn(t, newEnv(t, h))
			})
		}
	})
	// Compaction is service-wide: it would cut the other tests' watches.
	t.Run("WatchCompacted", func(t *testing.T) { testWatchCompacted(t, newEnv(t, h)) })
}

// ---- helpers ----

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), Deadline)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustBe(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want one wrapping %v", err, target)
	}
}

func equal[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// waitFor polls cond until it holds, failing the test after Deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// recv takes the next value of ch, failing after Deadline or if closed.
func recv[E any](t *testing.T, ch <-chan E) E {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return e
	case <-time.After(Deadline):
		t.Fatal("timed out waiting for an event")
	}
	panic("unreachable")
}

// closed waits until c is closed.
func closed(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(Deadline):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// drain reads ch until it closes and returns everything read.
func drain[E any](t *testing.T, ch <-chan E) []E {
	t.Helper()
	var out []E
	timeout := time.After(Deadline)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e)
		case <-timeout:
			t.Fatal("timed out draining a channel")
		}
	}
}
