package namespace

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
)

// waitFor polls cond until it holds or ctx ends (then it fails the test).
func waitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// TestFailoverWhileReadersTail: writer A writes while readers tail the
// log; A loses its lock and writer B takes over (recovering A's segment,
// which fences it). A's pending and later writes must end with an error
// wrapping dlog.ErrFenced, never an ack; every record acknowledged to A or
// B must be read exactly once, in order, by readers that tailed
// throughout. In the "paused" case A never learns that its lock is gone
// (as after a long pause): only bookie fencing and the metadata CAS stop
// it.
func TestFailoverWhileReadersTail(t *testing.T) {
	for _, blind := range []bool{false, true} {
		name := "writer notices lost lock"
		if blind {
			name = "paused writer stopped by fencing"
		}
		t.Run(name, func(t *testing.T) {
			c := startCluster(t, 3, "memory:")
			small := func(cfg *Config) {
				cfg.SegmentRollBytes = 24 << 10
				cfg.FlushBytes = 2 << 10
			}
			nsA := openNS(t, c, small, func(cfg *Config) { cfg.testHooks.ignoreOwnershipLost = blind })
			nsB := openNS(t, c, small)
			nsR := openNS(t, c, small)
			ctx := deadline(t, 4*time.Minute)
			const log = "failover"
			createLog(t, nsR, log)

			tails := map[string]*tailer{}
			starts := map[string]dlog.DLSN{}
			for i := range 3 {
				r, err := nsR.OpenReader(ctx, log, AtStart(), ReaderOptions{ReadAheadEntries: 1 + i*7})
				must(t, err, "open reader")
				name := fmt.Sprintf("tail-%d", i)
				tails[name], starts[name] = startTailer(ctx, r, dlog.InitialDLSN), dlog.InitialDLSN
			}

			h := newHistory()
			wA, err := nsA.OpenWriter(ctx, log, WriterOptions{})
			must(t, err, "open writer A")
			var wg sync.WaitGroup
			aDone := make(chan struct{})
			wg.Go(func() {
				defer close(aDone)
				writeUntil(ctx, wA, h, 0, 1<<30, 64, 100, nil)
			})
			waitFor(t, ctx, "A's first acks", func() bool { return h.ackedCount() >= 1500 || wA.Err() != nil })
			must(t, wA.Err(), "writer A before the failover")

			expireSession(t, nsA)
			wB, err := nsB.OpenWriter(ctx, log, WriterOptions{Wait: true})
			must(t, err, "open writer B")
			select { // A stops once it is fenced
			case <-aDone:
			case <-ctx.Done():
				t.Fatalf("writer A never stopped: err %v", wA.Err())
			}
			wg.Wait()
			if err := wA.Err(); !errors.Is(err, dlog.ErrFenced) {
				t.Fatalf("writer A ended with %v; want ErrFenced", err)
			}
			if _, err := wA.Write(ctx, dlog.Record{TxID: 1 << 40, Payload: []byte("late")}); !errors.Is(err, dlog.ErrFenced) {
				t.Fatalf("write after fencing: %v", err)
			}
			if err := wA.Close(ctx); !errors.Is(err, dlog.ErrFenced) {
				t.Fatalf("close of fenced writer A: %v", err)
			}
			ackedA := h.ackedCount()
			h.mu.Lock()
			for id, err := range h.failed {
				if !errors.Is(err, dlog.ErrFenced) || dlog.IsDefinite(err) {
					t.Fatalf("A's write %d failed with %v; want an indeterminate ErrFenced", id, err)
				}
			}
			h.mu.Unlock()

			// A reader starting after the failover, at a record A wrote.
			mid := h.acked[uint64(ackedA/2)]
			r, err := nsR.OpenReader(ctx, log, AtDLSN(mid), ReaderOptions{})
			must(t, err, "open late reader")
			tails["late"], starts["late"] = startTailer(ctx, r, mid), mid

			writeUntil(ctx, wB, h, 1<<20, 1500, 64, 100, nil)
			must(t, wB.Close(ctx), "close writer B")
			end := wB.LastDLSN()
			reads := map[string][]dlog.ReadRecord{}
			for name, tl := range tails {
				recs, err := tl.finish(end)
				must(t, err, "tailer %s", name)
				reads[name] = recs
			}
			final := readAll(t, ctx, nsR, log, end)
			checkReads(t, final, h, reads, starts)
			for name, recs := range reads {
				if name != "late" && len(recs) != len(final) {
					t.Fatalf("tailer %s read %d records of %d", name, len(recs), len(final))
				}
			}
			t.Logf("A acknowledged %d, failed %d; log holds %d records", ackedA, len(h.failed), len(final))
		})
	}
}
