package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// Verdict is what a Proxy does with one message.
type Verdict int

const (
	// Pass forwards the message.
	Pass Verdict = iota + 1
	// Drop discards it: the other side never sees it (a lost packet that
	// the transport does not notice; the request's sender times out).
	Drop
	// Hold queues it until Release (a long delay under the test's control).
	Hold
)

// Proxy is a fault-injecting proxy for the bookie protocol. It serves the
// Bookie gRPC service (Batches) on its own loopback address and forwards
// every stream to a target bookie, one upstream stream per downstream
// stream. It sees every request and response of every batch: a filter may
// pass, drop or hold each one (per request, not per batch nor per TCP
// connection, which is what protocol faults such as "this fence request is
// lost but the next read arrives" need). The members of a batch that pass
// are forwarded together, in order, as one batch; a held member travels
// alone when released. Cut breaks every stream, as a connection reset
// would.
//
// Filters run on the proxy's forwarding goroutines: they must be fast and
// must not block; they may count or record what they see.
type Proxy struct {
	ln  net.Listener
	srv *grpc.Server
	wg  sync.WaitGroup // forwarding goroutines

	mu struct {
		sync.Mutex
		target     string
		cc         *grpc.ClientConn
		onRequest  func(*bookiepb.Request) Verdict
		onResponse func(*bookiepb.Response) Verdict
		held       []heldMessage
		streams    map[*proxyStream]struct{}
		closed     bool
	}
}

type heldMessage struct {
	s    *proxyStream
	req  *bookiepb.Request  // toward the bookie
	resp *bookiepb.Response // toward the client
}

// proxyStream is one client stream and its upstream twin.
type proxyStream struct {
	down   grpc.BidiStreamingServer[bookiepb.Requests, bookiepb.Responses]
	up     grpc.BidiStreamingClient[bookiepb.Requests, bookiepb.Responses]
	cancel context.CancelFunc
	downMu sync.Mutex // Send on a stream is not safe for concurrent use
	// ended is set (under downMu) when the handler returns: a server
	// stream must not be sent on afterwards.
	ended bool
	upMu  sync.Mutex
}

func (s *proxyStream) sendDown(rs []*bookiepb.Response) {
	if len(rs) == 0 {
		return
	}
	s.downMu.Lock()
	defer s.downMu.Unlock()
	if !s.ended {
		_ = s.down.Send(&bookiepb.Responses{Responses: rs}) // a broken stream ends through its Recv
	}
}

func (s *proxyStream) sendUp(rs []*bookiepb.Request) {
	if len(rs) == 0 {
		return
	}
	s.upMu.Lock()
	defer s.upMu.Unlock()
	_ = s.up.Send(&bookiepb.Requests{Requests: rs})
}

// NewProxy starts a proxy on a free loopback port forwarding to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cluster: proxy listen: %w", err)
	}
	p := &Proxy{ln: ln, srv: grpc.NewServer(grpc.MaxRecvMsgSize(64<<20), grpc.MaxSendMsgSize(64<<20))}
	p.mu.streams = make(map[*proxyStream]struct{})
	if err := p.SetTarget(target); err != nil {
		_ = ln.Close()
		return nil, err
	}
	bookiepb.RegisterBookieServer(p.srv, proxyService{p: p})
	p.wg.Go(func() { _ = p.srv.Serve(ln) })
	return p, nil
}

// Addr is the address clients dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the bookie address the proxy forwards to.
func (p *Proxy) Target() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.target
}

// SetTarget points the proxy at another bookie address (a bookie restarted
// on a new port). Existing streams are cut.
func (p *Proxy) SetTarget(target string) error {
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return fmt.Errorf("cluster: proxy target %s: %w", target, err)
	}
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		_ = cc.Close()
		return errors.New("cluster: proxy closed")
	}
	old := p.mu.cc
	p.mu.target, p.mu.cc = target, cc
	p.mu.Unlock()
	p.Cut()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

// OnRequest installs the request filter (nil passes everything).
func (p *Proxy) OnRequest(f func(*bookiepb.Request) Verdict) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.onRequest = f
}

// OnResponse installs the response filter (nil passes everything).
func (p *Proxy) OnResponse(f func(*bookiepb.Response) Verdict) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.onResponse = f
}

// Held returns the number of messages held.
func (p *Proxy) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.mu.held)
}

// Release forwards every held message, in the order they were held, on
// their streams (messages of streams that ended are dropped). Filters stay
// installed. It returns how many messages it forwarded.
func (p *Proxy) Release() int {
	p.mu.Lock()
	held := p.mu.held
	p.mu.held = nil
	live := make([]bool, len(held))
	for i, h := range held {
		_, live[i] = p.mu.streams[h.s]
	}
	p.mu.Unlock()
	n := 0
	for i, h := range held {
		if !live[i] {
			continue
		}
		if h.req != nil {
			h.s.sendUp([]*bookiepb.Request{h.req})
		} else {
			h.s.sendDown([]*bookiepb.Response{h.resp})
		}
		n++
	}
	return n
}

// Cut breaks every current stream (clients see the bookie unavailable and
// reconnect on their next request); held messages of those streams are
// dropped.
func (p *Proxy) Cut() {
	p.mu.Lock()
	streams := make([]*proxyStream, 0, len(p.mu.streams))
	for s := range p.mu.streams {
		streams = append(streams, s)
	}
	p.mu.Unlock()
	for _, s := range streams {
		s.cancel()
	}
}

// Close stops the proxy and waits for its goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return
	}
	p.mu.closed = true
	cc := p.mu.cc
	p.mu.Unlock()
	p.Cut()
	p.srv.Stop()
	p.wg.Wait()
	if cc != nil {
		_ = cc.Close()
	}
}

func (p *Proxy) requestVerdict(r *bookiepb.Request) Verdict {
	p.mu.Lock()
	f := p.mu.onRequest
	p.mu.Unlock()
	if f == nil {
		return Pass
	}
	return f(r)
}

func (p *Proxy) responseVerdict(r *bookiepb.Response) Verdict {
	p.mu.Lock()
	f := p.mu.onResponse
	p.mu.Unlock()
	if f == nil {
		return Pass
	}
	return f(r)
}

func (p *Proxy) hold(h heldMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.held = append(p.mu.held, h)
}

type proxyService struct {
	bookiepb.UnimplementedBookieServer
	p *Proxy
}

func (s proxyService) Batches(down grpc.BidiStreamingServer[bookiepb.Requests, bookiepb.Responses]) error {
	return s.p.serve(down)
}

func (p *Proxy) serve(down grpc.BidiStreamingServer[bookiepb.Requests, bookiepb.Responses]) error {
	ctx, cancel := context.WithCancel(down.Context())
	defer cancel()
	p.mu.Lock()
	cc, closed := p.mu.cc, p.mu.closed
	p.mu.Unlock()
	if closed {
		return status.Error(codes.Unavailable, "proxy closed")
	}
	up, err := bookiepb.NewBookieClient(cc).Batches(ctx)
	if err != nil {
		return status.Errorf(codes.Unavailable, "proxy: upstream %s: %v", p.Target(), err)
	}
	// Like a bookie, answer the client's open at once (it waits for the
	// headers), whether or not the target is up: requests then fail when
	// the upstream stream does.
	if err := down.SendHeader(nil); err != nil {
		return err
	}
	s := &proxyStream{down: down, up: up, cancel: cancel}
	errc := make(chan error, 2)
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return status.Error(codes.Unavailable, "proxy closed")
	}
	p.mu.streams[s] = struct{}{}
	// Added under mu, and never after Close set closed: Close's Wait
	// cannot race with these Adds.
	p.wg.Go(func() {
		for {
			m, err := up.Recv()
			if err != nil {
				errc <- err
				return
			}
			pass := m.Responses[:0]
			for _, resp := range m.Responses {
				switch p.responseVerdict(resp) {
				case Pass:
					pass = append(pass, resp)
				case Hold:
					p.hold(heldMessage{s: s, resp: resp})
				}
			}
			s.sendDown(pass)
		}
	})
	p.wg.Go(func() {
		for {
			m, err := down.Recv()
			if err != nil {
				errc <- err
				return
			}
			pass := m.Requests[:0]
			for _, req := range m.Requests {
				switch p.requestVerdict(req) {
				case Pass:
					pass = append(pass, req)
				case Hold:
					p.hold(heldMessage{s: s, req: req})
				}
			}
			s.sendUp(pass)
		}
	})
	p.mu.Unlock()
	select {
	case err = <-errc:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	p.mu.Lock()
	delete(p.mu.streams, s)
	p.mu.Unlock()
	s.downMu.Lock()
	s.ended = true
	s.downMu.Unlock()
	return status.Errorf(codes.Unavailable, "proxy: stream ended: %v", err)
}
