package ledger

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// TestTwoWriters: writer B recovers the ledger while writer A keeps adding.
// A gets fenced errors (dlog.ErrFenced), B's closed ledger holds every entry
// A got acknowledged, and A never got an entry past B's end acknowledged.
func TestTwoWriters(t *testing.T) {
	tests := []struct {
		name    string
		bookies int
		opts    CreateOptions
	}{
		{"E3-Qw3-Qa2", 3, CreateOptions{EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2}},
		{"E5-Qw3-Qa2", 5, CreateOptions{EnsembleSize: 5, WriteQuorum: 3, AckQuorum: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, tt.bookies)
			clA := newClient(t, c, func(cfg *Config) { cfg.MaxPendingAdds = 64 })
			clB := newClient(t, c)
			ctx := deadline(t, 90*time.Second)
			w, err := clA.Create(ctx, tt.opts)
			must(t, err, "create")
			p := startPump(t, w, "two", 100, 100000)
			p.waitAcked(t, 300)
			md, err := clB.Recover(ctx, w.ID())
			must(t, err, "recover")
			if md.State != metadata.LedgerClosed {
				t.Fatalf("recovered state %v", md.State)
			}
			waitUntil(t, 60*time.Second, "writer A fenced", func() bool { return w.Err() != nil })
			wantErr(t, w.Err(), dlog.ErrFenced, "writer A's error")
			wantErr(t, w.Err(), ErrFenced, "writer A's error")
			// A later add is refused at once: nothing is sent, no ack.
			err = w.AddAsync(ctx, []byte("late"), func(id int64, err error) {
				t.Errorf("callback of a refused add ran: %d %v", id, err)
			})
			wantErr(t, err, ErrFenced, "add after the fence")
			p.waitSettled(t)
			acked, errs, _ := p.log.snapshot()
			for _, err := range errs {
				if !errors.Is(err, dlog.ErrFenced) || dlog.IsDefinite(err) {
					t.Fatalf("A's add failed with %v, want an indeterminate fenced error", err)
				}
			}
			if top := maxKey(acked); top > md.LastEntryID {
				t.Fatalf("A got entry %d acknowledged, beyond B's closed end %d", top, md.LastEntryID)
			}
			checkReadable(t, clB, w.ID(), acked)
			checkLength(t, clB, md, w.ID())
			if _, err := w.Close(ctx); !errors.Is(err, dlog.ErrFenced) {
				t.Fatalf("A's close: got %v, want fenced", err)
			}
			again, err := clA.Recover(ctx, w.ID())
			must(t, err, "recover a closed ledger")
			if !sameLedger(again, md) {
				t.Fatalf("a closed ledger changed: %+v, then %+v", md, again)
			}
		})
	}
}

// holeResult is what the fencing-hole scenario observed.
type holeResult struct {
	closedAt     int64 // B's recovered last entry
	entry10      error // outcome of A's add of entry 10 (nil = acknowledged)
	entry10ID    int64
	fenceDropped int64 // B's fence requests the proxy dropped at Z
}

// fencingHole stages BookKeeper #2614 with real bookies (E=Qw=3, Qa=2).
// Writer A adds entries 0..9, then entry 10, which reaches bookie X (acked
// there) while the proxies hold it on its way to Y and Z. Recovery B's
// fence request to Z is dropped (coverage is reached with X and Y), and its
// recovery read of entry 10 at X is dropped, so B decides entry 10 from Y
// and Z, which both deny it, and closes at 9. Then A's held add reaches Z.
// With fencing recovery reads, Z was fenced by B's read and refuses it; with
// the bug RecoveryReadsDoNotFence, Z accepts it and A gets entry 10
// acknowledged beyond the closed end.
func fencingHole(t *testing.T) holeResult {
	c := startCluster(t, 3)
	// A's adds must wait in the proxies without A replacing the bookies.
	clA := newClient(t, c, func(cfg *Config) { cfg.AddTimeout = time.Minute })
	clB := newClient(t, c)
	ctx := deadline(t, 90*time.Second)
	w, err := clA.Create(ctx, CreateOptions{EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2})
	must(t, err, "create")
	ens := w.Metadata().Fragments[0].Bookies
	x, y, z := c.Index(ens[0]), c.Index(ens[1]), c.Index(ens[2])
	for e := range int64(10) {
		_, err := w.Add(ctx, payload("hole", e, 50))
		must(t, err, "add %d", e)
	}
	// Explicit LAC makes X and Y report LAC 9, so B's scan starts at 10.
	for _, i := range []int{x, y} {
		waitUntil(t, 30*time.Second, "explicit LAC 9", func() bool {
			r, err := clB.BookieClient().ReadLAC(ctx, c.Addr(i), &bookiepb.ReadLACRequest{LedgerId: w.ID()})
			return err == nil && r.Lac == 9
		})
	}

	isAdd10 := func(r *bookiepb.Request) bool {
		a := r.GetAdd()
		return a != nil && a.Entry.GetEntryId() == 10 && !a.Recovery
	}
	var xAcked, fenceDropped atomic.Int64
	c.Proxy(x).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
		if rd := r.GetRead(); rd != nil && rd.EntryId == 10 {
			return cluster.Drop // B never sees X's copy
		}
		return cluster.Pass
	})
	c.Proxy(x).OnResponse(func(r *bookiepb.Response) cluster.Verdict {
		if a := r.GetAdd(); a != nil && a.EntryId == 10 && r.Status == bookiepb.Status_STATUS_OK {
			xAcked.Add(1)
		}
		return cluster.Pass
	})
	c.Proxy(y).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
		if isAdd10(r) {
			return cluster.Hold
		}
		return cluster.Pass
	})
	c.Proxy(z).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
		if isAdd10(r) {
			return cluster.Hold
		}
		if rd := r.GetRead(); rd != nil && rd.EntryId == -1 && rd.Fence {
			fenceDropped.Add(1)
			return cluster.Drop // B's fence request to Z is lost
		}
		return cluster.Pass
	})

	var (
		mu   sync.Mutex
		res  holeResult
		done = make(chan struct{})
	)
	must(t, w.AddAsync(ctx, payload("hole", 10, 50), func(id int64, err error) {
		mu.Lock()
		res.entry10ID, res.entry10 = id, err
		mu.Unlock()
		close(done)
	}), "add entry 10")
	waitUntil(t, 30*time.Second, "entry 10 acked by X and held for Y and Z", func() bool {
		return xAcked.Load() == 1 && c.Proxy(y).Held() == 1 && c.Proxy(z).Held() == 1
	})

	md, err := clB.Recover(ctx, w.ID())
	must(t, err, "recover")
	res.closedAt = md.LastEntryID
	res.fenceDropped = fenceDropped.Load()

	// A's add of entry 10 finally reaches Z, then Y.
	c.Proxy(z).OnRequest(nil)
	c.Proxy(z).Release()
	select {
	case <-done:
	case <-ctx.Done():
		// Not answered by Z's ack; Y's refusal will decide it.
	}
	c.Proxy(y).OnRequest(nil)
	c.Proxy(y).Release()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("entry 10 never completed")
	}
	w.Abort()
	mu.Lock()
	defer mu.Unlock()
	return res
}

// TestFencingHole: with fencing recovery reads (the default), the lost
// fence request does not let the old writer complete an entry past the
// recovered end (BookKeeper #2614).
func TestFencingHole(t *testing.T) {
	res := fencingHole(t)
	if res.fenceDropped == 0 {
		t.Fatal("the fault was not staged: no fence request reached Z's proxy")
	}
	if res.closedAt != 9 {
		t.Fatalf("recovery closed at %d, want 9 (entry 10 was never acknowledged)", res.closedAt)
	}
	if res.entry10 == nil {
		t.Fatalf("entry %d acknowledged beyond the closed end %d", res.entry10ID, res.closedAt)
	}
	wantErr(t, res.entry10, dlog.ErrFenced, "entry 10")
}
