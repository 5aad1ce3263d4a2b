package ledger

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// pump adds entries to a writer from one goroutine until stopped, the
// writer refuses an add, or max entries were added. Entry ids equal the
// order of acceptance (one adding goroutine), so payload(tag, id) is the
// expected content of entry id.
type pump struct {
	w      *Writer
	tag    string
	size   int
	log    *ackLog
	stopc  chan struct{}
	done   chan struct{}
	mu     sync.Mutex
	added  int64 // entries accepted
	refuse error // the error that ended the pump, if any
}

func startPump(t testing.TB, w *Writer, tag string, size int, max int64) *pump {
	p := &pump{w: w, tag: tag, size: size, log: newAckLog(), stopc: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(p.done)
		defer cancel()
		for e := int64(0); e < max; e++ {
			select {
			case <-p.stopc:
				return
			default:
			}
			data := payload(p.tag, e, p.size)
			// ctx is cancelled by stop, ending a wait for admission.
			if err := w.AddAsync(ctx, data, p.log.record(data)); err != nil {
				p.mu.Lock()
				p.refuse = err
				p.mu.Unlock()
				return
			}
			p.mu.Lock()
			p.added++
			p.mu.Unlock()
		}
	}()
	go func() {
		select {
		case <-p.stopc:
			cancel()
		case <-p.done:
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *pump) stop() {
	select {
	case <-p.stopc:
	default:
		close(p.stopc)
	}
	<-p.done
}

func (p *pump) acked() int {
	a, _, _ := p.log.snapshot()
	return len(a)
}

// waitAcked waits until n entries are acknowledged.
func (p *pump) waitAcked(t testing.TB, n int) {
	t.Helper()
	waitUntil(t, 60*time.Second, fmt.Sprintf("%d acks", n), func() bool { return p.acked() >= n })
}

// waitSettled waits until every accepted add has its outcome.
func (p *pump) waitSettled(t testing.TB) {
	t.Helper()
	p.stop()
	waitUntil(t, 60*time.Second, "every add settled", func() bool {
		_, _, done := p.log.snapshot()
		p.mu.Lock()
		defer p.mu.Unlock()
		return int64(done) == p.added
	})
}

// copies counts the running bookies of c that return entry e of ledger id
// with exactly want.
func copies(t testing.TB, cl *Client, c *cluster.Cluster, id, e int64, want []byte) int {
	t.Helper()
	return countCopies(t, cl, c, id, map[int64][]byte{e: want})[e]
}

// countCopies counts, for every entry of want, the running bookies of c
// that return it with exactly its bytes (reads issued concurrently).
func countCopies(t testing.TB, cl *Client, c *cluster.Cluster, id int64, want map[int64][]byte) map[int64]int {
	t.Helper()
	var (
		mu  sync.Mutex
		out = make(map[int64]int, len(want))
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, 64)
	ctx := deadline(t, 60*time.Second)
	for i := range c.Len() {
		if !c.Running(i) {
			continue
		}
		addr := c.Addr(i)
		for e, data := range want {
			sem <- struct{}{}
			wg.Add(1)
			var try func(attempt int)
			try = func(attempt int) {
				req := &bookiepb.Request{Body: &bookiepb.Request_Read{Read: &bookiepb.ReadRequest{LedgerId: id, EntryId: e}}}
				cl.BookieClient().Go(ctx, addr, req, func(r *bookiepb.Response, err error) {
					if err != nil && !bookieclient.IsExplicitNegative(err) && attempt < 50 && ctx.Err() == nil {
						// Unknown (a bookie just restarted): ask again.
						time.AfterFunc(20*time.Millisecond, func() { try(attempt + 1) })
						return
					}
					defer wg.Done()
					defer func() { <-sem }()
					if got := r.GetRead().GetEntry(); err == nil && got != nil && bytes.Equal(unframed(got.Payload), data) {
						mu.Lock()
						out[e]++
						mu.Unlock()
					}
				})
			}
			try(0)
		}
	}
	wg.Wait()
	return out
}

// checkReadable reads every acknowledged entry back through a fresh reader
// and compares the bytes.
func checkReadable(t testing.TB, cl *Client, id int64, acked map[int64][]byte) {
	t.Helper()
	ctx := deadline(t, 60*time.Second)
	r, err := cl.OpenReader(ctx, id)
	must(t, err, "open reader of ledger %d", id)
	defer r.Close()
	for e, want := range acked {
		if e > r.LAC() {
			t.Fatalf("ledger %d: acknowledged entry %d is beyond the reader's LAC %d", id, e, r.LAC())
		}
		got, err := r.Read(ctx, e, e)
		must(t, err, "read acknowledged entry %d", e)
		if !bytes.Equal(got[0].Payload, want) {
			t.Fatalf("ledger %d entry %d: read %q, acknowledged %q", id, e, got[0].Payload, want)
		}
	}
}

// unframed is the caller's payload of a stored entry of the current
// format (nil if malformed).
func unframed(b []byte) []byte {
	p, _, ok := unframe(currentFormat, b)
	if !ok {
		return nil
	}
	return p
}

// checkLength reads a closed ledger back and checks that its metadata
// records its true length: the payload bytes of entries 0..LastEntryID.
func checkLength(t testing.TB, cl *Client, md metadata.LedgerMetadata, id int64) {
	t.Helper()
	if md.State != metadata.LedgerClosed {
		t.Fatalf("ledger %d: state %v, want CLOSED", id, md.State)
	}
	var want int64
	if md.LastEntryID >= 0 {
		ctx := deadline(t, 60*time.Second)
		r, err := cl.OpenReader(ctx, id)
		must(t, err, "open reader of ledger %d", id)
		defer r.Close()
		got, err := r.Read(ctx, 0, md.LastEntryID)
		must(t, err, "read ledger %d", id)
		for _, e := range got {
			want += int64(len(e.Payload))
		}
	}
	if md.Length != want {
		t.Fatalf("ledger %d closed at %d with length %d, its entries hold %d bytes", id, md.LastEntryID, md.Length, want)
	}
}
