package ledger

import (
	"errors"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/cluster"
)

// TestEndToEndEtcd runs the ledger protocol against a real embedded etcd:
// create, pipelined adds, an ensemble change (CAS in etcd) after a bookie is
// killed, a tailing reader that learns the close from an etcd watch, a
// recovery by another client that fences the writer, and delete.
func TestEndToEndEtcd(t *testing.T) {
	c := startCluster(t, 4, func(cfg *cluster.Config) { cfg.Metadata = "embedded:" })
	wcl := newClient(t, c, func(cfg *Config) { cfg.MaxPendingAdds = 32 })
	rcl := newClient(t, c)
	ctx := deadline(t, 90*time.Second)
	w, err := wcl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	p := startPump(t, w, "etcd", 100, 100000)
	p.waitAcked(t, 100)
	victim := w.Metadata().Fragments[0].Bookies[0]
	must(t, c.Kill(c.Index(victim)), "kill %s", victim)
	p.waitAcked(t, p.acked()+100)
	stored, _, err := rcl.Metadata(ctx, w.ID())
	must(t, err, "metadata")
	if len(stored.Fragments) < 2 {
		t.Fatalf("etcd holds %d fragments after a kill", len(stored.Fragments))
	}

	r, err := rcl.OpenReader(ctx, w.ID())
	must(t, err, "open reader")
	ended := make(chan error, 1)
	go func() {
		prev := r.LAC()
		for {
			lac, err := r.WaitLAC(ctx, prev)
			if err != nil {
				ended <- err
				return
			}
			prev = lac
		}
	}()
	md, err := rcl.Recover(ctx, w.ID())
	must(t, err, "recover")
	waitUntil(t, 60*time.Second, "writer fenced", func() bool { return w.Err() != nil })
	wantErr(t, w.Err(), dlog.ErrFenced, "writer")
	if err := <-ended; !errors.Is(err, ErrEndOfLedger) {
		t.Fatalf("tailing reader ended with %v, want ErrEndOfLedger", err)
	}
	if r.LAC() != md.LastEntryID {
		t.Fatalf("reader ended at %d, ledger closed at %d", r.LAC(), md.LastEntryID)
	}
	p.waitSettled(t)
	acked, _, _ := p.log.snapshot()
	if top := maxKey(acked); top > md.LastEntryID {
		t.Fatalf("entry %d acknowledged beyond the closed end %d", top, md.LastEntryID)
	}
	checkReadable(t, rcl, w.ID(), acked)
	checkLength(t, rcl, md, w.ID())
	must(t, rcl.Delete(ctx, w.ID()), "delete")
	_, _, err = rcl.Metadata(ctx, w.ID())
	wantErr(t, err, ErrNoLedger, "metadata after delete")
}
