package memkv

import (
	"context"
	"sort"
	"sync"

	"github.com/dlog-io/dlog/internal/metadata/kv"
)

// watcher queues the events of one watch between the writer (under
// Server.mu) and its delivery goroutine, so a commit never waits for a
// reader.
type watcher struct {
	start, end string
	limit      int
	notify     chan struct{} // cap 1: pending grew or err was set
	abortc     chan struct{} // closed by Client.Close: stop without blocking
	abortOnce  sync.Once

	mu struct {
		sync.Mutex
		pending []kv.Event
		err     error // final error to deliver once pending is sent
	}
}

// offer queues the matching events. Caller holds Server.mu.
func (w *watcher) offer(events []kv.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.err != nil {
		return
	}
	for _, e := range events {
		if kv.InRange(e.KV.Key, w.start, w.end) {
			w.mu.pending = append(w.mu.pending, e)
		}
	}
	if len(w.mu.pending) > w.limit {
		w.mu.pending = nil
		w.mu.err = kv.ErrCompacted
	}
	w.wake()
}

// fail ends the watch with err after what is already queued.
func (w *watcher) fail(err error) {
	w.mu.Lock()
	if w.mu.err == nil {
		w.mu.err = err
	}
	w.mu.Unlock()
	w.wake()
}

// abort ends the watch at once (its client closes): queued events are
// dropped and the final kv.ErrClosed is delivered only if the reader is
// ready for it, so Client.Close never waits for a reader.
func (w *watcher) abort() {
	w.fail(kv.ErrClosed)
	w.abortOnce.Do(func() { close(w.abortc) })
}

func (w *watcher) wake() {
	select {
	case w.notify <- struct{}{}:
	default:
	}
}

// Watch implements kv.KV.
func (c *Client) Watch(ctx context.Context, key, end string, fromRev int64) <-chan kv.WatchResponse {
	out := make(chan kv.WatchResponse)
	w := &watcher{start: key, end: end, limit: c.s.cfg.WatchQueueEvents, notify: make(chan struct{}, 1), abortc: make(chan struct{})}

	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		w.mu.err = kv.ErrClosed
	} else {
		c.mu.watchers[w] = struct{}{}
		c.mu.Unlock()
		c.s.mu.Lock()
		switch {
		case c.s.mu.closed:
			w.mu.err = kv.ErrUnavailable
		case fromRev != 0 && fromRev <= c.s.mu.compactRev:
			w.mu.err = kv.ErrCompacted
		default:
			h := c.s.mu.history
			i := sort.Search(len(h), func(i int) bool { return h[i].KV.ModRevision >= fromRev })
			w.offer(h[i:])
			c.s.mu.watchers[w] = struct{}{}
		}
		c.s.mu.Unlock()
	}
	c.wg.Go(func() {
		defer close(out)
		defer c.detach(w)
		for {
			w.mu.Lock()
			pending, err := w.mu.pending, w.mu.err
			w.mu.pending = nil
			w.mu.Unlock()
			for len(pending) > 0 {
				// One response per revision, as etcd sends them.
				n := 1
				for n < len(pending) && pending[n].KV.ModRevision == pending[0].KV.ModRevision {
					n++
				}
				select {
				case out <- kv.WatchResponse{Events: pending[:n:n]}:
					pending = pending[n:]
				case <-ctx.Done():
					return
				case <-w.abortc:
					pending = nil
				}
			}
			if err != nil {
				select {
				case out <- kv.WatchResponse{Err: err}:
				case <-ctx.Done():
				case <-w.abortc:
					select {
					case out <- kv.WatchResponse{Err: kv.ErrClosed}:
					default:
					}
				}
				return
			}
			select {
			case <-w.notify:
			case <-ctx.Done():
				return
			case <-w.abortc:
			}
		}
	})
	return out
}

func (c *Client) detach(w *watcher) {
	c.s.mu.Lock()
	delete(c.s.mu.watchers, w)
	c.s.mu.Unlock()
	c.mu.Lock()
	delete(c.mu.watchers, w)
	c.mu.Unlock()
}
