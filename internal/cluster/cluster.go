package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/metadata"
)

// registerTimeout bounds the wait for a started bookie's registration.
const registerTimeout = 30 * time.Second

// Config describes a test cluster.
type Config struct {
	// Bookies is the number of bookies Start starts. Default 3.
	Bookies int
	// Dir holds everything: one directory per bookie (bookie-<i>) and the
	// embedded etcd's data. Required (a t.TempDir()).
	Dir string
	// Metadata is "memory:" (the in-memory store, default) or "embedded:"
	// (a real single-member etcd in Dir/etcd, on a free loopback port).
	Metadata string
	// Proxies puts a fault-injecting Proxy in front of every bookie; the
	// bookie advertises (registers) the proxy's address, so every client
	// goes through it. Default true.
	Proxies bool
	// SessionTTL is the bookies' metadata lease. A stopped bookie removes
	// its registration at once; the TTL matters only for lost sessions.
	// Default 2 s (minimum 1 s).
	SessionTTL time.Duration
	// Bookie, when set, adjusts each bookie's configuration (index i)
	// before it starts, e.g. region and rack labels.
	Bookie func(i int, cfg *bookie.Config)
	// Logger receives the bookies' and the metadata store's logs; nil
	// discards.
	Logger *slog.Logger
}

// DefaultConfig returns three proxied bookies on the in-memory store in dir.
func DefaultConfig(dir string) Config {
	return Config{Bookies: 3, Dir: dir, Metadata: "memory:", Proxies: true, SessionTTL: 2 * time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Bookies < 0:
		return fmt.Errorf("cluster: %d bookies", c.Bookies)
	case c.Dir == "":
		return errors.New("cluster: Dir is empty")
	case c.Metadata != "memory:" && c.Metadata != "embedded:":
		return fmt.Errorf("cluster: metadata %q: want memory: or embedded:", c.Metadata)
	case c.SessionTTL < time.Second:
		return fmt.Errorf("cluster: SessionTTL %v below 1 s", c.SessionTTL)
	}
	return nil
}

// Cluster is a metadata store plus bookies on loopback, each in its own
// directory, that a test can stop, restart (same directory, same id),
// wipe, replace by a new identity, and put faults in front of. Methods are
// safe for concurrent use; a bookie index is stable for the cluster's life.
type Cluster struct {
	cfg   Config
	store *metadata.KVStore
	log   *slog.Logger

	mu    sync.Mutex
	nodes []*node
}

// node is one bookie slot.
type node struct {
	id     string // current identity
	gen    int    // identity generation (Replace bumps it)
	dir    string
	listen string // last listen address; restarts try it again
	proxy  *Proxy
	b      *bookie.Bookie // nil while stopped
}

// Start opens the metadata store and starts cfg.Bookies bookies, each
// registered in metadata before Start returns.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := metadata.DefaultOptions()
	opts.Logger = log
	url := cfg.Metadata
	if url == "embedded:" {
		url = "embedded:" + filepath.Join(cfg.Dir, "etcd")
	}
	store, err := metadata.Open(ctx, url, opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: metadata: %w", err)
	}
	c := &Cluster{cfg: cfg, store: store, log: log}
	for range cfg.Bookies {
		if _, err := c.AddBookie(ctx); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Store is the cluster's metadata store (shared by everything in the test;
// the cluster closes it).
func (c *Cluster) Store() metadata.Store { return c.store }

// Len is the number of bookie slots (running or not).
func (c *Cluster) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// ID is bookie i's current id.
func (c *Cluster) ID(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].id
}

// Index returns the slot of a bookie id, or -1.
func (c *Cluster) Index(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n.id == id {
			return i
		}
	}
	return -1
}

// Addr is the address clients dial for bookie i: its proxy's, or its own.
func (c *Cluster) Addr(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[i]
	if n.proxy != nil {
		return n.proxy.Addr()
	}
	return n.listen
}

// DirectAddr is bookie i's own listen address (bypassing its proxy).
func (c *Cluster) DirectAddr(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].listen
}

// Proxy is bookie i's fault proxy (nil when Config.Proxies is off).
func (c *Cluster) Proxy(i int) *Proxy {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].proxy
}

// Bookie is bookie i's server, nil while stopped.
func (c *Cluster) Bookie(i int) *bookie.Bookie {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].b
}

// Running reports whether bookie i is started.
func (c *Cluster) Running(i int) bool { return c.Bookie(i) != nil }

// AddBookie starts one more bookie (id bookie-<i>) and returns its index.
func (c *Cluster) AddBookie(ctx context.Context) (int, error) {
	c.mu.Lock()
	i := len(c.nodes)
	n := &node{id: fmt.Sprintf("bookie-%d", i), dir: filepath.Join(c.cfg.Dir, fmt.Sprintf("bookie-%d", i))}
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	if c.cfg.Proxies {
		p, err := NewProxy("127.0.0.1:1") // retargeted once the bookie listens
		if err != nil {
			return i, err
		}
		c.mu.Lock()
		n.proxy = p
		c.mu.Unlock()
	}
	return i, c.start(ctx, i)
}

// start opens bookie i on its directory and waits for its registration.
func (c *Cluster) start(ctx context.Context, i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	if n.b != nil {
		c.mu.Unlock()
		return fmt.Errorf("cluster: bookie %d is running", i)
	}
	id, dir, listen, proxy := n.id, n.dir, n.listen, n.proxy
	c.mu.Unlock()

	cfg := bookie.DefaultConfig()
	cfg.ID = id
	cfg.Dir = dir
	cfg.ListenAddr = "127.0.0.1:0"
	if listen != "" {
		cfg.ListenAddr = listen // same port as before when it is free
	}
	cfg.MinFreeBytes = 0
	cfg.JournalFileSizeBytes = 1 << 20
	cfg.WriteCacheMaxBytes = 16 << 20
	cfg.GCInterval = -1
	cfg.Metadata = c.store
	cfg.SessionTTL = c.cfg.SessionTTL
	cfg.Logger = c.log
	if proxy != nil {
		cfg.AdvertiseAddr = proxy.Addr()
	}
	if c.cfg.Bookie != nil {
		c.cfg.Bookie(i, &cfg)
	}
	b, err := bookie.Open(ctx, cfg)
	if err != nil && listen != "" && strings.Contains(err.Error(), "listen") {
		cfg.ListenAddr = "127.0.0.1:0"
		b, err = bookie.Open(ctx, cfg)
	}
	if err != nil {
		return fmt.Errorf("cluster: start bookie %d (%s): %w", i, id, err)
	}
	if proxy != nil {
		// Always a fresh upstream connection: one that saw the bookie down
		// would wait out gRPC's reconnect backoff before trying again.
		if err := proxy.SetTarget(b.ListenAddr()); err != nil {
			_ = b.Close()
			return err
		}
	}
	c.mu.Lock()
	n.b, n.listen = b, b.ListenAddr()
	c.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	if err := waitFor(rctx, func() bool { return b.Registered() }); err != nil {
		return fmt.Errorf("cluster: bookie %d (%s) did not register: %w", i, id, err)
	}
	return nil
}

// Kill stops bookie i (its server closes; its registration is removed).
// Its directory is kept. Killing a stopped bookie is a no-op.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	b := c.nodes[i].b
	c.nodes[i].b = nil
	c.mu.Unlock()
	if b == nil {
		return nil
	}
	return b.Close()
}

// Restart starts a stopped bookie again on the same directory with the
// same id (and the same port when it is free). A bookie whose directory
// was wiped refuses to start (an error wrapping bookie.ErrIdentity).
func (c *Cluster) Restart(ctx context.Context, i int) error { return c.start(ctx, i) }

// Wipe deletes a stopped bookie's directory (a lost disk).
func (c *Cluster) Wipe(i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	running, dir := n.b != nil, n.dir
	c.mu.Unlock()
	if running {
		return fmt.Errorf("cluster: wipe bookie %d: still running", i)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cluster: wipe bookie %d: %w", i, err)
	}
	return nil
}

// Replace starts a stopped bookie slot as a new, empty identity
// (bookie-<i>-g<n>) in a fresh directory at the same address: what an
// operator does after a lost disk. The old identity's data is gone; the
// ledger client must never take the new identity's answers for the old
// one's.
func (c *Cluster) Replace(ctx context.Context, i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	if n.b != nil {
		c.mu.Unlock()
		return fmt.Errorf("cluster: replace bookie %d: still running", i)
	}
	n.gen++
	n.id = fmt.Sprintf("bookie-%d-g%d", i, n.gen)
	n.dir = filepath.Join(c.cfg.Dir, n.id)
	c.mu.Unlock()
	return c.start(ctx, i)
}

// Close stops every bookie and proxy and closes the metadata store.
func (c *Cluster) Close() error {
	c.mu.Lock()
	nodes := c.nodes
	c.mu.Unlock()
	var errs []error
	for i, n := range nodes {
		errs = append(errs, c.Kill(i))
		if n.proxy != nil {
			n.proxy.Close()
		}
	}
	errs = append(errs, c.store.Close())
	return errors.Join(errs...)
}

// waitFor polls cond until it holds or ctx ends. Waiting on a condition,
// never on a duration.
func waitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
