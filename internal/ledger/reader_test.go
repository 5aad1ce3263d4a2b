package ledger

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// TestExplicitLAC: after a burst of adds and no further add, an explicit
// LAC makes the last entry visible to a tailing reader; without it the
// bookies' LAC stays one behind and the reader refuses the last entry.
func TestExplicitLAC(t *testing.T) {
	tests := []struct {
		name  string
		delay time.Duration
	}{
		{"explicit-lac", 5 * time.Millisecond},
		{"no-explicit-lac", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, 3)
			wcl := newClient(t, c, func(cfg *Config) { cfg.ExplicitLACDelay = tt.delay })
			rcl := newClient(t, c)
			ctx := deadline(t, 60*time.Second)
			w, err := wcl.Create(ctx, DefaultCreateOptions())
			must(t, err, "create")
			for e := range int64(10) {
				_, err := w.Add(ctx, payload("lac", e, 32))
				must(t, err, "add %d", e)
			}
			r, err := rcl.OpenReader(ctx, w.ID())
			must(t, err, "open reader")
			if tt.delay > 0 {
				lac, err := r.WaitLAC(ctx, 8)
				must(t, err, "wait for the last entry")
				if lac != 9 {
					t.Fatalf("LAC %d, want 9", lac)
				}
				got, err := r.Read(ctx, 9, 9)
				must(t, err, "read the last entry")
				if !bytes.Equal(got[0].Payload, payload("lac", 9, 32)) {
					t.Fatalf("entry 9: %q", got[0].Payload)
				}
				return
			}
			// Nothing ever carried LAC 9: every bookie reports 8.
			lac, err := r.RefreshLAC(ctx)
			must(t, err, "refresh")
			if lac != 8 {
				t.Fatalf("LAC %d without explicit LAC, want 8", lac)
			}
			if _, err := r.Read(ctx, 9, 9); !errors.Is(err, ErrBeyondLAC) {
				t.Fatalf("read past the LAC: got %v, want ErrBeyondLAC", err)
			}
		})
	}
}

// TestWaitLAC: a long poll wakes on new adds, never returns more than the
// writer acknowledged, and reports the end of a closed ledger.
func TestWaitLAC(t *testing.T) {
	c := startCluster(t, 3)
	wcl, rcl := newClient(t, c), newClient(t, c)
	ctx := deadline(t, 60*time.Second)
	w, err := wcl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	r, err := rcl.OpenReader(ctx, w.ID())
	must(t, err, "open reader")
	if r.LAC() != -1 {
		t.Fatalf("empty ledger LAC %d", r.LAC())
	}
	prev := int64(-1)
	for round := range 3 {
		type result struct {
			lac int64
			err error
		}
		ch := make(chan result, 1)
		go func() {
			lac, err := r.WaitLAC(ctx, prev)
			ch <- result{lac, err}
		}()
		for e := range int64(3) {
			_, err := w.Add(ctx, payload("wait", prev+1+e, 16))
			must(t, err, "round %d add", round)
		}
		res := <-ch
		must(t, res.err, "round %d wait", round)
		if res.lac <= prev || res.lac > w.LAC() {
			t.Fatalf("round %d: WaitLAC(%d) = %d with the writer at %d", round, prev, res.lac, w.LAC())
		}
		// The explicit LAC brings the reader to the writer's LAC.
		for r.LAC() < w.LAC() {
			_, err := r.WaitLAC(ctx, r.LAC())
			must(t, err, "round %d: catch up to %d", round, w.LAC())
		}
		prev = r.LAC()
	}
	md, err := w.Close(ctx)
	must(t, err, "close")
	lac, err := r.WaitLAC(ctx, prev)
	wantErr(t, err, ErrEndOfLedger, "wait on a closed ledger")
	if lac != md.LastEntryID || !r.Sealed() {
		t.Fatalf("after close: LAC %d sealed %v, want %d sealed", lac, r.Sealed(), md.LastEntryID)
	}
}

// TestTailingReader: a reader following a busy writer sees every
// acknowledged entry once, in order, never one the writer had not
// acknowledged yet, and the end when the writer closes.
func TestTailingReader(t *testing.T) {
	c := startCluster(t, 3)
	wcl := newClient(t, c, func(cfg *Config) { cfg.MaxPendingAdds = 32 })
	rcl := newClient(t, c)
	ctx := deadline(t, 90*time.Second)
	w, err := wcl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	const n = 500
	p := startPump(t, w, "tail", 80, n)
	r, err := rcl.OpenReader(ctx, w.ID())
	must(t, err, "open reader")
	next := int64(0)
	closed := false
	for {
		lac, err := r.WaitLAC(ctx, next-1)
		if errors.Is(err, ErrEndOfLedger) {
			break
		}
		must(t, err, "wait")
		entries, err := r.Read(ctx, next, lac)
		must(t, err, "read %d..%d", next, lac)
		for _, e := range entries {
			if e.ID != next {
				t.Fatalf("read entry %d, want %d", e.ID, next)
			}
			if top := w.LAC(); e.ID > top {
				t.Fatalf("reader saw entry %d while the writer's LAC is %d", e.ID, top)
			}
			if !bytes.Equal(e.Payload, payload("tail", e.ID, 80)) {
				t.Fatalf("entry %d: %q", e.ID, e.Payload)
			}
			next++
		}
		if next == n && !closed {
			p.waitSettled(t)
			_, err := w.Close(ctx)
			must(t, err, "close")
			closed = true
		}
	}
	if next != n {
		t.Fatalf("reader ended after %d entries, want %d", next, n)
	}
}

// TestSpeculativeRead: a slow or dead bookie does not stop reads: a slow
// one is overtaken by a speculative read to the next bookie, an error moves
// on at once.
func TestSpeculativeRead(t *testing.T) {
	tests := []struct {
		name string
		slow bool // hold reads at one bookie (else kill it)
	}{
		{"slow-bookie", true},
		{"dead-bookie", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, 3)
			wcl := newClient(t, c)
			rcl := newClient(t, c, func(cfg *Config) {
				cfg.ReadTimeout = time.Minute // only speculation can get past the slow bookie
				cfg.AdaptiveSpeculativeReads = false
			})
			ctx := deadline(t, 60*time.Second)
			w, err := wcl.Create(ctx, DefaultCreateOptions())
			must(t, err, "create")
			for e := range int64(12) {
				_, err := w.Add(ctx, payload("spec", e, 64))
				must(t, err, "add")
			}
			_, err = w.Close(ctx)
			must(t, err, "close")
			slow := c.Index(w.Metadata().Fragments[0].Bookies[0])
			var held atomic.Int32
			if tt.slow {
				c.Proxy(slow).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
					if r.GetRead() != nil {
						held.Add(1)
						return cluster.Hold
					}
					return cluster.Pass
				})
			} else {
				must(t, c.Kill(slow), "kill")
			}
			r, err := rcl.OpenReader(ctx, w.ID())
			must(t, err, "open reader")
			got, err := r.Read(ctx, 0, 11)
			must(t, err, "read")
			for i, e := range got {
				if !bytes.Equal(e.Payload, payload("spec", int64(i), 64)) {
					t.Fatalf("entry %d: %q", i, e.Payload)
				}
			}
			if tt.slow && held.Load() == 0 {
				t.Fatal("no read reached the slow bookie: speculation was not exercised")
			}
			c.Proxy(slow).OnRequest(nil)
			c.Proxy(slow).Release()
		})
	}
}

// TestReadInconsistent: an entry at or below the LAC that every bookie
// denies is an inconsistency (ErrInconsistent, dlog.ErrCorrupt), never the
// end of the data.
func TestReadInconsistent(t *testing.T) {
	c := startCluster(t, 3)
	cl := newClient(t, c)
	ctx := deadline(t, 60*time.Second)
	w, err := cl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	for e := range int64(3) {
		_, err := w.Add(ctx, payload("gone", e, 16))
		must(t, err, "add")
	}
	_, err = w.Close(ctx)
	must(t, err, "close")
	// The data disappears from every bookie behind the metadata's back.
	for i := range c.Len() {
		must(t, cl.BookieClient().Delete(ctx, c.Addr(i), w.ID()), "delete on bookie %d", i)
	}
	r, err := cl.OpenReader(ctx, w.ID())
	must(t, err, "open reader")
	_, err = r.Read(ctx, 1, 1)
	wantErr(t, err, ErrInconsistent, "read a vanished entry")
	wantErr(t, err, dlog.ErrCorrupt, "read a vanished entry")
}

// TestDelete removes the metadata and the data on every bookie.
func TestDelete(t *testing.T) {
	c := startCluster(t, 3)
	cl := newClient(t, c)
	ctx := deadline(t, 60*time.Second)
	w, err := cl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	_, err = w.Add(ctx, []byte("x"))
	must(t, err, "add")
	_, err = w.Close(ctx)
	must(t, err, "close")
	must(t, cl.Delete(ctx, w.ID()), "delete")
	_, _, err = cl.Metadata(ctx, w.ID())
	wantErr(t, err, ErrNoLedger, "metadata after delete")
	wantErr(t, cl.Delete(ctx, w.ID()), ErrNoLedger, "delete twice")
	_, err = cl.OpenReader(ctx, w.ID())
	wantErr(t, err, dlog.ErrNotFound, "open a deleted ledger")
	for i := range c.Len() {
		if _, err := readDirect(t, cl, c.Addr(i), w.ID(), 0); err == nil {
			t.Fatalf("bookie %d still serves the deleted ledger", i)
		}
	}
}
