package ledger

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// writeAndAbandon creates a ledger (E=Qw=3, Qa=2), adds n entries one by
// one and aborts the writer as a crash would. Explicit LAC is off, so the
// bookies' LAC ends at n-2 and recovery has to read the last entry. tune
// adjusts the writer's client.
func writeAndAbandon(t *testing.T, c *cluster.Cluster, n int64, tune ...func(*Config)) (*Writer, map[int64][]byte) {
	t.Helper()
	cl := newClient(t, c, append([]func(*Config){func(cfg *Config) {
		cfg.ExplicitLACDelay = 0
		cfg.AddTimeout = time.Minute // faults staged by proxies must not replace bookies
	}}, tune...)...)
	ctx := deadline(t, 60*time.Second)
	w, err := cl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	acked := make(map[int64][]byte)
	for e := range n {
		data := payload("rec", e, 64)
		id, err := w.Add(ctx, data)
		must(t, err, "add %d", e)
		acked[id] = data
	}
	w.Abort()
	return w, acked
}

// TestRecoveryWithSlowOrSilentBookies: recovery completes by coverage
// without a silent or slow bookie, fails retryably (leaving the ledger
// open for a later recovery, never shortened) when too many are silent,
// and succeeds once they heal.
func TestRecoveryWithSlowOrSilentBookies(t *testing.T) {
	tests := []struct {
		name    string
		faulty  int             // ensemble members affected (from index 0)
		verdict cluster.Verdict // what their proxies do with every request
		wantErr bool
	}{
		{"one-silent", 1, cluster.Drop, false},
		{"one-slow", 1, cluster.Hold, false},
		{"two-silent", 2, cluster.Drop, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, 3)
			w, acked := writeAndAbandon(t, c, 20)
			cl := newClient(t, c, func(cfg *Config) {
				if tt.wantErr {
					// The silent bookies' fences must time out to show
					// that coverage cannot be reached.
					cfg.FenceTimeout = time.Second
				}
			})
			ctx := deadline(t, 60*time.Second)
			ens := w.Metadata().Fragments[0].Bookies
			for _, b := range ens[:tt.faulty] {
				c.Proxy(c.Index(b)).OnRequest(func(*bookiepb.Request) cluster.Verdict { return tt.verdict })
			}
			md, err := cl.Recover(ctx, w.ID())
			if tt.wantErr {
				wantErr(t, err, ErrRecoveryIncomplete, "recover with too few bookies")
				wantErr(t, err, dlog.ErrUnavailable, "recover with too few bookies")
				cur, _, err := cl.Metadata(ctx, w.ID())
				must(t, err, "metadata")
				if cur.State == metadata.LedgerClosed {
					t.Fatalf("a failed recovery closed the ledger at %d", cur.LastEntryID)
				}
			} else {
				must(t, err, "recover")
				if md.LastEntryID != 19 {
					t.Fatalf("recovered to %d, want 19", md.LastEntryID)
				}
			}
			for _, b := range ens[:tt.faulty] {
				p := c.Proxy(c.Index(b))
				p.OnRequest(nil)
				p.Release()
			}
			if tt.wantErr {
				md, err = newClient(t, c).Recover(ctx, w.ID())
				must(t, err, "recover after healing")
				if md.LastEntryID != 19 {
					t.Fatalf("recovered to %d, want 19", md.LastEntryID)
				}
			}
			checkReadable(t, cl, w.ID(), acked)
			checkLength(t, cl, md, w.ID())
		})
	}
}

// TestRecoveryOneBookieLacksTail: one bookie never got the last entries
// (it answers NO_ENTRY while the others have them): recovery keeps them and
// re-replicates the unconfirmed tail to that bookie.
func TestRecoveryOneBookieLacksTail(t *testing.T) {
	c := startCluster(t, 3)
	// Entries from 5 on never reach the last bookie of the ensemble.
	var lacking atomic.Int32
	lacking.Store(-1)
	for i := range c.Len() {
		c.Proxy(i).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
			if a := r.GetAdd(); a != nil && !a.Recovery && a.Entry.GetEntryId() >= 5 && int(lacking.Load()) == i {
				return cluster.Drop
			}
			return cluster.Pass
		})
	}
	cl := newClient(t, c)
	ctx := deadline(t, 60*time.Second)
	// Learn the ensemble first: the filter needs to know which bookie lacks.
	probe, err := cl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create probe")
	probe.Abort()
	w, acked := writeAndAbandonWith(t, c, cl, 10, func(ens []string) { lacking.Store(int32(c.Index(ens[2]))) })
	z := c.Index(w.Metadata().Fragments[0].Bookies[2])
	for e := int64(5); e < 10; e++ {
		if _, err := readDirect(t, cl, c.Addr(z), w.ID(), e); err == nil {
			t.Fatalf("the fault was not staged: bookie %d has entry %d", z, e)
		}
	}
	md, err := cl.Recover(ctx, w.ID())
	must(t, err, "recover")
	if md.LastEntryID != 9 {
		t.Fatalf("recovered to %d, want 9", md.LastEntryID)
	}
	checkReadable(t, cl, w.ID(), acked)
	checkLength(t, cl, md, w.ID())
	// Entry 9 was beyond the fenced LAC (8): recovery re-added it to its
	// whole write set.
	if n := copies(t, cl, c, w.ID(), 9, acked[9]); n != 3 {
		t.Fatalf("entry 9 has %d copies after recovery, want 3", n)
	}
}

// writeAndAbandonWith is writeAndAbandon on a given client, calling
// onEnsemble with the ensemble before the first add.
func writeAndAbandonWith(t *testing.T, c *cluster.Cluster, cl *Client, n int64, onEnsemble func([]string)) (*Writer, map[int64][]byte) {
	t.Helper()
	ctx := deadline(t, 60*time.Second)
	w, err := cl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	onEnsemble(w.Metadata().Fragments[0].Bookies)
	acked := make(map[int64][]byte)
	for e := range n {
		data := payload("tail", e, 64)
		id, err := w.Add(ctx, data)
		must(t, err, "add %d", e)
		acked[id] = data
	}
	w.Abort()
	return w, acked
}

// TestRecoveryWipedBookie: a bookie that held the last entries loses its
// disk. It refuses to start as its old identity (cookie); started as a new
// identity at the same address, its "no such entry" answers must not count
// for the old one, so recovery keeps every acknowledged entry even when the
// one other copy answers last. Either the registry shows the new identity
// at that address, or (stale address) the recovering client still dials it
// for the old id and the identity check must catch it.
func TestRecoveryWipedBookie(t *testing.T) {
	tests := []struct {
		name         string
		staleAddress bool
	}{
		{"registry-shows-new-identity", false},
		{"stale-address", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := startCluster(t, 3)
			cl := newClient(t, c, func(cfg *Config) {
				cfg.ExplicitLACDelay = 0
				cfg.AddTimeout = time.Minute
			})
			ctx := deadline(t, 60*time.Second)
			w, err := cl.Create(ctx, DefaultCreateOptions())
			must(t, err, "create")
			ens := w.Metadata().Fragments[0].Bookies
			x, y, z := c.Index(ens[0]), c.Index(ens[1]), c.Index(ens[2])
			// Entry 9 is acknowledged by X and Y only.
			c.Proxy(z).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
				if a := r.GetAdd(); a != nil && !a.Recovery && a.Entry.GetEntryId() == 9 {
					return cluster.Drop
				}
				return cluster.Pass
			})
			acked := make(map[int64][]byte)
			for e := range int64(10) {
				data := payload("wiped", e, 64)
				id, err := w.Add(ctx, data)
				must(t, err, "add %d", e)
				acked[id] = data
			}
			w.Abort()

			must(t, c.Kill(x), "kill")
			must(t, c.Wipe(x), "wipe")
			if err := c.Restart(ctx, x); !errors.Is(err, bookie.ErrIdentity) {
				t.Fatalf("restart on a wiped disk: got %v, want bookie.ErrIdentity", err)
			}
			must(t, c.Replace(ctx, x), "start a new identity in slot %d", x)

			// Hold Y's recovery read of entry 9 until Z's denial (and, on
			// the stale address, the new identity's answer) arrived: had
			// the new identity's NO_ENTRY counted, recovery would have
			// decided "absent" from X and Z and cut the ledger at 8.
			var zDenied, xAnswered atomic.Int32
			c.Proxy(y).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
				if rd := r.GetRead(); rd != nil && rd.EntryId == 9 {
					return cluster.Hold
				}
				return cluster.Pass
			})
			c.Proxy(z).OnResponse(func(r *bookiepb.Response) cluster.Verdict {
				if r.Status == bookiepb.Status_STATUS_NO_ENTRY {
					zDenied.Add(1)
				}
				return cluster.Pass
			})
			c.Proxy(x).OnResponse(func(r *bookiepb.Response) cluster.Verdict {
				xAnswered.Add(1)
				return cluster.Pass
			})
			xAddr := c.Addr(x)
			rec := newClient(t, c, func(cfg *Config) {
				if tt.staleAddress {
					cfg.ResolveAddress = func(id, registered string) string {
						if id == ens[0] {
							return xAddr // as if the registry were stale
						}
						return registered
					}
				}
			})
			if !tt.staleAddress {
				if _, ok := rec.Address(ens[0]); ok {
					t.Fatalf("the old identity %s still resolves although another bookie registered its address", ens[0])
				}
			}
			var (
				wg     sync.WaitGroup
				md     metadata.LedgerMetadata
				recErr error
			)
			wg.Go(func() { md, recErr = rec.Recover(ctx, w.ID()) })
			waitUntil(t, 30*time.Second, "Z's denial and Y's held read", func() bool {
				return zDenied.Load() > 0 && c.Proxy(y).Held() > 0 && (!tt.staleAddress || xAnswered.Load() > 0)
			})
			c.Proxy(y).OnRequest(nil)
			c.Proxy(y).Release()
			wg.Wait()
			must(t, recErr, "recover")
			if md.LastEntryID != 9 {
				t.Fatalf("recovered to %d, want 9: an acknowledged entry was cut off", md.LastEntryID)
			}
			checkReadable(t, rec, w.ID(), acked)
			checkLength(t, rec, md, w.ID())
		})
	}
}

// TestConcurrentRecoveries: two clients recover one ledger at once (with
// its writer still adding, or gone); both return the same CLOSED metadata.
func TestConcurrentRecoveries(t *testing.T) {
	tests := []struct {
		name         string
		writerActive bool
	}{
		{"writer-gone", false},
		{"writer-adding", true},
	}
	c := startCluster(t, 3)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for round := range 3 {
				cl1, cl2 := newClient(t, c), newClient(t, c)
				clW := newClient(t, c, func(cfg *Config) { cfg.MaxPendingAdds = 32 })
				ctx := deadline(t, 60*time.Second)
				w, err := clW.Create(ctx, DefaultCreateOptions())
				must(t, err, "create")
				p := startPump(t, w, "conc", 64, 100000)
				p.waitAcked(t, 50+round*20)
				if !tt.writerActive {
					p.stop()
					w.Abort()
				}
				var (
					wg         sync.WaitGroup
					md1, md2   metadata.LedgerMetadata
					err1, err2 error
				)
				wg.Go(func() { md1, err1 = cl1.Recover(ctx, w.ID()) })
				wg.Go(func() { md2, err2 = cl2.Recover(ctx, w.ID()) })
				wg.Wait()
				must(t, err1, "recover 1")
				must(t, err2, "recover 2")
				if md1.State != metadata.LedgerClosed || !sameLedger(md1, md2) {
					t.Fatalf("round %d: recoveries diverged: %+v vs %+v", round, md1, md2)
				}
				p.waitSettled(t)
				w.Abort()
				acked, _, _ := p.log.snapshot()
				if top := maxKey(acked); top > md1.LastEntryID {
					t.Fatalf("round %d: entry %d acknowledged beyond the closed end %d", round, top, md1.LastEntryID)
				}
				checkReadable(t, cl1, w.ID(), acked)
				checkLength(t, cl1, md1, w.ID())
				cur, _, err := cl2.Metadata(ctx, w.ID())
				must(t, err, "metadata")
				if !sameLedger(cur, md1) {
					t.Fatalf("round %d: stored metadata %+v differs from the recovered %+v", round, cur, md1)
				}
			}
		})
	}
}

// TestRecoveryEnsembleChange: with Qw = Qa, one dead bookie leaves the
// re-replication of the unconfirmed tail short of Qa; recovery replaces it
// (a new fragment in metadata, written before the entry is sent there) and
// closes the ledger with every entry readable.
func TestRecoveryEnsembleChange(t *testing.T) {
	c := startCluster(t, 3)
	wcl := newClient(t, c, func(cfg *Config) { cfg.ExplicitLACDelay = 0 })
	ctx := deadline(t, 60*time.Second)
	w, err := wcl.Create(ctx, CreateOptions{EnsembleSize: 2, WriteQuorum: 2, AckQuorum: 2})
	must(t, err, "create")
	acked := make(map[int64][]byte)
	for e := range int64(10) {
		data := payload("rec-change", e, 64)
		id, err := w.Add(ctx, data)
		must(t, err, "add %d", e)
		acked[id] = data
	}
	w.Abort()
	ens := w.Metadata().Fragments[0].Bookies
	must(t, c.Kill(c.Index(ens[1])), "kill %s", ens[1])

	cl := newClient(t, c)
	md, err := cl.Recover(ctx, w.ID())
	must(t, err, "recover")
	if md.LastEntryID != 9 || md.State != metadata.LedgerClosed {
		t.Fatalf("recovered %v at %d, want CLOSED at 9", md.State, md.LastEntryID)
	}
	if len(md.Fragments) != 2 || md.Fragments[1].FirstEntryID != 9 || md.Fragments[1].Bookies[0] != ens[0] || md.Fragments[1].Bookies[1] == ens[1] {
		t.Fatalf("fragments after recovery %+v, want a second one from entry 9 replacing %s", md.Fragments, ens[1])
	}
	checkReadable(t, cl, w.ID(), acked)
	checkLength(t, cl, md, w.ID())
}

// TestRecoveryErrorsAreNotAbsence: an I/O or checksum error answer to a
// recovery read is "unknown", never "no such entry". Entry 9 is
// acknowledged by X and Y only; X answers its recovery read with the error,
// Z denies it, and Y's answer is held until both arrived. Had the error
// counted as a denial, Qw−Qa+1 = 2 negatives would have made entry 9 absent
// and recovery would have cut an acknowledged entry.
func TestRecoveryErrorsAreNotAbsence(t *testing.T) {
	for _, status := range []bookiepb.Status{bookiepb.Status_STATUS_CORRUPT, bookiepb.Status_STATUS_IO_ERROR} {
		t.Run(status.String(), func(t *testing.T) {
			c := startCluster(t, 3)
			cl := newClient(t, c, func(cfg *Config) {
				cfg.ExplicitLACDelay = 0
				cfg.AddTimeout = time.Minute
			})
			ctx := deadline(t, 60*time.Second)
			w, err := cl.Create(ctx, DefaultCreateOptions())
			must(t, err, "create")
			ens := w.Metadata().Fragments[0].Bookies
			x, y, z := c.Index(ens[0]), c.Index(ens[1]), c.Index(ens[2])
			c.Proxy(z).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
				if a := r.GetAdd(); a != nil && !a.Recovery && a.Entry.GetEntryId() == 9 {
					return cluster.Drop
				}
				return cluster.Pass
			})
			acked := make(map[int64][]byte)
			for e := range int64(10) {
				data := payload("errs", e, 64)
				id, err := w.Add(ctx, data)
				must(t, err, "add %d", e)
				acked[id] = data
			}
			w.Abort()

			var (
				txns      sync.Map // X's requests reading entry 9
				xFailed   atomic.Int32
				zDenied   atomic.Int32
				yHeldRead atomic.Int32
			)
			c.Proxy(x).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
				if rd := r.GetRead(); rd != nil && rd.EntryId == 9 {
					txns.Store(r.Txn, true)
				}
				return cluster.Pass
			})
			c.Proxy(x).OnResponse(func(r *bookiepb.Response) cluster.Verdict {
				if _, ok := txns.Load(r.Txn); ok {
					r.Status, r.Message, r.Body = status, "injected by the test", nil
					xFailed.Add(1)
				}
				return cluster.Pass
			})
			c.Proxy(y).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
				if rd := r.GetRead(); rd != nil && rd.EntryId == 9 {
					yHeldRead.Add(1)
					return cluster.Hold
				}
				return cluster.Pass
			})
			c.Proxy(z).OnResponse(func(r *bookiepb.Response) cluster.Verdict {
				if r.Status == bookiepb.Status_STATUS_NO_ENTRY {
					zDenied.Add(1)
				}
				return cluster.Pass
			})
			rec := newClient(t, c)
			var (
				wg     sync.WaitGroup
				md     metadata.LedgerMetadata
				recErr error
			)
			wg.Go(func() { md, recErr = rec.Recover(ctx, w.ID()) })
			waitUntil(t, 30*time.Second, "X's error, Z's denial and Y's held read", func() bool {
				return xFailed.Load() > 0 && zDenied.Load() > 0 && yHeldRead.Load() > 0
			})
			c.Proxy(y).OnRequest(nil)
			c.Proxy(y).Release()
			wg.Wait()
			must(t, recErr, "recover")
			if md.LastEntryID != 9 {
				t.Fatalf("recovered to %d, want 9: an error answer counted as absence", md.LastEntryID)
			}
			c.Proxy(x).OnResponse(nil)
			checkReadable(t, rec, w.ID(), acked)
			checkLength(t, rec, md, w.ID())
		})
	}
}
