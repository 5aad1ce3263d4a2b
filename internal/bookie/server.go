package bookie

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// rejectSlots bounds the responses to refused requests (OVERLOADED,
// SHUTTING_DOWN) queued on one stream at once; beyond it the receive loop
// waits, which stops reading from the client (back-pressure).
const rejectSlots = 16

// service adapts a Bookie to the generated gRPC interface.
type service struct {
	bookiepb.UnimplementedBookieServer
	b *Bookie
}

func (s service) Stream(gs grpc.BidiStreamingServer[bookiepb.Request, bookiepb.Response]) error {
	return s.b.serveStream(gs)
}

// stream is one client stream. Requests are received by one goroutine,
// answers are sent by the handler goroutine (gRPC's Send is not safe for
// concurrent use) from out. out never blocks a producer: at most
// MaxInFlightPerStream admitted requests plus rejectSlots refused ones are
// unanswered at once, and out holds that many.
type stream struct {
	b   *Bookie
	gs  grpc.BidiStreamingServer[bookiepb.Request, bookiepb.Response]
	ctx context.Context

	out      chan outgoing
	rejects  chan struct{} // semaphore of rejectSlots
	inFlight atomic.Int64  // admitted, not yet sent
	pending  atomic.Int64  // admitted or refused, not yet sent
}

type outgoing struct {
	resp     *bookiepb.Response
	admitted bool // holds an in-flight slot (else a reject slot)
}

func (b *Bookie) serveStream(gs grpc.BidiStreamingServer[bookiepb.Request, bookiepb.Response]) error {
	st := &stream{
		b:       b,
		gs:      gs,
		ctx:     gs.Context(),
		out:     make(chan outgoing, b.cfg.MaxInFlightPerStream+rejectSlots),
		rejects: make(chan struct{}, rejectSlots),
	}
	recvDone := make(chan error, 1)
	b.reqs.Go(func() { recvDone <- st.receive() })
	stopc := b.stopc
	var recvErr error
	draining := false
	for {
		if draining && st.pending.Load() == 0 {
			return recvErr
		}
		select {
		case o := <-st.out:
			err := gs.Send(o.resp)
			if o.admitted {
				st.inFlight.Add(-1)
				b.met.inFlight.Dec()
			} else {
				<-st.rejects
			}
			st.pending.Add(-1)
			if err != nil {
				// The stream is broken; answers still to come go into out,
				// which never blocks, and are dropped with it.
				return err
			}
		case err := <-recvDone:
			recvDone = nil
			draining = true
			recvErr = err
		case <-stopc:
			stopc = nil
			draining = true
		}
	}
}

// receive reads requests until the client closes its side or the stream
// ends.
func (st *stream) receive() error {
	for {
		req, err := st.gs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		st.dispatch(req)
	}
}

// dispatch admits a request and starts handling it: adds and info inline
// (they never block), the rest on a goroutine of its own (bounded by the
// in-flight limit).
func (st *stream) dispatch(req *bookiepb.Request) {
	b := st.b
	arrival := time.Now()
	st.pending.Add(1)
	if b.closing.Load() {
		st.reject(req, bookiepb.Status_STATUS_SHUTTING_DOWN, "bookie is shutting down")
		return
	}
	if st.inFlight.Add(1) > int64(b.cfg.MaxInFlightPerStream) {
		st.inFlight.Add(-1)
		st.reject(req, bookiepb.Status_STATUS_OVERLOADED,
			fmt.Sprintf("%d requests in flight on this stream", b.cfg.MaxInFlightPerStream))
		return
	}
	b.met.inFlight.Inc()
	timeout := b.cfg.DefaultRequestTimeout
	if req.TimeoutMs > 0 {
		timeout = min(time.Duration(req.TimeoutMs)*time.Millisecond, b.cfg.MaxRequestTimeout)
	}
	deadline := arrival.Add(timeout)
	if rej := validateRequest(req, b.cfg.MaxEntryBytes); rej != nil {
		st.answer(opName(req), arrival, response(req.Txn, rej.status, rej.msg))
		return
	}
	switch body := req.Body.(type) {
	case *bookiepb.Request_Add:
		b.add(st, req.Txn, body.Add, arrival, deadline)
	case *bookiepb.Request_Info:
		r := response(req.Txn, bookiepb.Status_STATUS_OK, "")
		r.Body = &bookiepb.Response_Info{Info: b.Info()}
		st.answer("info", arrival, r)
	default:
		b.reqs.Go(func() {
			ctx, cancel := context.WithDeadline(st.ctx, deadline)
			defer cancel()
			resp := b.handle(ctx, req)
			st.answer(opName(req), arrival, resp)
		})
	}
}

// reject answers a request that was not admitted.
func (st *stream) reject(req *bookiepb.Request, status bookiepb.Status, msg string) {
	select {
	case st.rejects <- struct{}{}:
	case <-st.ctx.Done():
		st.pending.Add(-1)
		return
	}
	st.b.met.count(opName(req), status)
	st.out <- outgoing{resp: response(req.Txn, status, msg)}
}

// answer queues the answer of an admitted request. Call it exactly once
// per admitted request.
func (st *stream) answer(op string, arrival time.Time, resp *bookiepb.Response) {
	b := st.b
	took := time.Since(arrival).Seconds()
	switch op {
	case "add":
		b.met.addSeconds.Observe(took)
	case "read":
		b.met.readSeconds.Observe(took)
	}
	b.met.count(op, resp.Status)
	st.out <- outgoing{resp: resp, admitted: true}
}

func response(txn uint64, status bookiepb.Status, msg string) *bookiepb.Response {
	return &bookiepb.Response{Txn: txn, Status: status, Message: msg}
}

func opName(req *bookiepb.Request) string {
	switch req.Body.(type) {
	case *bookiepb.Request_Add:
		return "add"
	case *bookiepb.Request_Read:
		return "read"
	case *bookiepb.Request_ReadLac:
		return "read-lac"
	case *bookiepb.Request_WriteLac:
		return "write-lac"
	case *bookiepb.Request_Delete:
		return "delete"
	case *bookiepb.Request_Info:
		return "info"
	}
	return "unknown"
}
