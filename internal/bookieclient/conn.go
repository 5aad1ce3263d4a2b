package bookieclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// maxBatchBytes bounds the encoded requests in one Requests message; a
// single larger request travels alone. Any batch so bounded fits the
// bookie's message limit (its largest entry plus 64 KiB).
const maxBatchBytes = 32 << 10

// maxQueuedBytes bounds the encoded requests queued on one stream and not
// yet handed to gRPC (a bookie that stops reading fills it); beyond it
// calls fail with ErrOverloaded.
const maxQueuedBytes = 64 << 20

// maxYields bounds the times the sender yields to let a batch grow.
const maxYields = 8

// maxRecycledBytes: a buffer grown beyond this by large entries is dropped
// rather than kept for reuse.
const maxRecycledBytes = 1 << 20

// conn is one bookie address: a gRPC connection and, while healthy, one
// bidirectional stream. A broken stream fails everything pending on it and
// the next request opens a new one (gRPC reconnects the connection).
//
// Lock order: conn.mu, then nothing. Callbacks never run under conn.mu.
type conn struct {
	addr       string
	cc         *grpc.ClientConn
	client     bookiepb.BookieClient
	maxPending int
	log        *slog.Logger

	// base is the parent of every stream's context; close cancels it, which
	// also aborts a stream being opened.
	base       context.Context
	cancelBase context.CancelFunc
	// wg tracks the streams' receive and send goroutines and the stream
	// openers; close waits.
	wg sync.WaitGroup

	nextTxn atomic.Uint64

	mu struct {
		sync.Mutex
		stream  *stream
		opening chan struct{} // non-nil while a stream is being opened; closed when done
		openErr error         // why the last open failed
		pending map[uint64]*call
		closed  bool
	}
}

// stream is one generation of the bidi Batches stream. Requests are
// encoded by their callers into queue; the stream's sender goroutine takes
// everything queued at once and sends it (as Requests messages of up to
// maxBatchBytes), so callers never wait for gRPC flow control and a loaded
// stream carries many requests per message.
type stream struct {
	s       grpc.ClientStream
	cancel  context.CancelFunc
	stopped <-chan struct{} // the stream's context is done
	done    chan struct{}   // closed when the receive loop exits
	wake    chan struct{}   // cap 1: queue went from empty to non-empty

	queue sendQueue // guarded by conn.mu
}

// sendQueue is encoded requests, back to back, each framed as field 1 of a
// Requests message (tag, length, Request): a run of them is a Requests
// message as it is.
type sendQueue struct {
	buf  []byte
	ends []int // where each request ends
}

func (q *sendQueue) reset() {
	if cap(q.buf) > maxRecycledBytes {
		q.buf = nil
	}
	q.buf, q.ends = q.buf[:0], q.ends[:0]
}

type call struct {
	st   *stream
	done func(*bookiepb.Response, error)
	// Watchers: set before the call is registered, read by whoever takes
	// it from pending.
	stopCtx func() bool // unregisters the ctx watcher; nil if none
	timer   *time.Timer // the DefaultTimeout timer; nil if ctx has a deadline
	// expired is set (under conn.mu) by a watcher that fired before the
	// call was registered; err is why.
	expired bool
	err     error
}

// stopWatching releases the call's watchers.
func (c *call) stopWatching() {
	if c.stopCtx != nil {
		c.stopCtx()
	}
	if c.timer != nil {
		c.timer.Stop()
	}
}

// encodeBufs are scratch buffers for encoding requests outside conn.mu.
var encodeBufs = sync.Pool{New: func() any { return new([]byte) }}

// send encodes req and queues it on the stream. timeout > 0 means ctx has
// no deadline and the call ends with ErrTimeout after timeout.
func (cn *conn) send(ctx context.Context, req *bookiepb.Request, timeout time.Duration, done func(*bookiepb.Response, error)) {
	st, err := cn.getStream(ctx)
	if err != nil {
		done(nil, err)
		return
	}
	txn := cn.nextTxn.Add(1)
	req.Txn = txn
	bufp := encodeBufs.Get().(*[]byte)
	defer func() {
		if cap(*bufp) <= maxRecycledBytes {
			encodeBufs.Put(bufp)
		}
	}()
	enc, err := bookiepb.AppendRequest((*bufp)[:0], req)
	*bufp = enc
	if err != nil {
		done(nil, fmt.Errorf("%w: %s: encode request: %v", ErrBadRequest, cn.addr, err))
		return
	}

	// A request whose ctx ends first completes with the ctx's error; a late
	// response is dropped.
	c := &call{st: st, done: done}
	if ctx.Done() != nil {
		c.stopCtx = context.AfterFunc(ctx, func() {
			err := ctx.Err()
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: %s: %v", ErrTimeout, cn.addr, err)
			}
			cn.expire(txn, c, err)
		})
	}
	if timeout > 0 {
		c.timer = time.AfterFunc(timeout, func() {
			cn.expire(txn, c, fmt.Errorf("%w: %s: %v", ErrTimeout, cn.addr, context.DeadlineExceeded))
		})
	}

	cn.mu.Lock()
	q := &st.queue
	switch {
	case cn.mu.closed:
		err = ErrClosed
	case cn.mu.stream != st:
		// It broke since getStream returned; its calls were failed.
		err = fmt.Errorf("%w: %s: stream broke", ErrUnavailable, cn.addr)
	case c.expired:
		err = c.err
	case len(cn.mu.pending) >= cn.maxPending:
		err = fmt.Errorf("%w: %s: %d requests pending", ErrOverloaded, cn.addr, cn.maxPending)
	case len(q.buf) > 0 && len(q.buf)+len(enc) > maxQueuedBytes:
		err = fmt.Errorf("%w: %s: %d bytes queued", ErrOverloaded, cn.addr, len(q.buf))
	}
	if err != nil {
		cn.mu.Unlock()
		c.stopWatching()
		done(nil, err)
		return
	}
	cn.mu.pending[txn] = c
	first := len(q.ends) == 0
	q.buf = protowire.AppendTag(q.buf, 1, protowire.BytesType)
	q.buf = protowire.AppendVarint(q.buf, uint64(len(enc)))
	q.buf = append(q.buf, enc...)
	q.ends = append(q.ends, len(q.buf))
	cn.mu.Unlock()
	if first {
		select {
		case st.wake <- struct{}{}:
		default:
		}
	}
}

// expire completes call txn with err if it is still pending (a watcher
// fired), or marks it expired if it is not registered yet.
func (cn *conn) expire(txn uint64, c *call, err error) {
	cn.mu.Lock()
	if cn.mu.pending[txn] != c {
		c.expired, c.err = true, err // harmless once the call completed
		cn.mu.Unlock()
		return
	}
	delete(cn.mu.pending, txn)
	cn.mu.Unlock()
	c.stopWatching()
	c.done(nil, err)
}

// getStream returns the live stream, opening one if needed. Opening runs
// on a goroutine of its own (gRPC may block while it connects) that every
// caller waits for, each no longer than its own ctx: an unreachable bookie
// never holds conn.mu, nor a request past its deadline.
func (cn *conn) getStream(ctx context.Context) (*stream, error) {
	cn.mu.Lock()
	if cn.mu.closed {
		cn.mu.Unlock()
		return nil, ErrClosed
	}
	if st := cn.mu.stream; st != nil {
		cn.mu.Unlock()
		return st, nil
	}
	opening := cn.mu.opening
	if opening == nil {
		opening = make(chan struct{})
		cn.mu.opening = opening
		cn.wg.Go(func() { cn.open(opening) })
	}
	cn.mu.Unlock()
	select {
	case <-opening:
	case <-ctx.Done():
		err := ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %s: connecting: %v", ErrTimeout, cn.addr, err)
		}
		return nil, err
	}
	cn.mu.Lock()
	defer cn.mu.Unlock()
	switch {
	case cn.mu.closed:
		return nil, ErrClosed
	case cn.mu.stream != nil:
		return cn.mu.stream, nil
	}
	return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, cn.addr, cn.mu.openErr)
}

// open opens a stream and installs it, then closes opening.
func (cn *conn) open(opening chan struct{}) {
	ctx, cancel := context.WithCancel(cn.base)
	s, err := cn.dial(ctx)
	cn.mu.Lock()
	defer cn.mu.Unlock()
	defer close(opening)
	cn.mu.opening = nil
	switch {
	case err != nil:
		cancel()
		cn.mu.openErr = err
	case cn.mu.closed:
		cancel()
		cn.mu.openErr = ErrClosed
	default:
		st := &stream{s: s, cancel: cancel, stopped: ctx.Done(),
			done: make(chan struct{}), wake: make(chan struct{}, 1)}
		cn.mu.stream = st
		cn.wg.Go(func() { cn.receive(st) })
		cn.wg.Go(func() { cn.sendLoop(st) })
	}
}

// dial opens a Batches stream and waits for the bookie's response headers
// (one round trip). A peer that ends the stream at once (trailers only:
// UNIMPLEMENTED from a peer without Batches, or any other refusal) has
// handled nothing.
func (cn *conn) dial(ctx context.Context) (grpc.ClientStream, error) {
	s, err := cn.client.Batches(ctx, grpc.ForceCodecV2(frameCodec{}))
	if err != nil {
		return nil, err
	}
	if md, _ := s.Header(); md != nil {
		return s, nil
	}
	// Trailers only: the status comes from Recv.
	_, err = s.Recv()
	if err == nil || errors.Is(err, io.EOF) {
		err = errors.New("stream ended before it started")
	}
	return nil, err
}

// sendLoop is the stream's sender: whenever requests are queued it takes
// them all and sends them, until the stream breaks.
func (cn *conn) sendLoop(st *stream) {
	var spare sendQueue
	for {
		select {
		case <-st.wake:
		case <-st.stopped:
			return
		}
		// Let the goroutines that are ready to run go first, as long as
		// they keep queueing: under load they are callers woken by the
		// answers just received, whose requests then leave in this
		// message. With nothing else to run Gosched returns at once: an
		// idle stream adds no delay.
		for n, queued := 0, -1; n < maxYields; n++ {
			cn.mu.Lock()
			now := len(st.queue.ends)
			cn.mu.Unlock()
			if now == queued {
				break
			}
			queued = now
			runtime.Gosched()
		}
		cn.mu.Lock()
		q := st.queue
		st.queue = spare
		cn.mu.Unlock()
		if err := st.sendQueued(&q); err != nil {
			cn.breakStream(st, err)
			return
		}
		q.reset()
		spare = q
	}
}

// sendQueued sends q's requests in order.
func (st *stream) sendQueued(q *sendQueue) error {
	start := 0 // of the first request not sent, tag included
	for i := 0; i < len(q.ends); {
		j := i + 1
		for j < len(q.ends) && q.ends[j]-start <= maxBatchBytes {
			j++
		}
		if err := st.s.SendMsg(newFrame(q.buf[start:q.ends[j-1]])); err != nil {
			return err
		}
		start, i = q.ends[j-1], j
	}
	return nil
}

// take removes the pending calls answered by resps: calls[i] answers
// resps[i] (nil when it completed already: timed out or cancelled).
func (cn *conn) take(resps []*bookiepb.Response, calls []*call) []*call {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for _, r := range resps {
		c := cn.mu.pending[r.Txn]
		if c != nil {
			delete(cn.mu.pending, r.Txn)
		}
		calls = append(calls, c)
	}
	return calls
}

func (cn *conn) receive(st *stream) {
	defer close(st.done)
	var calls []*call
	for {
		m := new(bookiepb.Responses)
		err := st.s.RecvMsg(m)
		resps := m.Responses
		if err != nil {
			cn.breakStream(st, err)
			return
		}
		calls = cn.take(resps, calls[:0])
		for i, c := range calls {
			if c != nil {
				c.stopWatching()
				c.done(resps[i], statusErr(cn.addr, resps[i]))
			}
		}
		clear(calls)
	}
}

// breakStream retires st and fails every call that was sent on it.
func (cn *conn) breakStream(st *stream, cause error) {
	cn.mu.Lock()
	if cn.mu.stream == st {
		cn.mu.stream = nil
	}
	st.queue = sendQueue{}
	var failed []*call
	for txn, c := range cn.mu.pending {
		if c.st == st {
			failed = append(failed, c)
			delete(cn.mu.pending, txn)
		}
	}
	closed := cn.mu.closed
	cn.mu.Unlock()
	st.cancel()
	if len(failed) > 0 && !closed {
		cn.log.Debug("bookie stream broke", "bookie", cn.addr, "pending", len(failed), "err", cause)
	}
	err := fmt.Errorf("%w: %s: %v", ErrUnavailable, cn.addr, cause)
	if closed {
		err = ErrClosed
	}
	for _, c := range failed {
		c.stopWatching()
		c.done(nil, err)
	}
}

func (cn *conn) close() {
	cn.mu.Lock()
	cn.mu.closed = true
	st := cn.mu.stream
	cn.mu.Unlock()
	cn.cancelBase()
	if st != nil {
		cn.breakStream(st, ErrClosed)
	}
	cn.wg.Wait() // receive and send loops of every stream, and an open in progress
	cn.cc.Close()
}
