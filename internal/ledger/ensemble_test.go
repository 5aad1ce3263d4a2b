package ledger

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/metadata"
)

// TestEnsembleChangeOnKilledBookie kills an ensemble member while a writer
// streams entries: the writer replaces it (a new fragment in metadata) and
// goes on, and every acknowledged entry reads back byte-identical and has
// at least Qa copies.
func TestEnsembleChangeOnKilledBookie(t *testing.T) {
	tests := []struct {
		name    string
		bookies int
		opts    CreateOptions
	}{
		{"E3-Qw3-Qa2", 4, CreateOptions{EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2}},
		{"E5-Qw3-Qa2", 6, CreateOptions{EnsembleSize: 5, WriteQuorum: 3, AckQuorum: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, tt.bookies)
			cl := newClient(t, c, func(cfg *Config) { cfg.MaxPendingAdds = 32 })
			ctx := deadline(t, 90*time.Second)
			w, err := cl.Create(ctx, tt.opts)
			must(t, err, "create")
			victim := w.Metadata().Fragments[0].Bookies[1]
			p := startPump(t, w, "kill", 200, 100000)
			p.waitAcked(t, 200)
			must(t, c.Kill(c.Index(victim)), "kill %s", victim)
			before := p.acked()
			p.waitAcked(t, before+300)
			p.waitSettled(t)
			md, err := w.Close(ctx)
			must(t, err, "close")

			acked, errs, _ := p.log.snapshot()
			if len(errs) > 0 {
				t.Fatalf("%d adds failed, first: %v", len(errs), errs[0])
			}
			if len(md.Fragments) < 2 {
				t.Fatalf("metadata has %d fragments after a kill, want a new one", len(md.Fragments))
			}
			last := md.Fragments[len(md.Fragments)-1]
			if slices.Contains(last.Bookies, victim) {
				t.Fatalf("last fragment %v still names the killed bookie %s", last.Bookies, victim)
			}
			if md.LastEntryID != int64(len(acked))-1 {
				t.Fatalf("closed at %d with %d entries acknowledged", md.LastEntryID, len(acked))
			}
			checkReadable(t, cl, w.ID(), acked)
			must(t, c.Restart(ctx, c.Index(victim)), "restart %s", victim)
			for e, data := range acked {
				if n := copies(t, cl, c, w.ID(), e, data); n < tt.opts.AckQuorum {
					t.Fatalf("entry %d has %d copies, acknowledged with Qa=%d", e, n, tt.opts.AckQuorum)
				}
			}
		})
	}
}

// TestNoReplacement kills bookies of a write set when there are not enough
// spares: the writer keeps going while Qa can be met (degraded, or after
// moving to a spare), fails every later add with ErrNotEnoughBookies when
// it cannot, and never acknowledges an entry with fewer than Qa copies.
func TestNoReplacement(t *testing.T) {
	tests := []struct {
		name     string
		bookies  int
		kill     int  // ensemble members killed, one after another
		wantFail bool // the writer must end with ErrNotEnoughBookies
	}{
		{"one-of-three-no-spare-degraded", 3, 1, false},
		{"two-of-three-no-spare", 3, 2, true},
		{"two-of-three-with-spares", 5, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, tt.bookies)
			cl := newClient(t, c, func(cfg *Config) { cfg.MaxPendingAdds = 32 })
			ctx := deadline(t, 90*time.Second)
			opts := DefaultCreateOptions()
			w, err := cl.Create(ctx, opts)
			must(t, err, "create")
			ensemble := w.Metadata().Fragments[0].Bookies
			p := startPump(t, w, "norepl", 100, 100000)
			p.waitAcked(t, 100)
			for _, victim := range ensemble[:tt.kill] {
				must(t, c.Kill(c.Index(victim)), "kill %s", victim)
				n := p.acked()
				if !tt.wantFail {
					p.waitAcked(t, n+100)
				}
			}
			if tt.wantFail {
				waitUntil(t, 60*time.Second, "writer failure", func() bool { return w.Err() != nil })
				wantErr(t, w.Err(), ErrNotEnoughBookies, "writer error")
				err := w.AddAsync(ctx, []byte("late"), func(int64, error) {})
				wantErr(t, err, ErrNotEnoughBookies, "add after the failure")
			}
			p.waitSettled(t)
			acked, errs, _ := p.log.snapshot()
			for _, err := range errs {
				if !errors.Is(err, ErrNotEnoughBookies) {
					t.Fatalf("add failed with %v, want ErrNotEnoughBookies", err)
				}
			}
			if !tt.wantFail && len(errs) > 0 {
				t.Fatalf("%d adds failed, first %v", len(errs), errs[0])
			}
			md, err := w.Close(ctx)
			if tt.wantFail {
				wantErr(t, err, ErrNotEnoughBookies, "close after the failure")
			} else {
				must(t, err, "close")
				if md.State != metadata.LedgerClosed || md.LastEntryID != int64(len(acked))-1 {
					t.Fatalf("closed %v at %d with %d acknowledged", md.State, md.LastEntryID, len(acked))
				}
			}
			// Count copies with every bookie up (a stopped bookie keeps its
			// fsynced entries).
			for i := range c.Len() {
				if !c.Running(i) {
					must(t, c.Restart(ctx, i), "restart %d", i)
				}
			}
			for e, data := range acked {
				if n := copies(t, cl, c, w.ID(), e, data); n < opts.AckQuorum {
					t.Fatalf("entry %d has %d copies, acknowledged with Qa=%d", e, n, opts.AckQuorum)
				}
			}
			if tt.wantFail {
				// The ledger is left OPEN; recovery must keep every
				// acknowledged entry.
				rmd, err := cl.Recover(ctx, w.ID())
				must(t, err, "recover")
				if top := maxKey(acked); rmd.LastEntryID < top {
					t.Fatalf("recovered to %d, below acknowledged entry %d", rmd.LastEntryID, top)
				}
				checkReadable(t, cl, w.ID(), acked)
			} else {
				checkReadable(t, cl, w.ID(), acked)
			}
		})
	}
}

func maxKey(m map[int64][]byte) int64 {
	top := int64(-1)
	for k := range m {
		top = max(top, k)
	}
	return top
}
