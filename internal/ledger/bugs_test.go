//go:build dlogbugs

package ledger

import (
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// withBug switches a seeded bug on for one test.
func withBug(t *testing.T, name string) {
	t.Helper()
	if err := bugs.Set(name, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bugs.Set(name, false) })
}

// TestBugRecoveryReadsDoNotFence: without the fence flag on recovery reads
// the staged BookKeeper #2614 scenario acknowledges entry 10 to the old
// writer after recovery closed the ledger at 9: data loss is observable.
func TestBugRecoveryReadsDoNotFence(t *testing.T) {
	withBug(t, bugs.RecoveryReadsDoNotFence)
	res := fencingHole(t)
	if res.closedAt != 9 {
		t.Fatalf("recovery closed at %d, want 9", res.closedAt)
	}
	if res.entry10 != nil || res.entry10ID != 10 {
		t.Fatalf("with the bug, entry 10 should be acknowledged past the closed end; got id %d err %v", res.entry10ID, res.entry10)
	}
}

// TestBugAckBeforeEnsembleCAS: with the switch on, entries that rely on the
// replacement bookie are acknowledged while the metadata CAS naming it is
// still held (BookKeeper #1591): a recovery at that moment would look for
// their second copy on the old ensemble.
func TestBugAckBeforeEnsembleCAS(t *testing.T) {
	withBug(t, bugs.AckBeforeEnsembleCAS)
	res := ackBeforeCAS(t, true)
	if res.ackedDuringCAS == 0 || res.sentToNewMember == 0 {
		t.Fatalf("with the bug: %d entries acknowledged and %d adds sent to the replacement while the CAS was held; want some",
			res.ackedDuringCAS, res.sentToNewMember)
	}
}

// TestBugReaderPastLAC: with the switch on, a non-recovery reader takes
// the last entry the bookies hold for the LAC: OpenReader and WaitLAC report
// entries that are not acknowledged, and the reader serves one that
// recovery then truncates (the writer died before its ack quorum).
func TestBugReaderPastLAC(t *testing.T) {
	withBug(t, bugs.ReaderPastLAC)
	c := startCluster(t, 3)
	wcl := newClient(t, c, func(cfg *Config) {
		cfg.ExplicitLACDelay = 0
		cfg.AddTimeout = time.Minute // the held adds must not replace bookies
	})
	rcl := newClient(t, c)
	ctx := deadline(t, 60*time.Second)
	w, err := wcl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	for e := range int64(5) {
		_, err := w.Add(ctx, payload("past", e, 16))
		must(t, err, "add %d", e)
	}
	// The bookies' LAC is 3 (piggybacked on entry 4); the buggy reader
	// reports the last entry they hold.
	r, err := rcl.OpenReader(ctx, w.ID())
	must(t, err, "open reader")
	if r.LAC() != 4 {
		t.Fatalf("with the bug, reader LAC %d, want 4 (the bookies' last entry)", r.LAC())
	}
	got, err := r.Read(ctx, 4, 4)
	if err != nil || len(got) != 1 || got[0].ID != 4 {
		t.Fatalf("with the bug, reading entry 4 past LAC 3 should succeed; got %v, %v", got, err)
	}

	// Entry 5 reaches only X: Y and Z hold its add, so it is never
	// acknowledged.
	ens := w.Metadata().Fragments[0].Bookies
	x, y, z := c.Index(ens[0]), c.Index(ens[1]), c.Index(ens[2])
	for _, i := range []int{y, z} {
		c.Proxy(i).OnRequest(func(q *bookiepb.Request) cluster.Verdict {
			if q.GetAdd() != nil {
				return cluster.Hold
			}
			return cluster.Pass
		})
	}
	acked := make(chan error, 1)
	must(t, w.AddAsync(ctx, payload("past", 5, 16), func(_ int64, err error) { acked <- err }), "add 5")
	waitUntil(t, 30*time.Second, "entry 5 on X", func() bool {
		_, err := readDirect(t, rcl, c.Addr(x), w.ID(), 5)
		return err == nil
	})
	lac, err := r.WaitLAC(ctx, 4)
	if err != nil || lac != 5 {
		t.Fatalf("with the bug, WaitLAC(4) = %d, %v; want 5 (held by X only, not acknowledged)", lac, err)
	}
	got, err = r.Read(ctx, 5, 5)
	if err != nil || len(got) != 1 || got[0].ID != 5 {
		t.Fatalf("with the bug, reading unacknowledged entry 5 should succeed; got %v, %v", got, err)
	}

	// The writer dies; recovery without X closes the ledger at 4: the
	// reader served an entry past the sealed end.
	w.Abort()
	c.Proxy(x).OnRequest(func(*bookiepb.Request) cluster.Verdict { return cluster.Drop })
	for _, i := range []int{y, z} {
		c.Proxy(i).OnRequest(func(q *bookiepb.Request) cluster.Verdict {
			if q.GetAdd() != nil && !q.GetAdd().Recovery {
				return cluster.Drop // the dead writer's held add stays lost
			}
			return cluster.Pass
		})
		c.Proxy(i).Cut() // drops the held add of entry 5
	}
	md, err := newClient(t, c).Recover(ctx, w.ID())
	must(t, err, "recover")
	if md.LastEntryID != 4 {
		t.Fatalf("recovered to %d, want 4", md.LastEntryID)
	}
	c.Proxy(x).OnRequest(nil)
	select {
	case err := <-acked:
		if err == nil {
			t.Fatal("entry 5 was acknowledged")
		}
	default:
	}
}
