package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/internal/proxy/status"
)

// Write coalescing. One RPC per Write costs far more (HTTP/2 framing,
// handler goroutines, protobuf envelopes, on both sides) than appending a
// record, so under load the client gathers the concurrent untagged Writes
// of one log into WriteBulk requests — which the proxy appends as one
// record set — the way the log core's writer batches records into entries:
//
//   - a Write is sent at once when fewer than Config.BatchesInFlight
//     requests of its log are in flight (an idle client adds no latency);
//   - otherwise it waits in the log's queue, and when a request returns,
//     the queue (up to Config.MaxBatchRecords records and
//     Config.MaxBatchBytes bytes) goes out as the next request.
//
// Every record keeps its own outcome (WriteBulk answers one result per
// record). A request refused as a whole because of one record (too large,
// a bad or out-of-order txid) is sent again one record per request, so a
// record's error is never another's. With Config.Idempotence a request is
// tagged with one producer id and consecutive sequences and retried as a
// whole after an indeterminate failure (the new owner's dedup table
// answers what was already written).

// batchItem is one Write waiting in a batcher.
type batchItem struct {
	ctx  context.Context
	rec  *dlogpb.Record
	size int
	sent bool          // taken into a request (under batcher.mu)
	done chan struct{} // closed once res/err are set
	res  WriteResult
	err  error
}

func (it *batchItem) finish(res WriteResult, err error) {
	it.res, it.err = res, err
	close(it.done)
}

// batcher coalesces the Writes of one log.
type batcher struct {
	c   *Client // the namespace view the log belongs to
	log string
	key string

	mu       sync.Mutex
	queue    []*batchItem
	inflight int
}

// batcherFor returns the batcher of key, creating it.
func (c *Client) batcherFor(log, key string) *batcher {
	c.bmu.Lock()
	defer c.bmu.Unlock()
	b := c.batchers[key]
	if b == nil {
		b = &batcher{c: c, log: log, key: key}
		c.batchers[key] = b
	}
	return b
}

// forgetIdleLocked drops b from the client's map once it has nothing queued or
// in flight (b.mu held), so the map holds only logs being written.
func (b *batcher) forgetIdleLocked() {
	if b.inflight > 0 || len(b.queue) > 0 {
		return
	}
	b.c.bmu.Lock()
	if b.c.batchers[b.key] == b {
		delete(b.c.batchers, b.key)
	}
	b.c.bmu.Unlock()
}

// writeBatched queues rec and waits for its outcome.
func (c *Client) writeBatched(ctx context.Context, log string, rec *dlogpb.Record) (WriteResult, error) {
	it := &batchItem{ctx: ctx, rec: rec, size: len(rec.GetPayload()) + 16, done: make(chan struct{})}
	key := c.logKey(log)
	var b *batcher
	for {
		b = c.batcherFor(log, key)
		b.mu.Lock()
		c.bmu.Lock()
		live := c.batchers[key] == b
		c.bmu.Unlock()
		if live {
			break
		}
		b.mu.Unlock() // forgotten between the two locks: take the new one
	}
	b.queue = append(b.queue, it)
	b.kickLocked()
	b.mu.Unlock()
	select {
	case <-it.done:
		return it.res, it.err
	case <-ctx.Done():
	}
	select {
	case <-it.done: // the outcome arrived with the end of ctx
		return it.res, it.err
	default:
	}
	b.mu.Lock()
	if !it.sent {
		// Still queued: nothing was sent.
		for i, q := range b.queue {
			if q == it {
				b.queue = append(b.queue[:i], b.queue[i+1:]...)
				break
			}
		}
		b.forgetIdleLocked()
		b.mu.Unlock()
		return WriteResult{}, fmt.Errorf("%w: write to %s still queued in the client: %w", dlog.ErrOverCapacity, log, ctx.Err())
	}
	b.mu.Unlock()
	return WriteResult{}, dlog.Indeterminate(fmt.Errorf("write to %s: %w", log, ctx.Err()))
}

// kickLocked starts requests while the queue has records and fewer than
// BatchesInFlight requests are in flight (b.mu held).
func (b *batcher) kickLocked() {
	cfg := &b.c.cfg
	maxBytes := min(cfg.MaxBatchBytes, cfg.MaxMessageBytes/2)
	for len(b.queue) > 0 && b.inflight < cfg.BatchesInFlight {
		n, bytes := 0, 0
		for n < len(b.queue) && n < cfg.MaxBatchRecords {
			s := b.queue[n].size
			if n > 0 && bytes+s > maxBytes {
				break
			}
			bytes += s
			n++
		}
		batch := make([]*batchItem, n)
		copy(batch, b.queue)
		b.queue = append(b.queue[:0], b.queue[n:]...)
		for _, it := range batch {
			it.sent = true
		}
		if !b.c.spawn(func() { b.send(batch) }) {
			for _, it := range batch {
				it.finish(WriteResult{}, fmt.Errorf("%w: client closed", dlog.ErrClosed))
			}
			continue
		}
		b.inflight++
	}
}

// spawn runs fn in a goroutine of the client unless it is closed.
func (c *core) spawn(fn func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return false
	}
	c.wg.Go(fn)
	return true
}

// send writes one batch and hands every record its outcome, then starts
// the next request.
func (b *batcher) send(batch []*batchItem) {
	b.c.sendBatch(b.log, batch)
	b.mu.Lock()
	b.inflight--
	b.kickLocked()
	b.forgetIdleLocked()
	b.mu.Unlock()
}

// batchContext bounds a request by its records' deadlines (the latest; none
// if one has none) and by the client's life.
func (c *Client) batchContext(batch []*batchItem) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, it := range batch {
		d, ok := it.ctx.Deadline()
		if !ok {
			return context.WithCancel(c.bg)
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(c.bg, latest)
}

// sendBatch writes batch as one WriteBulk (one record alone as a Write)
// and finishes every item.
func (c *Client) sendBatch(log string, batch []*batchItem) {
	if len(batch) == 1 {
		it := batch[0]
		it.finish(c.writeOne(it.ctx, log, it.rec))
		return
	}
	ctx, cancel := c.batchContext(batch)
	defer cancel()
	recs := make([]*dlogpb.Record, len(batch))
	for i, it := range batch {
		recs[i] = it.rec
	}
	res, errs, err := c.writeBulkPB(ctx, log, recs)
	if err != nil {
		if len(batch) > 1 && dlog.IsDefinite(err) && recordSpecific(err) {
			// One record spoiled the request: each on its own.
			for _, it := range batch {
				it.finish(c.writeOne(it.ctx, log, it.rec))
			}
			return
		}
		for _, it := range batch {
			it.finish(WriteResult{}, err)
		}
		return
	}
	for i, it := range batch {
		it.finish(res[i], errs[i])
	}
}

// recordSpecific says whether a request-wide refusal may be caused by one
// of its records rather than by the log or the proxy.
func recordSpecific(err error) bool {
	return errors.Is(err, dlog.ErrRecordTooLarge) || errors.Is(err, dlog.ErrTxIDOutOfOrder) ||
		(errors.Is(err, dlog.ErrInvalidArgument) && !errors.Is(err, dlog.ErrInvalidName))
}

// writeOne is Write of one untagged record (tagged with Idempotence).
func (c *Client) writeOne(ctx context.Context, log string, rec *dlogpb.Record) (WriteResult, error) {
	req := &dlogpb.WriteRequest{Log: c.ref(log), Record: rec}
	if c.cfg.Idempotence {
		pr, err := c.producers.get(ctx)
		if err != nil {
			return WriteResult{}, err
		}
		defer c.producers.put(pr)
		req.ProducerId, req.Sequence = pr.id, pr.next
		pr.next++
	}
	return c.writePB(ctx, log, req)
}

// writeBulkPB sends recs (untagged; tagged here with Idempotence) as one
// WriteBulk and returns one result or error per record; err is for the
// request as a whole (no record written when definite).
func (c *Client) writeBulkPB(ctx context.Context, log string, recs []*dlogpb.Record) ([]WriteResult, []error, error) {
	req := &dlogpb.WriteBulkRequest{Log: c.ref(log), Records: recs}
	if c.cfg.Idempotence {
		pr, err := c.producers.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		defer c.producers.put(pr)
		req.ProducerId, req.FirstSequence = pr.id, pr.next
		pr.next += int64(len(recs))
	}
	res := make([]WriteResult, len(recs))
	errs := make([]error, len(recs))
	key := c.logKey(log)
	_, err := c.call(ctx, key, routeOwner, req.ProducerId != "", func(ctx context.Context, s *stubs) error {
		clear(res)
		clear(errs)
		r, err := s.log.WriteBulk(ctx, connect.NewRequest(req))
		if err != nil {
			return err
		}
		results := r.Msg.GetResults()
		var retry error
		for i := range recs {
			if i >= len(results) {
				errs[i] = dlog.Indeterminate(fmt.Errorf("proxy answered %d results for %d records", len(results), len(recs)))
			} else if d := results[i].GetError(); d != nil {
				errs[i] = status.FromDetail(d, key)
			} else {
				res[i], errs[i] = parseResult(results[i].GetDlsn(), results[i].GetTxid(), results[i].GetDuplicate())
				res[i].Owner = r.Msg.GetOwner()
			}
			if errs[i] != nil && retry == nil && !dlog.IsDefinite(errs[i]) {
				retry = errs[i]
			}
		}
		if retry != nil && req.ProducerId != "" {
			return retry // retried as a whole: the dedup table answers the prefix
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return res, errs, nil
}
