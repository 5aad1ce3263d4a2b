package ledger

import (
	"bytes"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
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
			checkLength(t, cl, md, w.ID())
			must(t, c.Restart(ctx, c.Index(victim)), "restart %s", victim)
			checkCopies(t, cl, c, w.ID(), acked, tt.opts.AckQuorum)
		})
	}
}

// TestNoReplacement kills bookies of a write set when there are not enough
// spares: the writer keeps going while Qa can be met (degraded, or after
// moving to a spare), fails every later add with ErrNotEnoughBookies when
// it cannot, and never acknowledges an entry with fewer than Qa copies.
func TestNoReplacement(t *testing.T) {
	e3 := CreateOptions{EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2}
	e5 := CreateOptions{EnsembleSize: 5, WriteQuorum: 3, AckQuorum: 2}
	tests := []struct {
		name     string
		bookies  int
		opts     CreateOptions
		kill     int  // ensemble members killed (adjacent: one write set), one after another
		wantFail bool // the writer must end with ErrNotEnoughBookies
	}{
		{"E3-one-no-spare-degraded", 3, e3, 1, false},
		{"E3-two-no-spare", 3, e3, 2, true},
		{"E3-two-with-spares", 5, e3, 2, false},
		{"E5-two-of-a-write-set-no-spare", 5, e5, 2, true},
		{"E5-two-of-a-write-set-with-spares", 7, e5, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, tt.bookies)
			cl := newClient(t, c, func(cfg *Config) { cfg.MaxPendingAdds = 32 })
			ctx := deadline(t, 90*time.Second)
			opts := tt.opts
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
			checkCopies(t, cl, c, w.ID(), acked, opts.AckQuorum)
			if tt.wantFail {
				// The ledger is left OPEN; recovery must keep every
				// acknowledged entry.
				rmd, err := cl.Recover(ctx, w.ID())
				must(t, err, "recover")
				if top := maxKey(acked); rmd.LastEntryID < top {
					t.Fatalf("recovered to %d, below acknowledged entry %d", rmd.LastEntryID, top)
				}
				checkReadable(t, cl, w.ID(), acked)
				checkLength(t, cl, rmd, w.ID())
			} else {
				checkReadable(t, cl, w.ID(), acked)
			}
		})
	}
}

// checkCopies fails the test if an acknowledged entry has fewer than qa
// byte-identical copies on the running bookies.
func checkCopies(t *testing.T, cl *Client, c *cluster.Cluster, id int64, acked map[int64][]byte, qa int) {
	t.Helper()
	n := countCopies(t, cl, c, id, acked)
	for e := range acked {
		if n[e] < qa {
			t.Fatalf("entry %d has %d copies, acknowledged with Qa=%d", e, n[e], qa)
		}
	}
}

func maxKey(m map[int64][]byte) int64 {
	top := int64(-1)
	for k := range m {
		top = max(top, k)
	}
	return top
}

// TestWriterRejectsNewIdentityAtAddress: an ensemble member dies while its
// writer is idle and an operator starts a new bookie identity at its
// address. The writer's next adds name the member they are meant for, so
// the new identity refuses them (WRONG_BOOKIE) instead of acknowledging
// them as the old member: the writer replaces the member by an ensemble
// change, and every acknowledged entry has Qa copies on real members of
// its fragment. Another member drops the new adds, so an ack from the new
// identity would have been needed for Qa: without the check, those entries
// would be acknowledged with a single real copy.
func TestWriterRejectsNewIdentityAtAddress(t *testing.T) {
	tests := []struct {
		name         string
		staleAddress bool
	}{
		{"registry-shows-new-identity", false},
		{"stale-address", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, 4)
			ctx := deadline(t, 60*time.Second)
			opts := DefaultCreateOptions() // E = Qw = 3: the write set is the fragment
			var xAddr, oldID string
			cl := newClient(t, c, func(cfg *Config) {
				cfg.ExplicitLACDelay = 0
				cfg.AddTimeout = time.Minute // Z's dropped adds never fail it
				if tt.staleAddress {
					cfg.ResolveAddress = func(id, registered string) string {
						if id == oldID {
							return xAddr // as if the registry were stale
						}
						return registered
					}
				}
			})
			w, err := cl.Create(ctx, opts)
			must(t, err, "create")
			defer w.Abort()
			ens := w.Metadata().Fragments[0].Bookies
			x, z := c.Index(ens[0]), c.Index(ens[2])
			oldID, xAddr = ens[0], c.Addr(x)
			acked := make(map[int64][]byte)
			add := func(e int64) {
				data := payload("impostor", e, 64)
				id, err := w.Add(ctx, data)
				must(t, err, "add %d", e)
				if id != e {
					t.Fatalf("add %d got id %d", e, id)
				}
				acked[id] = data
			}
			for e := range int64(5) {
				add(e)
			}

			// X dies while the writer is idle; a new identity takes its
			// address. Z drops every later add.
			must(t, c.Kill(x), "kill")
			must(t, c.Replace(ctx, x), "start a new identity in slot %d", x)
			if c.ID(x) == oldID || c.Addr(x) != xAddr {
				t.Fatalf("slot %d: id %s at %s, want a new id at %s", x, c.ID(x), c.Addr(x), xAddr)
			}
			var wrong atomic.Int32
			c.Proxy(x).OnResponse(func(r *bookiepb.Response) cluster.Verdict {
				if r.Status == bookiepb.Status_STATUS_WRONG_BOOKIE {
					wrong.Add(1)
				}
				return cluster.Pass
			})
			c.Proxy(z).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
				if a := r.GetAdd(); a != nil && a.Entry.GetEntryId() >= 5 {
					return cluster.Drop
				}
				return cluster.Pass
			})
			for e := int64(5); e < 10; e++ {
				add(e)
			}
			if tt.staleAddress && wrong.Load() == 0 {
				t.Fatal("the new identity never refused an add meant for the old one")
			}

			md := w.Metadata()
			if len(md.Fragments) < 2 {
				t.Fatalf("no ensemble change: fragments %+v", md.Fragments)
			}
			for e := int64(5); e < 10; e++ {
				if f := md.Fragments[fragmentFor(md, e)]; slices.Contains(f.Bookies, oldID) {
					t.Fatalf("entry %d acknowledged in fragment %+v, which still names the replaced %s", e, f, oldID)
				}
			}
			// Every acknowledged entry is on Qa real members of its
			// fragment (ids that still exist, read at their own address).
			for e, want := range acked {
				real := 0
				for _, b := range md.Fragments[fragmentFor(md, e)].Bookies {
					i := c.Index(b)
					if i < 0 || !c.Running(i) {
						continue
					}
					if got, err := readDirect(t, cl, c.Addr(i), w.ID(), e); err == nil && bytes.Equal(got, want) {
						real++
					}
				}
				if real < opts.AckQuorum {
					t.Fatalf("entry %d: %d real copies, want at least Qa = %d (fragments %+v)", e, real, opts.AckQuorum, md.Fragments)
				}
			}
		})
	}
}
