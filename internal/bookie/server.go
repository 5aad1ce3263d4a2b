package bookie

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// rejectSlots bounds the responses to refused requests (OVERLOADED,
// SHUTTING_DOWN) queued on one stream at once; beyond it the receive loop
// waits, which stops reading from the client (back-pressure).
const rejectSlots = 16

// maxBatchBytes bounds the encoded responses the sender puts in one
// Responses message (a single larger response travels alone). The client
// bounds its Requests the same way (see the .proto's framing rules).
const maxBatchBytes = 32 << 10

// service adapts a Bookie to the generated gRPC interface.
type service struct {
	bookiepb.UnimplementedBookieServer
	b *Bookie
}

// Batches serves a client stream. The response headers go out at once:
// the client waits for them to tell that it is served.
func (s service) Batches(gs grpc.BidiStreamingServer[bookiepb.Requests, bookiepb.Responses]) error {
	if err := gs.SendHeader(nil); err != nil {
		return err
	}
	return s.b.serveStream(gs.Context(), batchWire{gs})
}

// wire is one stream's framing (Batches: batches of requests and
// responses); tests may serve other framings through it.
type wire interface {
	// recv returns the next requests, in order; the slice is the wire's.
	recv() ([]*bookiepb.Request, error)
	// send sends every response, in as few messages as the framing allows.
	send([]*bookiepb.Response) error
}

type batchWire struct {
	gs grpc.BidiStreamingServer[bookiepb.Requests, bookiepb.Responses]
}

func (w batchWire) recv() ([]*bookiepb.Request, error) {
	m, err := w.gs.Recv()
	if err != nil {
		return nil, err
	}
	return m.Requests, nil
}

func (w batchWire) send(rs []*bookiepb.Response) error {
	for len(rs) > 0 {
		n, size := 1, responseBytes(rs[0])
		for n < len(rs) {
			s := responseBytes(rs[n])
			if size+s > maxBatchBytes {
				break
			}
			size += s
			n++
		}
		if err := w.gs.Send(&bookiepb.Responses{Responses: rs[:n]}); err != nil {
			return err
		}
		rs = rs[n:]
	}
	return nil
}

// responseBytes bounds a response's encoded size from above: its variable
// parts plus room for every fixed field and tag.
func responseBytes(r *bookiepb.Response) int {
	n := 96 + len(r.Message)
	switch b := r.Body.(type) {
	case *bookiepb.Response_Read:
		n += len(b.Read.GetEntry().GetPayload())
	case *bookiepb.Response_ReadLac:
		n += len(b.ReadLac.GetEntry().GetPayload())
	case *bookiepb.Response_Info:
		n += 256 + len(b.Info.GetBookieId()) + len(b.Info.GetInstanceId()) + len(b.Info.GetRegion()) +
			len(b.Info.GetRack()) + len(b.Info.GetReadOnlyReason())
	}
	return n
}

// stream is one client stream. Requests are received by one goroutine,
// answers are sent by the handler goroutine (gRPC's Send is not safe for
// concurrent use), which takes every answer queued in out at once and sends
// them as one batch. out never blocks a producer: at most
// MaxInFlightPerStream admitted requests plus rejectSlots refused ones are
// unanswered at once.
type stream struct {
	b   *Bookie
	ctx context.Context

	rejects  chan struct{} // semaphore of rejectSlots
	inFlight atomic.Int64  // admitted, not yet sent
	pending  atomic.Int64  // admitted or refused, not yet sent

	// wake tells the sender that out went from empty to non-empty (cap 1,
	// coalescing).
	wake chan struct{}
	out  struct {
		sync.Mutex
		q []outgoing
	}

	// timeouts answers the adds whose deadline passes first.
	timeouts addTimeouts
	// rec is the receive loop's scratch for journal records (the journal
	// copies a record before Append returns).
	rec []byte
}

type outgoing struct {
	resp     *bookiepb.Response
	admitted bool // holds an in-flight slot (else a reject slot)
}

// maxScratchBytes: a scratch buffer grown beyond this by a large entry is
// dropped rather than kept.
const maxScratchBytes = 1 << 20

func (b *Bookie) serveStream(ctx context.Context, w wire) error {
	st := &stream{
		b:       b,
		ctx:     ctx,
		rejects: make(chan struct{}, rejectSlots),
		wake:    make(chan struct{}, 1),
	}
	b.streams.Lock()
	b.streams.m[st] = struct{}{}
	b.streams.Unlock()
	defer func() {
		b.streams.Lock()
		delete(b.streams.m, st)
		b.streams.Unlock()
	}()
	recvDone := make(chan error, 1)
	b.reqs.Go(func() { recvDone <- st.receive(w) })
	stopc := b.stopc
	var (
		recvErr  error
		draining bool
		batch    []outgoing
		resps    []*bookiepb.Response
	)
	for {
		if draining && st.pending.Load() == 0 {
			return recvErr
		}
		select {
		case <-st.wake:
			// Let the goroutines that are ready to run go first: under
			// load they are about to queue more answers (the journal's
			// callbacks), which then leave in this message. With nothing
			// else to run this returns at once.
			runtime.Gosched()
			batch = st.takeOut(batch[:0])
			if len(batch) == 0 {
				continue
			}
			resps = resps[:0]
			admitted := int64(0)
			for _, o := range batch {
				resps = append(resps, o.resp)
				if o.admitted {
					admitted++
				}
			}
			err := w.send(resps)
			clear(resps)
			st.inFlight.Add(-admitted)
			for range int64(len(batch)) - admitted {
				<-st.rejects
			}
			st.pending.Add(-int64(len(batch)))
			clear(batch)
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

// takeOut moves every queued answer to dst.
func (st *stream) takeOut(dst []outgoing) []outgoing {
	st.out.Lock()
	dst, st.out.q = st.out.q, dst
	st.out.Unlock()
	return dst
}

// push queues an answer for the sender.
func (st *stream) push(o outgoing) {
	st.out.Lock()
	first := len(st.out.q) == 0
	st.out.q = append(st.out.q, o)
	st.out.Unlock()
	if first {
		select {
		case st.wake <- struct{}{}:
		default:
		}
	}
}

// receive reads requests until the client closes its side or the stream
// ends. Every member of a batch shares the batch's arrival time.
func (st *stream) receive(w wire) error {
	for {
		reqs, err := w.recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		arrival := time.Now()
		for _, req := range reqs {
			st.dispatch(req, arrival)
		}
		if cap(st.rec) > maxScratchBytes {
			st.rec = nil
		}
	}
}

// dispatch admits a request and starts handling it: adds and info inline
// (they never block), the rest on a goroutine of its own (bounded by the
// in-flight limit).
func (st *stream) dispatch(req *bookiepb.Request, arrival time.Time) {
	b := st.b
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
	timeout := b.cfg.DefaultRequestTimeout
	if req.TimeoutMs > 0 {
		timeout = min(time.Duration(req.TimeoutMs)*time.Millisecond, b.cfg.MaxRequestTimeout)
	}
	deadline := arrival.Add(timeout)
	if rej := validateRequest(req, b.cfg.MaxEntryBytes); rej != nil {
		st.answer(opOf(req), arrival, response(req.Txn, rej.status, rej.msg))
		return
	}
	if want := req.ExpectedBookieId; want != "" && want != b.cfg.ID {
		// Meant for another bookie (a new identity at an old member's
		// address): do nothing, so that the sender replaces that member.
		st.answer(opOf(req), arrival, response(req.Txn, bookiepb.Status_STATUS_WRONG_BOOKIE,
			fmt.Sprintf("this is bookie %s, not %s", b.cfg.ID, want)))
		return
	}
	switch body := req.Body.(type) {
	case *bookiepb.Request_Add:
		b.add(st, req.Txn, body.Add, arrival, deadline)
	case *bookiepb.Request_Info:
		r := response(req.Txn, bookiepb.Status_STATUS_OK, "")
		r.Body = &bookiepb.Response_Info{Info: b.Info()}
		st.answer(opInfo, arrival, r)
	default:
		b.reqs.Go(func() {
			ctx, cancel := context.WithDeadline(st.ctx, deadline)
			defer cancel()
			resp := b.handle(ctx, req)
			st.answer(opOf(req), arrival, resp)
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
	st.b.met.count(opOf(req), status)
	st.push(outgoing{resp: response(req.Txn, status, msg)})
}

// answer queues the answer of an admitted request. Call it exactly once
// per admitted request.
func (st *stream) answer(o op, arrival time.Time, resp *bookiepb.Response) {
	b := st.b
	switch o {
	case opAdd:
		b.met.addSeconds.Observe(time.Since(arrival).Seconds())
	case opRead:
		b.met.readSeconds.Observe(time.Since(arrival).Seconds())
	}
	b.met.count(o, resp.Status)
	st.push(outgoing{resp: resp, admitted: true})
}

// inFlightRequests is the dlog_bookie_requests_in_flight gauge: requests
// admitted on every stream and not yet answered.
func (b *Bookie) inFlightRequests() float64 {
	b.streams.Lock()
	defer b.streams.Unlock()
	var n int64
	for st := range b.streams.m {
		n += st.inFlight.Load()
	}
	return float64(n)
}

// response makes an answer. A message that is not valid UTF-8 (a path in
// an error, say) is repaired: protobuf refuses to send such a string, and
// the whole stream would fail.
func response(txn uint64, status bookiepb.Status, msg string) *bookiepb.Response {
	if !utf8.ValidString(msg) {
		msg = strings.ToValidUTF8(msg, "\uFFFD")
	}
	return &bookiepb.Response{Txn: txn, Status: status, Message: msg}
}

// op is a request type, for metrics.
type op uint8

const (
	opUnknown op = iota
	opAdd
	opRead
	opReadLAC
	opWriteLAC
	opDelete
	opInfo
	opCount // number of ops
)

var opNames = [opCount]string{"unknown", "add", "read", "read-lac", "write-lac", "delete", "info"}

func (o op) String() string { return opNames[o] }

func opOf(req *bookiepb.Request) op {
	switch req.Body.(type) {
	case *bookiepb.Request_Add:
		return opAdd
	case *bookiepb.Request_Read:
		return opRead
	case *bookiepb.Request_ReadLac:
		return opReadLAC
	case *bookiepb.Request_WriteLac:
		return opWriteLAC
	case *bookiepb.Request_Delete:
		return opDelete
	case *bookiepb.Request_Info:
		return opInfo
	}
	return opUnknown
}
