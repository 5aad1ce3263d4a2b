package namespace

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
)

// expireSession revokes the namespace's metadata session, as if its
// lease had expired: the writer locks it held are gone at once.
func expireSession(t testing.TB, n *Namespace) {
	t.Helper()
	n.sessMu.Lock()
	s := n.sess
	n.sessMu.Unlock()
	if s == nil {
		t.Fatal("namespace has no session")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	must(t, s.Close(ctx), "revoke session")
}

// history records what writers were told.
type history struct {
	mu     sync.Mutex
	acked  map[uint64]dlog.DLSN
	failed map[uint64]error
}

func newHistory() *history {
	return &history{acked: make(map[uint64]dlog.DLSN), failed: make(map[uint64]error)}
}

func (h *history) record(id uint64, d dlog.DLSN, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.failed[id] = err
		return
	}
	h.acked[id] = d
}

func (h *history) ackedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.acked)
}

// writeUntil writes records with ids from first on (txid = id) until stop
// is closed, the writer fails for good, or limit records were written,
// keeping at most window writes outstanding. It returns the next id.
func writeUntil(ctx context.Context, w *Writer, h *history, first uint64, limit int, window int, size int, stop <-chan struct{}) uint64 {
	type pending struct {
		id uint64
		f  *Future
	}
	var out []pending
	settle := func(p pending) {
		d, err := p.f.Wait(ctx)
		h.record(p.id, d, err)
	}
	id := first
	defer func() {
		for _, p := range out {
			settle(p)
		}
	}()
	for n := 0; n < limit; n++ {
		select {
		case <-stop:
			return id
		case <-ctx.Done():
			return id
		default:
		}
		if len(out) >= window {
			settle(out[0])
			out = out[1:]
		}
		f := w.WriteAsync(dlog.Record{TxID: int64(id), Payload: payload(id, size)})
		out = append(out, pending{id, f})
		id++
		if w.Err() != nil {
			return id
		}
	}
	return id
}

// tailer reads a log in the background until it delivered a record at or
// after the target set with finish, or its context ends.
type tailer struct {
	r      *Reader
	start  dlog.DLSN // the start position asked for (for checks)
	recs   []dlog.ReadRecord
	err    error
	target chan dlog.DLSN
	wg     sync.WaitGroup
}

func startTailer(ctx context.Context, r *Reader, start dlog.DLSN) *tailer {
	tl := &tailer{r: r, start: start, target: make(chan dlog.DLSN, 1)}
	tl.wg.Go(func() {
		var target *dlog.DLSN
		for {
			select {
			case d := <-tl.target:
				target = &d
			default:
			}
			if target != nil && len(tl.recs) > 0 && !tl.recs[len(tl.recs)-1].DLSN.Less(*target) {
				return
			}
			rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			recs, err := r.NextBatch(rctx, 256)
			cancel()
			tl.recs = append(tl.recs, recs...)
			switch {
			case err == nil:
			case ctx.Err() != nil:
				tl.err = ctx.Err()
				return
			case errors.Is(err, context.DeadlineExceeded):
			default:
				tl.err = err
				return
			}
		}
	})
	return tl
}

// finish tells the tailer where the log ends and waits for it.
func (tl *tailer) finish(end dlog.DLSN) ([]dlog.ReadRecord, error) {
	tl.target <- end
	tl.wg.Wait()
	tl.r.Close()
	return tl.recs, tl.err
}

// readAll reads the whole log from the start until end (inclusive).
func readAll(t testing.TB, ctx context.Context, n *Namespace, log string, end dlog.DLSN) []dlog.ReadRecord {
	t.Helper()
	r, err := n.OpenReader(ctx, log, AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	defer r.Close()
	var out []dlog.ReadRecord
	for len(out) == 0 || out[len(out)-1].DLSN.Less(end) {
		recs, err := r.NextBatch(ctx, 1024)
		must(t, err, "read after %d records", len(out))
		out = append(out, recs...)
	}
	return out
}

// checkAgainst checks that a reader delivered exactly the final log's
// records from its start position on (a contiguous run: nothing skipped,
// nothing repeated), and that every record the writers were told was
// written is in the final log once, and none they were told definitely
// failed.
func checkReads(t testing.TB, final []dlog.ReadRecord, h *history, reads map[string][]dlog.ReadRecord, starts map[string]dlog.DLSN) {
	t.Helper()
	checkSequence(t, final)
	seen := make(map[uint64]dlog.DLSN, len(final))
	for _, rec := range final {
		id := payloadID(t, rec.Payload)
		if d, dup := seen[id]; dup {
			t.Fatalf("record %d in the log twice: %v and %v", id, d, rec.DLSN)
		}
		seen[id] = rec.DLSN
		if rec.TxID != int64(id) {
			t.Fatalf("record %d has txid %d", id, rec.TxID)
		}
	}
	h.mu.Lock()
	for id, d := range h.acked {
		if got, ok := seen[id]; !ok || got != d {
			t.Fatalf("acknowledged record %d at %v: in the log at %v (%v)", id, d, got, ok)
		}
	}
	for id, err := range h.failed {
		if _, ok := seen[id]; ok && dlog.IsDefinite(err) {
			t.Fatalf("record %d is in the log but its write failed definitely: %v", id, err)
		}
	}
	h.mu.Unlock()
	for name, recs := range reads {
		start := starts[name]
		i := 0
		for i < len(final) && final[i].DLSN.Less(start) {
			i++
		}
		if len(recs) > len(final)-i {
			t.Fatalf("reader %s delivered %d records, the log has %d from %v", name, len(recs), len(final)-i, start)
		}
		for k, rec := range recs {
			want := final[i+k]
			if rec.DLSN != want.DLSN || rec.SequenceID != want.SequenceID || payloadID(t, rec.Payload) != payloadID(t, want.Payload) {
				t.Fatalf("reader %s record %d: %v seq %d; the log has %v seq %d", name, k, rec.DLSN, rec.SequenceID, want.DLSN, want.SequenceID)
			}
		}
	}
}
