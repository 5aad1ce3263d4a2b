package namespace

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
)

// TestReaderStress hunts for readers that skip or double a segment: many
// small segments, writers that hand over in every possible way (clean
// close, lost lock, crash in the middle of a roll, abort with writes in
// flight), and readers started everywhere (start, end, random DLSNs and
// txids) at random times while the log changes under them. Every reader's
// delivered sequence must be exactly the final log's records from its
// start on. The seed is logged; DLOG_SEED is not needed: failures print
// the round and the ending that preceded them.
func TestReaderStress(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 8
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))

	c := startCluster(t, 3, "memory:")
	var crashRoll atomic.Bool
	tune := func(cfg *Config) {
		cfg.SegmentRollBytes = 2 << 10
		cfg.FlushBytes = 256
		cfg.testHooks.afterRollCreate = func(string) error {
			if crashRoll.CompareAndSwap(true, false) {
				return errors.New("crash in a roll")
			}
			return nil
		}
	}
	spaces := []*Namespace{openNS(t, c, tune), openNS(t, c, tune), openNS(t, c, tune)}
	readNS := openNS(t, c)
	ctx := deadline(t, 6*time.Minute)
	const log = "stress"
	createLog(t, readNS, log)

	h := newHistory()
	tails := map[string]*tailer{}
	starts := map[string]dlog.DLSN{}
	txidStarts := map[string]int64{}
	startReader := func(name string) {
		var pos Position
		var start dlog.DLSN
		h.mu.Lock()
		ids := make([]uint64, 0, len(h.acked))
		for id := range h.acked {
			ids = append(ids, id)
		}
		h.mu.Unlock()
		kind := rng.IntN(4)
		if len(ids) == 0 {
			kind = 0
		}
		switch kind {
		case 0:
			pos = AtStart()
		case 1:
			pos = AtEnd()
		case 2:
			id := ids[rng.IntN(len(ids))]
			h.mu.Lock()
			start = h.acked[id]
			h.mu.Unlock()
			pos = AtDLSN(start)
		case 3:
			txid := int64(ids[rng.IntN(len(ids))])
			txidStarts[name] = txid
			pos = AtTxID(txid)
		}
		r, err := readNS.OpenReader(ctx, log, pos, ReaderOptions{ReadAheadEntries: 1 + rng.IntN(8)})
		must(t, err, "open reader %s at %v", name, pos)
		if kind == 1 {
			// Where the end was is only known once it reads: the check
			// below aligns it on its first record.
			start = dlog.DLSN{}
		}
		tails[name], starts[name] = startTailer(ctx, r, start), start
	}
	startReader("first")

	next := uint64(0)
	endings := []string{"close", "lost-lock", "crash-in-roll", "abort"}
	for round := range rounds {
		ns := spaces[round%len(spaces)]
		w, err := ns.OpenWriter(ctx, log, WriterOptions{Wait: true})
		must(t, err, "round %d: open writer", round)
		ending := endings[rng.IntN(len(endings))]
		if ending == "crash-in-roll" {
			crashRoll.Store(true)
		}
		n := 20 + rng.IntN(150)
		next = writeUntil(ctx, w, h, next, n, 1+rng.IntN(32), 16+rng.IntN(200), nil)
		switch ending {
		case "close":
			must(t, w.Close(ctx), "round %d: close", round)
		case "lost-lock":
			expireSession(t, ns)
			waitFor(t, ctx, "writer fenced", func() bool { return w.Err() != nil })
			w.Close(ctx)
		case "crash-in-roll":
			// Write until a roll crashes the writer.
			next = writeUntil(ctx, w, h, next, 1<<30, 8, 200, nil)
			w.Close(ctx)
		case "abort":
			// Writes still in flight when the process dies.
			for range 10 {
				w.WriteAsync(dlog.Record{TxID: int64(next), Payload: payload(next, 50)})
				next++
			}
			w.abort(errors.New("process killed"))
		}
		crashRoll.Store(false)
		if rng.IntN(2) == 0 {
			startReader(fmt.Sprintf("round-%d", round))
		}
	}
	w, err := readNS.OpenWriter(ctx, log, WriterOptions{Wait: true})
	must(t, err, "last writer")
	next = writeUntil(ctx, w, h, next, 50, 8, 50, nil)
	must(t, w.Close(ctx), "close last writer")
	end := w.LastDLSN()

	final := readAll(t, ctx, readNS, log, end)
	reads := map[string][]dlog.ReadRecord{}
	for name, tl := range tails {
		recs, err := tl.finish(end)
		must(t, err, "tailer %s", name)
		reads[name] = recs
		if txid, ok := txidStarts[name]; ok {
			starts[name] = end.Next()
			for _, rec := range final {
				if rec.TxID >= txid {
					starts[name] = rec.DLSN
					break
				}
			}
			continue
		}
		if starts[name] == (dlog.DLSN{}) {
			if len(recs) == 0 {
				starts[name] = end.Next()
			} else {
				starts[name] = recs[0].DLSN
			}
		}
	}
	checkReads(t, final, h, reads, starts)
	segs, err := readNS.ListSegments(ctx, log)
	must(t, err, "segments")
	t.Logf("%d rounds, %d records in %d segments, %d readers", rounds, len(final), len(segs), len(reads))
}
