package bookie

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

type ackRecorder struct {
	mu     sync.Mutex
	adds   []ackedEntry
	fences []int64
}

func (r *ackRecorder) add(l, e int64) {
	r.mu.Lock()
	r.adds = append(r.adds, ackedEntry{l: l, e: e})
	r.mu.Unlock()
}

func (r *ackRecorder) fence(l int64) {
	r.mu.Lock()
	r.fences = append(r.fences, l)
	r.mu.Unlock()
}

func (r *ackRecorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.adds)
}

func (r *ackRecorder) snapshot() ([]ackedEntry, []int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ackedEntry(nil), r.adds...), append([]int64(nil), r.fences...)
}

// TestCrashLosesNothingAcknowledged runs the whole bookie on a crashable
// in-memory file system and "crashes" it at random moments under concurrent
// adds and fences: a clone keeps what was synced (plus a random share of
// what was not). A bookie reopened on the clone must return every entry
// acknowledged before the clone was taken, byte-identical, and refuse
// normal adds on every ledger whose fence was acknowledged before it.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	iterations := 12
	if testing.Short() {
		iterations = 3
	}
	seed := seedOf(t)
	rng := rand.New(rand.NewPCG(seed, 11))
	fs := vfs.NewCrashableMem()
	var acked []ackedEntry
	var fenced []int64
	for it := range iterations {
		cfg := crashConfig("/bookie", testLogger(t))
		cfg.FS = fs
		b, err := Open(t.Context(), cfg)
		noErr(t, err, "iteration %d: open", it)
		c := newClient(t)
		addr := b.ListenAddr()
		checkSurvivors(t, c, addr, seed, acked, fenced)

		var rec ackRecorder
		stop := make(chan struct{})
		var wg sync.WaitGroup
		adders := 2 + rng.IntN(5) // the first one's ledger gets fenced
		for a := range int64(adders) {
			l := int64(it*100) + a
			wg.Go(func() { crashAdder(c, addr, seed, l, stop, &rec) })
		}
		target := 1 + rng.IntN(300)
		fenceAt := rng.IntN(target + 1)
		fenceDone := make(chan struct{})
		go func() {
			defer close(fenceDone)
			for rec.len() < fenceAt {
				select {
				case <-stop:
					return
				case <-time.After(time.Millisecond):
				}
			}
			l := int64(it * 100) // the first adder's ledger
			_, err := c.Read(ctxTimeout(t, 30*time.Second), addr, &bookiepb.ReadRequest{LedgerId: l, EntryId: -1, Fence: true, MasterKey: testKey})
			if err == nil {
				rec.fence(l)
			}
		}()
		waitUntil(t, 60*time.Second, "acknowledged adds before the crash", func() bool { return rec.len() >= target })
		adds, fences := rec.snapshot()
		pct := []int{0, 0, 30, 100}[rng.IntN(4)]
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, uint64(it)))})
		close(stop)
		wg.Wait()
		<-fenceDone
		_ = b.Close()
		_ = c.Close()
		acked = append(acked, adds...)
		fenced = append(fenced, fences...)
		t.Logf("iteration %d: crash after %d acks (%d unsynced%% kept), %d fences", it, len(adds), pct, len(fences))
		fs = clone
	}
	cfg := crashConfig("/bookie", testLogger(t))
	cfg.FS = fs
	b := start(t, cfg)
	checkSurvivors(t, newClient(t), b.ListenAddr(), seed, acked, fenced)
}

// crashAdder adds entries 0, 1, ... of ledger l, 8 in flight, until stop
// or an error, recording each acknowledgement.
func crashAdder(c *bookieclient.Client, addr string, seed uint64, l int64, stop <-chan struct{}, rec *ackRecorder) {
	const window = 8
	sem := make(chan struct{}, window)
	var failed sync.Once
	quit := make(chan struct{})
	ctx, cancel := contextWithTimeout(30 * time.Second)
	defer cancel()
	for e := int64(0); ; e++ {
		select {
		case <-stop:
		case <-quit:
		case sem <- struct{}{}:
			p := crashPayload(seed, l, e)
			req := &bookiepb.AddRequest{Entry: bookiepb.NewEntry(l, e, max(e-window-1, -1), p), MasterKey: testKey}
			c.AddAsync(ctx, addr, req, func(err error) {
				if err != nil {
					failed.Do(func() { close(quit) })
				} else {
					rec.add(l, e)
				}
				<-sem
			})
			continue
		}
		for range window {
			sem <- struct{}{}
		}
		return
	}
}

func checkSurvivors(t *testing.T, c *bookieclient.Client, addr string, seed uint64, acked []ackedEntry, fenced []int64) {
	t.Helper()
	verifyEntries(t, c, addr, len(acked), func(i int) (int64, int64) { return acked[i].l, acked[i].e },
		func(i int, payload []byte) error {
			if !bytes.Equal(payload, crashPayload(seed, acked[i].l, acked[i].e)) {
				return fmt.Errorf("wrong payload")
			}
			return nil
		})
	for _, l := range fenced {
		err := c.Add(ctxTimeout(t, 30*time.Second), addr, addReq(l, 1<<40, -1))
		wantErr(t, err, bookieclient.ErrFenced, "normal add on ledger %d fenced before the crash", l)
	}
}
