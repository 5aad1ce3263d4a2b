package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/metadata"
)

// TestRandomized runs seeded mixes of adds, bookie kills and restarts (same
// directory), recoveries by a second client and tailing reads, on real
// bookies. After every ledger it checks: every acknowledged entry reads back
// at its id with its bytes; the closed ledger's last entry is at least the
// highest acknowledged id; every entry up to it has the one payload its
// writer sent for that id; a tailing reader never saw an entry its writer
// had not acknowledged. The seed picks the operations (timing still varies
// with the machine); DLOG_LEDGER_SEED=n replays seed n alone.
func TestRandomized(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if !testing.Short() {
		seeds = nil
		for s := uint64(1); s <= 32; s++ {
			seeds = append(seeds, s)
		}
	}
	if v := os.Getenv("DLOG_LEDGER_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("DLOG_LEDGER_SEED=%q: %v", v, err)
		}
		seeds = []uint64{s}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			t.Logf("seed %d (replay: DLOG_LEDGER_SEED=%d go test -run TestRandomized ./internal/ledger)", seed, seed)
			runRandomized(t, seed)
		})
	}
}

func runRandomized(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15))
	c := startCluster(t, 4+rng.IntN(2))
	shapes := []CreateOptions{
		{EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2},
		{EnsembleSize: 3, WriteQuorum: 2, AckQuorum: 2},
		{EnsembleSize: 4, WriteQuorum: 3, AckQuorum: 2},
	}
	opts := shapes[rng.IntN(len(shapes))]
	wcl := newClient(t, c, func(cfg *Config) {
		cfg.MaxPendingAdds = 16
		cfg.Seed = seed
	})
	rcl := newClient(t, c, func(cfg *Config) { cfg.Seed = seed + 1 })
	ctx := deadline(t, 4*time.Minute)
	t.Logf("%d bookies, %+v", c.Len(), opts)

	restartAll := func() {
		for i := range c.Len() {
			if !c.Running(i) {
				must(t, c.Restart(ctx, i), "restart bookie %d", i)
			}
		}
	}
	for l := range 2 {
		restartAll()
		w, err := wcl.Create(ctx, opts)
		must(t, err, "create ledger %d", l)
		tag := fmt.Sprintf("s%d-l%d", seed, l)
		p := startPump(t, w, tag, 16+rng.IntN(200), 1<<20)
		recovered := false
		for step := range 8 {
			switch op := rng.IntN(10); {
			case op < 4: // let adds flow
				target := p.acked() + 10 + rng.IntN(50)
				waitUntil(t, 90*time.Second, "adds or a writer failure", func() bool {
					return p.acked() >= target || w.Err() != nil
				})
			case op < 6: // kill a running bookie, keeping one up
				var up []int
				for i := range c.Len() {
					if c.Running(i) {
						up = append(up, i)
					}
				}
				if len(up) > 1 {
					i := up[rng.IntN(len(up))]
					t.Logf("ledger %d step %d: kill bookie %d", l, step, i)
					must(t, c.Kill(i), "kill %d", i)
				}
			case op < 8: // restart a stopped bookie
				for _, i := range rng.Perm(c.Len()) {
					if !c.Running(i) {
						t.Logf("ledger %d step %d: restart bookie %d", l, step, i)
						must(t, c.Restart(ctx, i), "restart %d", i)
						break
					}
				}
			case op < 9: // a tailing reader never sees past the writer's LAC
				checkTail(t, rcl, w, tag)
			default: // another client recovers the ledger under the writer
				t.Logf("ledger %d step %d: recover", l, step)
				if _, err := rcl.Recover(ctx, w.ID()); err == nil {
					recovered = true
				} else if !errors.Is(err, ErrRecoveryIncomplete) {
					t.Fatalf("recover: %v", err)
				}
			}
			if recovered {
				break
			}
		}
		restartAll()
		p.waitSettled(t)
		var md metadata.LedgerMetadata
		if !recovered && w.Err() == nil && rng.IntN(2) == 0 {
			md, err = w.Close(ctx)
			must(t, err, "close ledger %d", l)
		} else {
			w.Abort()
			waitUntil(t, 60*time.Second, "a successful recovery", func() bool {
				md, err = rcl.Recover(ctx, w.ID())
				if err != nil && !errors.Is(err, ErrRecoveryIncomplete) {
					t.Fatalf("recover: %v", err)
				}
				return err == nil
			})
		}
		acked, errs, _ := p.log.snapshot()
		t.Logf("ledger %d: %d acknowledged, %d failed, closed at %d", l, len(acked), len(errs), md.LastEntryID)
		checkClosedLedger(t, rcl, w.ID(), tag, p.size, acked, md)
	}
}

// checkTail reads everything a fresh reader's LAC allows and checks that
// the writer had acknowledged it.
func checkTail(t *testing.T, cl *Client, w *Writer, tag string) {
	t.Helper()
	ctx := deadline(t, 60*time.Second)
	r, err := cl.OpenReader(ctx, w.ID())
	must(t, err, "open tailing reader")
	lac := r.LAC()
	if lac < 0 {
		return
	}
	if top := w.LAC(); lac > top && !r.Sealed() {
		t.Fatalf("tailing reader's LAC %d is beyond the writer's %d", lac, top)
	}
	if _, err := r.Read(ctx, max(0, lac-20), lac); err != nil && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("tailing read up to %d: %v", lac, err)
	}
}

// checkClosedLedger verifies a closed ledger against what its writer was
// told.
func checkClosedLedger(t *testing.T, cl *Client, id int64, tag string, size int, acked map[int64][]byte, md metadata.LedgerMetadata) {
	t.Helper()
	if md.State != metadata.LedgerClosed {
		t.Fatalf("ledger %d: state %v, want CLOSED", id, md.State)
	}
	if top := maxKey(acked); md.LastEntryID < top {
		t.Fatalf("ledger %d closed at %d, below acknowledged entry %d", id, md.LastEntryID, top)
	}
	ctx := deadline(t, 90*time.Second)
	r, err := cl.OpenReader(ctx, id)
	must(t, err, "open reader")
	if !r.Sealed() || r.LAC() != md.LastEntryID {
		t.Fatalf("ledger %d: reader LAC %d sealed %v, closed at %d", id, r.LAC(), r.Sealed(), md.LastEntryID)
	}
	if md.LastEntryID < 0 {
		if md.Length != 0 {
			t.Fatalf("ledger %d closed empty with length %d", id, md.Length)
		}
		return
	}
	got, err := r.Read(ctx, 0, md.LastEntryID)
	must(t, err, "read ledger %d up to %d", id, md.LastEntryID)
	var length int64
	for _, e := range got {
		length += int64(len(e.Payload))
		if !bytes.Equal(e.Payload, payload(tag, e.ID, size)) {
			t.Fatalf("ledger %d entry %d: %q is not what its writer sent", id, e.ID, e.Payload)
		}
		if want, ok := acked[e.ID]; ok && !bytes.Equal(want, e.Payload) {
			t.Fatalf("ledger %d entry %d: read %q, acknowledged %q", id, e.ID, e.Payload, want)
		}
	}
	if md.Length != length {
		t.Fatalf("ledger %d closed at %d with length %d, its entries hold %d bytes", id, md.LastEntryID, md.Length, length)
	}
	if _, err := r.Read(ctx, md.LastEntryID+1, md.LastEntryID+1); !errors.Is(err, ErrBeyondLAC) {
		t.Fatalf("ledger %d: reading past the closed end: %v, want ErrBeyondLAC", id, err)
	}
}

var _ = cluster.Pass
