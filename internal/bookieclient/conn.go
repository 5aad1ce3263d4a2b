package bookieclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/grpc"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

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

	sendMu sync.Mutex // serialises stream.Send (not safe concurrently)

	// base is the parent of every stream's context; close cancels it, which
	// also aborts a stream being opened.
	base       context.Context
	cancelBase context.CancelFunc
	// wg tracks the receive goroutines and the stream openers; close waits.
	wg sync.WaitGroup

	mu struct {
		sync.Mutex
		stream  *stream
		opening chan struct{} // non-nil while a stream is being opened; closed when done
		openErr error         // why the last open failed
		pending map[uint64]*call
		nextTxn uint64
		closed  bool
	}
}

// stream is one generation of the bidi stream.
type stream struct {
	s      grpc.BidiStreamingClient[bookiepb.Request, bookiepb.Response]
	cancel context.CancelFunc
	done   chan struct{} // closed when the receive loop exits
}

type call struct {
	st   *stream
	done func(*bookiepb.Response, error)
	stop func() bool // unregisters the ctx watcher; guarded by conn.mu
}

func (cn *conn) send(ctx context.Context, req *bookiepb.Request, done func(*bookiepb.Response, error)) {
	st, err := cn.getStream(ctx)
	if err != nil {
		done(nil, err)
		return
	}
	cn.mu.Lock()
	if cn.mu.closed {
		cn.mu.Unlock()
		done(nil, ErrClosed)
		return
	}
	if cn.mu.stream != st {
		// It broke since getStream returned; its calls were failed.
		cn.mu.Unlock()
		done(nil, fmt.Errorf("%w: %s: stream broke", ErrUnavailable, cn.addr))
		return
	}
	if len(cn.mu.pending) >= cn.maxPending {
		cn.mu.Unlock()
		done(nil, fmt.Errorf("%w: %s: %d requests pending", ErrOverloaded, cn.addr, cn.maxPending))
		return
	}
	cn.mu.nextTxn++
	txn := cn.mu.nextTxn
	req.Txn = txn
	c := &call{st: st, done: done}
	cn.mu.pending[txn] = c
	cn.mu.Unlock()

	// A request whose ctx ends first completes with the ctx's error; a late
	// response is dropped.
	stop := context.AfterFunc(ctx, func() {
		if c, _ := cn.take(txn); c != nil {
			err := ctx.Err()
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: %s: %v", ErrTimeout, cn.addr, err)
			}
			done(nil, err)
		}
	})
	cn.mu.Lock()
	c.stop = stop // guarded by cn.mu: the receive loop may already hold c
	cn.mu.Unlock()

	cn.sendMu.Lock()
	err = st.s.Send(req)
	cn.sendMu.Unlock()
	if err != nil {
		cn.breakStream(st, err)
	}
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
	s, err := cn.client.Stream(ctx)
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
		st := &stream{s: s, cancel: cancel, done: make(chan struct{})}
		cn.mu.stream = st
		cn.wg.Go(func() { cn.receive(st) })
	}
}

// take removes a pending call and returns it with its ctx-watcher stop
// function (nil if not registered yet).
func (cn *conn) take(txn uint64) (*call, func() bool) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	c := cn.mu.pending[txn]
	if c == nil {
		return nil, nil
	}
	delete(cn.mu.pending, txn)
	return c, c.stop
}

func (cn *conn) receive(st *stream) {
	defer close(st.done)
	for {
		r, err := st.s.Recv()
		if err != nil {
			cn.breakStream(st, err)
			return
		}
		c, stop := cn.take(r.Txn)
		if c == nil {
			continue // timed out or cancelled already
		}
		if stop != nil {
			stop()
		}
		c.done(r, statusErr(cn.addr, r))
	}
}

// breakStream retires st and fails every call that was sent on it.
func (cn *conn) breakStream(st *stream, cause error) {
	cn.mu.Lock()
	if cn.mu.stream == st {
		cn.mu.stream = nil
	}
	var failed []*call
	var stops []func() bool
	for txn, c := range cn.mu.pending {
		if c.st == st {
			failed = append(failed, c)
			stops = append(stops, c.stop)
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
	for i, c := range failed {
		if stops[i] != nil {
			stops[i]()
		}
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
	cn.wg.Wait() // receive loops of every stream, and an open in progress
	cn.cc.Close()
}
