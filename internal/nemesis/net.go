package nemesis

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AnySource and AnyDest match every source or destination in SetLink.
const (
	AnySource = "*"
	AnyDest   = "*"
	// UnknownSource is the source of a connection to a shared listener
	// whose process could not be identified.
	UnknownSource = "?"
)

const (
	dialTimeout   = 5 * time.Second
	chunkBytes    = 32 << 10
	chunksInQueue = 256 // per direction: bounds what a delayed or paused link buffers (8 MiB)
)

// Fault is what a link does to the bytes between one source process and
// one destination server. Tx is the source→destination direction
// (requests), Rx the way back (answers). The zero Fault passes everything.
type Fault struct {
	// DropTx and DropRx discard bytes in that direction (a black hole: the
	// connection stays open and silent, like a partition the peers have not
	// detected yet). A connection that lost bytes never carries data in
	// that direction again (its byte stream has a hole) and is closed when
	// the fault is lifted, so the peers reconnect cleanly.
	DropTx, DropRx bool
	// PauseTx and PauseRx hold bytes and deliver them, in order, when the
	// fault is lifted (a link that stalls, then recovers).
	PauseTx, PauseRx bool
	// Delay is added to every chunk in both directions; Jitter adds up to
	// that much more at random. Order is kept.
	Delay, Jitter time.Duration
	// Refuse closes new connections at once and cuts existing ones (a
	// process that is down, or a port that is firewalled with reject).
	Refuse bool
}

// IsZero reports whether f passes everything.
func (f Fault) IsZero() bool { return f == Fault{} }

// String names the fault for logs and histories.
func (f Fault) String() string {
	var parts []string
	add := func(ok bool, s string) {
		if ok {
			parts = append(parts, s)
		}
	}
	add(f.DropTx && f.DropRx, "blackhole")
	add(f.DropTx && !f.DropRx, "drop-tx")
	add(f.DropRx && !f.DropTx, "drop-rx")
	add(f.PauseTx, "pause-tx")
	add(f.PauseRx, "pause-rx")
	add(f.Refuse, "refuse")
	if f.Delay > 0 || f.Jitter > 0 {
		parts = append(parts, fmt.Sprintf("delay=%v+%v", f.Delay, f.Jitter))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ",")
}

// Blackhole is a full partition of a link.
var Blackhole = Fault{DropTx: true, DropRx: true}

// NetConfig configures a Net.
type NetConfig struct {
	// Names maps the pid of a process to its name; it attributes
	// connections to a shared listener (Front.Addr) to their source
	// process. Nil, or a pid it does not know: the source is UnknownSource
	// (only wildcard rules apply). This process's own pid is always
	// SelfName.
	Names func() map[int]string
	// SelfName is the source name of this process's own connections to a
	// shared listener. Default "harness".
	SelfName string
	// Seed seeds the jitter. 0: random.
	Seed uint64
	// Logger receives one line per fault change; nil discards.
	Logger *slog.Logger
}

type linkKey struct{ src, dst string }

// Net is a set of TCP fault proxies on loopback, one Front per server. A
// client reaches a server through the server's Front, either on the shared
// listener (what the server advertises; the source process is found from
// the kernel's socket table) or on a listener of its own (AddrFor), and
// every connection belongs to the link (source, server). Faults are set
// per link and apply at once to live connections and new ones, so one
// process can be cut from etcd while it still reaches the bookies, or one
// direction of one pair dropped while every other pair works.
//
// Methods are safe for concurrent use. Close stops every listener and
// connection and waits for their goroutines.
type Net struct {
	cfg     NetConfig
	log     *slog.Logger
	selfPID int
	mu      struct {
		sync.Mutex
		fronts  map[string]*Front
		links   map[linkKey]Fault
		changed chan struct{} // closed and replaced on every fault change
		rng     *rand.Rand
		closed  bool
	}
	stats sync.Map // linkKey → *LinkStats
}

// LinkStats count what a link did.
type LinkStats struct {
	Conns        atomic.Int64
	BytesTx      atomic.Int64
	BytesRx      atomic.Int64
	DroppedTx    atomic.Int64
	DroppedRx    atomic.Int64
	ConnsCut     atomic.Int64
	ConnsRefused atomic.Int64
}

// NewNet returns an empty Net.
func NewNet(cfg NetConfig) *Net {
	if cfg.SelfName == "" {
		cfg.SelfName = "harness"
	}
	n := &Net{cfg: cfg, log: cfg.Logger, selfPID: os.Getpid()}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	n.mu.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n.mu.fronts = make(map[string]*Front)
	n.mu.links = make(map[linkKey]Fault)
	n.mu.changed = make(chan struct{})
	return n
}

// Front is the fault proxy in front of one server.
type Front struct {
	n    *Net
	name string
	wg   sync.WaitGroup
	mu   struct {
		sync.Mutex
		target    string
		overrides map[string]string // per-source target
		shared    net.Listener
		listeners map[string]net.Listener // per source
		conns     map[*proxyConn]struct{}
		closed    bool
	}
}

// AddFront starts a fault proxy for the server called name (a process
// name, e.g. "bookie-1") listening at target, with a shared listener on a
// free loopback port. target may be empty until the server runs
// (SetTarget); connections are then refused.
func (n *Net) AddFront(name, target string) (*Front, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return nil, ErrClosed
	}
	if _, ok := n.mu.fronts[name]; ok {
		return nil, fmt.Errorf("nemesis: front %q exists", name)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &Front{n: n, name: name}
	f.mu.target = target
	f.mu.shared = ln
	f.mu.listeners = make(map[string]net.Listener)
	f.mu.overrides = make(map[string]string)
	f.mu.conns = make(map[*proxyConn]struct{})
	n.mu.fronts[name] = f
	f.wg.Go(func() { f.accept(ln, "") })
	return f, nil
}

// Front returns the named front, or nil.
func (n *Net) Front(name string) *Front {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.fronts[name]
}

// Name returns the server's name.
func (f *Front) Name() string { return f.name }

// Addr returns the shared listener's address (host:port): what the server
// should advertise.
func (f *Front) Addr() string { return f.mu.shared.Addr().String() }

// AddrFor returns the address of a listener only src uses, creating it on
// first use: connections to it belong to link (src, server) without any
// lookup.
func (f *Front) AddrFor(src string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.closed {
		return "", ErrClosed
	}
	if ln, ok := f.mu.listeners[src]; ok {
		return ln.Addr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	f.mu.listeners[src] = ln
	f.wg.Go(func() { f.accept(ln, src) })
	return ln.Addr().String(), nil
}

// Target returns the server's real address.
func (f *Front) Target() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.target
}

// SetTarget changes the server's real address for new connections (after
// a restart on another port). Live connections are not moved.
func (f *Front) SetTarget(target string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.target = target
}

// SetSourceTarget sends new connections of src to target instead of the
// server (e.g. through a protocol-aware proxy that drops chosen
// messages); "" undoes it. Live connections of src are cut, so the
// client reconnects along the new path.
func (f *Front) SetSourceTarget(src, target string) {
	f.mu.Lock()
	if target == "" {
		delete(f.mu.overrides, src)
	} else {
		f.mu.overrides[src] = target
	}
	var cut []*proxyConn
	for c := range f.mu.conns {
		if c.src == src {
			cut = append(cut, c)
		}
	}
	f.mu.Unlock()
	for _, c := range cut {
		c.close()
	}
}

func (f *Front) targetFor(src string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t, ok := f.mu.overrides[src]; ok {
		return t
	}
	return f.mu.target
}

// Close stops the front's listeners and connections and waits for them.
func (f *Front) Close() {
	f.mu.Lock()
	if f.mu.closed {
		f.mu.Unlock()
		f.wg.Wait()
		return
	}
	f.mu.closed = true
	f.mu.shared.Close()
	for _, ln := range f.mu.listeners {
		ln.Close()
	}
	conns := make([]*proxyConn, 0, len(f.mu.conns))
	for c := range f.mu.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	f.wg.Wait()
}

// Close closes every front.
func (n *Net) Close() {
	n.mu.Lock()
	n.mu.closed = true
	fronts := make([]*Front, 0, len(n.mu.fronts))
	for _, f := range n.mu.fronts {
		fronts = append(fronts, f)
	}
	n.mu.Unlock()
	for _, f := range fronts {
		f.Close()
	}
}

// SetLink sets the fault of link src→dst (AnySource / AnyDest match
// everything; an exact rule wins over a wildcard one). The zero Fault
// heals the link. Connections that lost bytes to an earlier fault are
// closed once their link no longer drops.
func (n *Net) SetLink(src, dst string, f Fault) {
	n.mu.Lock()
	k := linkKey{src, dst}
	if f.IsZero() {
		delete(n.mu.links, k)
	} else {
		n.mu.links[k] = f
	}
	close(n.mu.changed)
	n.mu.changed = make(chan struct{})
	n.mu.Unlock()
	n.log.Info("link fault", "src", src, "dst", dst, "fault", f.String())
	n.reconcile()
}

// Partition cuts every link between a process of side a and a server of
// side b and between a process of b and a server of a (both directions
// black-holed).
func (n *Net) Partition(a, b []string) {
	for _, x := range a {
		for _, y := range b {
			n.SetLink(x, y, Blackhole)
			n.SetLink(y, x, Blackhole)
		}
	}
}

// HealAll removes every fault.
func (n *Net) HealAll() {
	n.mu.Lock()
	n.mu.links = make(map[linkKey]Fault)
	close(n.mu.changed)
	n.mu.changed = make(chan struct{})
	n.mu.Unlock()
	n.log.Info("link faults healed")
	n.reconcile()
}

// Faults returns the current faults as "src->dst: fault" lines, sorted.
func (n *Net) Faults() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.mu.links))
	for k, f := range n.mu.links {
		out = append(out, fmt.Sprintf("%s->%s: %s", k.src, k.dst, f))
	}
	sort.Strings(out)
	return out
}

// Stats returns the counters of link src→dst.
func (n *Net) Stats(src, dst string) *LinkStats {
	v, _ := n.stats.LoadOrStore(linkKey{src, dst}, &LinkStats{})
	return v.(*LinkStats)
}

// Cut closes every live connection of link src→dst (wildcards allowed):
// the peers see a reset and reconnect.
func (n *Net) Cut(src, dst string) {
	for _, f := range n.frontsSnapshot() {
		if dst != AnyDest && f.name != dst {
			continue
		}
		for _, c := range f.connsSnapshot() {
			if src == AnySource || c.src == src {
				n.Stats(c.src, f.name).ConnsCut.Add(1)
				c.close()
			}
		}
	}
}

func (n *Net) frontsSnapshot() []*Front {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Front, 0, len(n.mu.fronts))
	for _, f := range n.mu.fronts {
		out = append(out, f)
	}
	return out
}

func (f *Front) connsSnapshot() []*proxyConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*proxyConn, 0, len(f.mu.conns))
	for c := range f.mu.conns {
		out = append(out, c)
	}
	return out
}

// link returns the fault of src→dst and a channel closed at the next
// change.
func (n *Net) link(src, dst string) (Fault, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range [...]linkKey{{src, dst}, {AnySource, dst}, {src, AnyDest}, {AnySource, AnyDest}} {
		if f, ok := n.mu.links[k]; ok {
			return f, n.mu.changed
		}
	}
	return Fault{}, n.mu.changed
}

func (n *Net) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return time.Duration(n.mu.rng.Int64N(int64(d) + 1))
}

// reconcile closes connections whose hole can now be seen (their link no
// longer drops in a direction that lost bytes) and those of refusing
// links.
func (n *Net) reconcile() {
	for _, f := range n.frontsSnapshot() {
		for _, c := range f.connsSnapshot() {
			fault, _ := n.link(c.src, f.name)
			switch {
			case fault.Refuse,
				c.holeTx.Load() && !fault.DropTx,
				c.holeRx.Load() && !fault.DropRx:
				n.Stats(c.src, f.name).ConnsCut.Add(1)
				c.close()
			}
		}
	}
}

func (f *Front) accept(ln net.Listener, src string) {
	for {
		cl, err := ln.Accept()
		if err != nil {
			return
		}
		s := src
		if s == "" {
			s = f.n.sourceOf(cl)
		}
		c := &proxyConn{f: f, src: s, client: cl, done: make(chan struct{})}
		f.mu.Lock()
		if f.mu.closed {
			f.mu.Unlock()
			cl.Close()
			return
		}
		f.mu.conns[c] = struct{}{}
		f.mu.Unlock()
		f.wg.Go(c.run)
	}
}

// sourceOf names the process at the other end of a loopback connection to
// a shared listener.
func (n *Net) sourceOf(c net.Conn) string {
	ra, ok1 := c.RemoteAddr().(*net.TCPAddr)
	la, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return UnknownSource
	}
	names := map[int]string{}
	if n.cfg.Names != nil {
		names = n.cfg.Names()
	}
	pids := make([]int, 0, len(names)+1)
	pids = append(pids, n.selfPID)
	for pid := range names {
		pids = append(pids, pid)
	}
	pid, err := socketOwner(ra.Port, la.Port, pids)
	switch {
	case err != nil:
		n.log.Debug("connection source unknown", "remote", ra.String(), "err", err)
		return UnknownSource
	case pid == n.selfPID:
		return n.cfg.SelfName
	}
	if name, ok := names[pid]; ok {
		return name
	}
	return UnknownSource
}

// proxyConn is one client connection and, unless its link was black-holed
// or refused when it arrived, its connection to the server.
type proxyConn struct {
	f      *Front
	src    string
	client net.Conn
	server net.Conn // set before the pumps start
	holeTx atomic.Bool
	holeRx atomic.Bool
	once   sync.Once
	done   chan struct{}
}

func (c *proxyConn) close() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		if c.server != nil {
			c.server.Close()
		}
	})
}

func (c *proxyConn) run() {
	n, f := c.f.n, c.f
	defer func() {
		c.close()
		f.mu.Lock()
		delete(f.mu.conns, c)
		f.mu.Unlock()
	}()
	st := n.Stats(c.src, f.name)
	st.Conns.Add(1)
	fault, _ := n.link(c.src, f.name)
	if fault.Refuse {
		st.ConnsRefused.Add(1)
		return
	}
	if fault.DropTx && fault.DropRx {
		// A partition when the connection is made: nothing reaches the
		// server; the client waits in silence until the partition heals
		// (then reconcile closes this connection) or it gives up.
		c.holeTx.Store(true)
		c.holeRx.Store(true)
		n, _ := io.Copy(io.Discard, c.client)
		st.DroppedTx.Add(n)
		return
	}
	target := f.targetFor(c.src)
	if target == "" {
		st.ConnsRefused.Add(1)
		return
	}
	srv, err := net.DialTimeout("tcp", target, dialTimeout)
	if err != nil {
		st.ConnsRefused.Add(1)
		return
	}
	select {
	case <-c.done: // closed while dialling
		srv.Close()
		return
	default:
	}
	c.server = srv
	select { // close may have run between the check and the assignment
	case <-c.done:
		srv.Close()
		return
	default:
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.pump(c.client, srv, true, st) })
	wg.Go(func() { c.pump(srv, c.client, false, st) })
	wg.Wait()
}

type chunk struct {
	b   []byte
	due time.Time
}

// pump copies one direction through a bounded queue: the reader stamps
// each chunk with its delivery time, the writer waits for it, for a pause
// to end, or drops it.
func (c *proxyConn) pump(from, to net.Conn, tx bool, st *LinkStats) {
	q := make(chan chunk, chunksInQueue)
	n, name := c.f.n, c.f.name
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(q)
		buf := make([]byte, chunkBytes)
		var last time.Time
		for {
			k, err := from.Read(buf)
			if k > 0 {
				fault, _ := n.link(c.src, name)
				due := time.Now()
				if d := fault.Delay + n.jitter(fault.Jitter); d > 0 {
					due = due.Add(d)
				}
				if due.Before(last) {
					due = last
				}
				last = due
				select {
				case q <- chunk{b: append([]byte(nil), buf[:k]...), due: due}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				c.close()
				return
			}
		}
	})
	hole := &c.holeRx
	dropped, bytes := &st.DroppedRx, &st.BytesRx
	if tx {
		hole, dropped, bytes = &c.holeTx, &st.DroppedTx, &st.BytesTx
	}
	for ch := range q {
		if d := time.Until(ch.due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-c.done:
				t.Stop()
			}
		}
		for {
			fault, changed := n.link(c.src, name)
			drop, pause := fault.DropRx, fault.PauseRx
			if tx {
				drop, pause = fault.DropTx, fault.PauseTx
			}
			if hole.Load() || drop {
				hole.Store(true)
				dropped.Add(int64(len(ch.b)))
				break
			}
			if pause {
				select {
				case <-changed:
					continue
				case <-c.done:
				}
				break
			}
			if _, err := to.Write(ch.b); err != nil {
				c.close()
			} else {
				bytes.Add(int64(len(ch.b)))
			}
			break
		}
	}
	wg.Wait()
}

// ErrNoSocketOwner: no candidate process holds the socket.
var ErrNoSocketOwner = errors.New("nemesis: socket owner not found")
