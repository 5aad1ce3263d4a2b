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

	mu struct {
		sync.Mutex
		stream  *stream
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
	cn.mu.Lock()
	if cn.mu.closed {
		cn.mu.Unlock()
		done(nil, ErrClosed)
		return
	}
	if len(cn.mu.pending) >= cn.maxPending {
		cn.mu.Unlock()
		done(nil, fmt.Errorf("%w: %s: %d requests pending", ErrOverloaded, cn.addr, cn.maxPending))
		return
	}
	st, err := cn.streamLocked()
	if err != nil {
		cn.mu.Unlock()
		done(nil, err)
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

// streamLocked returns the live stream, opening one if needed.
func (cn *conn) streamLocked() (*stream, error) {
	if cn.mu.stream != nil {
		return cn.mu.stream, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := cn.client.Stream(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, cn.addr, err)
	}
	st := &stream{s: s, cancel: cancel, done: make(chan struct{})}
	cn.mu.stream = st
	go cn.receive(st)
	return st, nil
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
	if st != nil {
		cn.breakStream(st, ErrClosed)
		<-st.done
	}
	cn.cc.Close()
}
