package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/api/dlogpb/dlogpbconnect"
	"github.com/dlog-io/dlog/internal/proxy/status"
)

// Client talks to dlog proxies. It is safe for concurrent use; share one
// per process (views from Namespace share it too).
type Client struct {
	*core
	ns string
}

// core is what every namespace view of a client shares.
type core struct {
	cfg       Config
	log       *slog.Logger
	https     []*http.Client    // Config.Connections clients, each its own connections
	ownsHTTP  []*http.Transport // transports the client made (closed by Close)
	next      atomic.Uint64     // round robin over https
	producers *producerPool

	bg     context.Context // ended by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	redirects atomic.Int64

	bmu      sync.Mutex          // after batcher.mu
	batchers map[string]*batcher // "<ns>/<log>" → its write coalescer

	mu struct {
		sync.Mutex
		stubs    map[string]proxyStubs
		owners   map[string]string // "<ns>/<log>" → owner address
		ring     *ring             // every live proxy
		accept   map[string]bool   // proxies taking new logs
		blackout map[string]time.Time
		closed   bool
	}
}

type stubs struct {
	log   dlogpbconnect.LogServiceClient
	admin dlogpbconnect.AdminServiceClient
}

// proxyStubs are a proxy's stubs over each of the client's connections:
// one HTTP/2 connection serialises its streams' frames under one lock, so
// many concurrent calls go faster over a few connections.
type proxyStubs []*stubs

// New returns a client of the proxies in cfg.Servers. With discovery it
// asks them for every live proxy (a failure is not fatal: it tries again
// in the background) and refreshes the list every DiscoveryInterval.
// Errors: dlog.ErrInvalidArgument for a bad Config.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	c := &core{cfg: cfg, log: cfg.Logger}
	if cfg.HTTPClient != nil {
		c.https = []*http.Client{cfg.HTTPClient}
	} else {
		for range cfg.Connections {
			tr := newTransport()
			c.ownsHTTP = append(c.ownsHTTP, tr)
			c.https = append(c.https, &http.Client{Transport: tr})
		}
	}
	prefix := cfg.ProducerIDPrefix
	if prefix == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		prefix = "c-" + hex.EncodeToString(b[:])
	}
	c.producers = newProducerPool(prefix, cfg.MaxProducers)
	c.batchers = make(map[string]*batcher)
	c.mu.stubs = make(map[string]proxyStubs)
	c.mu.owners = make(map[string]string)
	c.mu.blackout = make(map[string]time.Time)
	c.setProxies(cfg.Servers, nil)
	c.bg, c.cancel = context.WithCancel(context.Background())
	if cfg.DiscoveryInterval > 0 {
		c.discover(ctx)
		c.wg.Go(c.discoveryLoop)
	}
	return &Client{core: c, ns: cfg.Namespace}, nil
}

// newTransport speaks cleartext HTTP/2 (what gRPC needs), opening more
// connections when a proxy's stream limit is reached, and pings idle
// connections so that a dead proxy is noticed.
func newTransport() *http.Transport {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	return &http.Transport{
		Protocols:           &protos,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: 15 * time.Second, PingTimeout: 10 * time.Second},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     5 * time.Minute,
	}
}

// Namespace returns a view of the client on another namespace; it shares
// connections, routing and Close with c.
func (c *Client) Namespace(name string) *Client { return &Client{core: c.core, ns: name} }

// Close stops discovery and closes idle connections (of a transport the
// client made). Readers should be closed first. Safe to call twice.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	for _, tr := range c.ownsHTTP {
		tr.CloseIdleConnections()
	}
	return nil
}

// Redirects is how many redirects the client has followed.
func (c *Client) Redirects() int64 { return c.redirects.Load() }

// stubsFor returns RPC stubs of a proxy, taking its connections in turn.
func (c *core) stubsFor(addr string) *stubs {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.mu.stubs[addr]
	if ps == nil {
		ps = c.newStubsLocked(addr)
		c.mu.stubs[addr] = ps
	}
	return ps[c.next.Add(1)%uint64(len(ps))]
}

func (c *core) newStubsLocked(addr string) proxyStubs {
	opts := []connect.ClientOption{
		connect.WithReadMaxBytes(c.cfg.MaxMessageBytes),
		connect.WithSendMaxBytes(c.cfg.MaxMessageBytes),
		// No gzip: proxies and clients usually share a fast network, and
		// gzip's per-message cost dominates small messages.
		connect.WithAcceptCompression("gzip", nil, nil),
	}
	switch c.cfg.Protocol {
	case "grpc":
		opts = append(opts, connect.WithGRPC())
	case "grpcweb":
		opts = append(opts, connect.WithGRPCWeb())
	}
	base := "http://" + addr
	out := make(proxyStubs, len(c.https))
	for i, h := range c.https {
		out[i] = &stubs{
			log:   dlogpbconnect.NewLogServiceClient(h, base, opts...),
			admin: dlogpbconnect.NewAdminServiceClient(h, base, opts...),
		}
	}
	return out
}

// setProxies installs a new ring (accept nil: every proxy accepts).
func (c *core) setProxies(addrs []string, accept map[string]bool) {
	r := newRing(addrs, c.cfg.VirtualNodes)
	c.mu.Lock()
	c.mu.ring = r
	c.mu.accept = accept
	c.mu.Unlock()
}

// discover asks the known proxies, one after the other, for the live
// ones.
func (c *core) discover(ctx context.Context) {
	c.mu.Lock()
	known := slices.Clone(c.mu.ring.hosts)
	c.mu.Unlock()
	for _, s := range c.cfg.Servers {
		if !slices.Contains(known, s) {
			known = append(known, s)
		}
	}
	for _, addr := range known {
		if c.blackedOut(addr) {
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := c.stubsFor(addr).admin.ListProxies(actx, connect.NewRequest(&dlogpb.ListProxiesRequest{}))
		cancel()
		if err != nil {
			if status.IsTransport(status.FromConnect(err, "")) {
				c.blackout(addr)
			}
			c.log.Debug("discovery", "proxy", addr, "err", err)
			continue
		}
		var addrs []string
		accept := make(map[string]bool)
		for _, p := range resp.Msg.GetProxies() {
			if p.GetAddress() != "" {
				addrs = append(addrs, p.GetAddress())
				accept[p.GetAddress()] = p.GetAcceptNewLogs()
			}
		}
		if len(addrs) > 0 {
			c.setProxies(addrs, accept)
		}
		return
	}
}

func (c *core) discoveryLoop() {
	t := time.NewTicker(c.cfg.DiscoveryInterval)
	defer t.Stop()
	for {
		select {
		case <-c.bg.Done():
			return
		case <-t.C:
			c.discover(c.bg)
		}
	}
}

func (c *core) blackout(addr string) {
	if c.cfg.Blackout <= 0 {
		return
	}
	c.mu.Lock()
	c.mu.blackout[addr] = time.Now().Add(c.cfg.Blackout)
	c.mu.Unlock()
	c.log.Debug("proxy blacked out", "proxy", addr, "for", c.cfg.Blackout)
}

func (c *core) blackedOut(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.mu.blackout[addr]
	if ok && time.Now().After(until) {
		delete(c.mu.blackout, addr)
		return false
	}
	return ok
}

// route says how a call picks its proxy.
type route int

const (
	// routeOwner: the log's owner (ownership cache, then the ring among
	// proxies taking new logs), following redirects.
	routeOwner route = iota + 1
	// routeAny: any proxy, by the ring (reads, metadata).
	routeAny
)

// pick chooses the proxy of the next attempt.
func (c *core) pick(key string, rt route, tried map[string]bool) string {
	c.mu.Lock()
	if rt == routeOwner {
		if o, ok := c.mu.owners[key]; ok && !tried[o] {
			c.mu.Unlock()
			return o
		}
	}
	r, accept := c.mu.ring, c.mu.accept
	now := time.Now()
	dark := func(h string) bool { u, ok := c.mu.blackout[h]; return ok && now.Before(u) }
	pickWith := func(skip func(string) bool) string { return r.pick(key, skip) }
	var addr string
	if rt == routeOwner && accept != nil {
		addr = pickWith(func(h string) bool { return tried[h] || dark(h) || !accept[h] })
	}
	if addr == "" {
		addr = pickWith(func(h string) bool { return tried[h] || dark(h) })
	}
	if addr == "" {
		// Everything left is blacked out: better a proxy that may be back
		// than none.
		addr = pickWith(func(h string) bool { return tried[h] })
	}
	c.mu.Unlock()
	return addr
}

func (c *core) setOwner(key, addr string) {
	c.mu.Lock()
	c.mu.owners[key] = addr
	c.mu.Unlock()
}

func (c *core) forgetOwner(key, addr string) {
	c.mu.Lock()
	if addr == "" || c.mu.owners[key] == addr {
		delete(c.mu.owners, key)
	}
	c.mu.Unlock()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call runs fn against proxies until it succeeds, fails definitely, or
// the attempts, redirects or ctx run out. key is "<ns>/<log>" (the ring
// key; "" for calls about no log). safe says whether a call whose outcome
// is unknown may be sent again (reads, idempotent writes). It returns the
// proxy that answered.
func (c *core) call(ctx context.Context, key string, rt route, safe bool, fn func(ctx context.Context, s *stubs) error) (string, error) {
	tried := make(map[string]bool)
	redirects := 0
	backoff := c.cfg.RetryBackoffMin
	var lastErr error
	wait := func() error {
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, c.cfg.RetryBackoffMax)
		return nil
	}
	for attempt := 0; attempt < c.cfg.MaxAttempts; attempt++ {
		if ctx.Err() != nil {
			break
		}
		addr := c.pick(key, rt, tried)
		if addr == "" {
			// Every proxy was tried: pause, then go around again.
			clear(tried)
			if wait() != nil {
				break
			}
			continue
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if d := c.cfg.AttemptTimeout; d > 0 {
			if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > d {
				actx, cancel = context.WithTimeout(ctx, d)
			}
		}
		err := status.FromConnect(fn(actx, c.stubsFor(addr)), key)
		cancel()
		if err == nil {
			if rt == routeOwner {
				c.setOwner(key, addr)
			}
			return addr, nil
		}
		lastErr = err
		var se *status.Error
		errors.As(err, &se)
		switch {
		case se != nil && se.Code == dlogpb.Code_CODE_REDIRECT:
			redirects++
			c.redirects.Add(1)
			if redirects > c.cfg.MaxRedirects {
				return addr, err
			}
			c.forgetOwner(key, addr)
			loc := se.Location
			if loc == "" || loc == addr {
				tried[addr] = true
				continue
			}
			c.setOwner(key, loc)
			delete(tried, loc)
			if c.blackedOut(loc) {
				// The owner is unreachable but still holds the log: its
				// lease has to end first.
				if wait() != nil {
					return addr, err
				}
			}
		case se != nil && se.Code == dlogpb.Code_CODE_STREAM_UNAVAILABLE:
			c.forgetOwner(key, addr)
			tried[addr] = true
		case status.IsTransport(err):
			c.blackout(addr)
			c.forgetOwner(key, addr)
			tried[addr] = true
			if !safe {
				return addr, err
			}
		case !dlog.IsDefinite(err):
			c.forgetOwner(key, addr)
			if !safe || ctx.Err() != nil {
				return addr, err
			}
			if wait() != nil {
				return addr, err
			}
		default:
			return addr, err
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("%w: no proxy answered: %w", dlog.ErrUnavailable, ctx.Err())
	}
	return "", lastErr
}

// logKey is the routing key of a log in the client's namespace.
func (c *Client) logKey(log string) string {
	ns := c.ns
	if ns == "" {
		ns = "default"
	}
	return ns + "/" + log
}

func (c *Client) ref(log string) *dlogpb.LogRef {
	return &dlogpb.LogRef{Namespace: c.ns, Log: log}
}
