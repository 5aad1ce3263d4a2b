package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/metadata/etcdserver"
	"github.com/dlog-io/dlog/internal/obs"
	"github.com/dlog-io/dlog/internal/proxy"
)

// Config configures a sandbox. Start from DefaultConfig.
type Config struct {
	// Dir holds everything (see the package doc). Required. Created when
	// missing.
	Dir string
	// Bookies is the number of bookies. 0 means as many as the directory
	// already has, or 3 for a new directory. More than the directory has
	// adds new, empty bookies; fewer is refused (their data would be
	// unreachable).
	Bookies int
	// ListenAddr is the proxy's API address (gRPC, gRPC-Web and
	// Connect/HTTP-JSON on one port). Port 0 picks a free one. Default
	// "127.0.0.1:7000".
	ListenAddr string
	// HTTPAddr serves /metrics (every component), /healthz and /readyz.
	// Empty disables it. Default "127.0.0.1:7080".
	HTTPAddr string
	// EnsembleSize, WriteQuorum and AckQuorum are the replication of new
	// segments. 0 picks the defaults for the bookie count (see the package
	// doc); set all three or none.
	EnsembleSize, WriteQuorum, AckQuorum int
	// Logger receives every component's events; nil discards them.
	Logger *slog.Logger
	// Bookie, when set, adjusts bookie i's configuration (i from 1) before
	// it starts: tests and benchmarks shrink preallocations with it.
	Bookie func(i int, cfg *bookie.Config)
	// Proxy, when set, adjusts the proxy's configuration before it starts.
	Proxy func(cfg *proxy.Config)
}

// DefaultConfig returns the defaults documented on Config for dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, ListenAddr: "127.0.0.1:7000", HTTPAddr: "127.0.0.1:7080"}
}

// maxBookies bounds Config.Bookies: a sandbox is one machine.
const maxBookies = 32

// Validate checks the configuration.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("sandbox: no directory")
	case c.Bookies < 0 || c.Bookies > maxBookies:
		return fmt.Errorf("sandbox: %d bookies: want 1 to %d", c.Bookies, maxBookies)
	case c.ListenAddr == "":
		return errors.New("sandbox: no listen address")
	}
	set := 0
	for _, q := range []int{c.EnsembleSize, c.WriteQuorum, c.AckQuorum} {
		if q != 0 {
			set++
		}
	}
	switch {
	case set != 0 && set != 3:
		return errors.New("sandbox: set ensemble size, write quorum and ack quorum together, or none")
	case set == 3 && !(c.EnsembleSize >= c.WriteQuorum && c.WriteQuorum >= c.AckQuorum && c.AckQuorum >= 1):
		return fmt.Errorf("sandbox: replication %d/%d/%d: want ensemble >= write quorum >= ack quorum >= 1",
			c.EnsembleSize, c.WriteQuorum, c.AckQuorum)
	case set == 3 && c.Bookies > 0 && c.EnsembleSize > c.Bookies:
		return fmt.Errorf("sandbox: ensemble size %d above the %d bookies", c.EnsembleSize, c.Bookies)
	}
	return nil
}

// Replication returns the default ensemble size, write quorum and ack
// quorum for a sandbox of n bookies: 3/3/2 from three bookies on, 2/2/2
// for two, 1/1/1 for one.
func Replication(n int) (ensemble, writeQuorum, ackQuorum int) {
	switch {
	case n >= 3:
		return 3, 3, 2
	case n == 2:
		return 2, 2, 2
	default:
		return 1, 1, 1
	}
}

// startTimeout bounds each component's start (etcd, a bookie's journal
// replay and registration, the proxy's registration).
const startTimeout = 60 * time.Second

// Sandbox is a running sandbox.
type Sandbox struct {
	cfg    Config
	log    *slog.Logger
	reg    *prometheus.Registry
	unlock func()

	etcd    *etcdserver.Server
	store   *metadata.KVStore
	bookies []*bookie.Bookie
	proxy   *proxy.Server
	http    *obs.Server

	state            State
	ensemble, wq, aq int

	closeOnce sync.Once
	closeErr  error
}

// Start starts (or restarts, on a directory used before) a sandbox and
// returns once every component serves.
func Start(ctx context.Context, cfg Config) (*Sandbox, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	s := &Sandbox{cfg: cfg, log: log, unlock: unlock, reg: obs.NewRegistry()}
	if err := s.start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Sandbox) start(ctx context.Context) error {
	cfg := s.cfg
	st, found, err := ReadState(cfg.Dir)
	if err != nil {
		return err
	}
	if !found {
		st = State{Version: stateVersion}
	}
	n := cfg.Bookies
	switch {
	case n == 0 && len(st.Bookies) > 0:
		n = len(st.Bookies)
	case n == 0:
		n = 3
	case n < len(st.Bookies):
		return fmt.Errorf("sandbox: %s holds %d bookies; starting only %d would leave data unreachable: start it with --bookies %d, or use another --dir",
			cfg.Dir, len(st.Bookies), n, len(st.Bookies))
	}
	s.ensemble, s.wq, s.aq = Replication(n)
	if cfg.EnsembleSize != 0 {
		s.ensemble, s.wq, s.aq = cfg.EnsembleSize, cfg.WriteQuorum, cfg.AckQuorum
		if s.ensemble > n {
			return fmt.Errorf("sandbox: ensemble size %d above the %d bookies", s.ensemble, n)
		}
	}

	// Metadata: an embedded etcd member, on the port it had before.
	ecfg := etcdserver.DefaultConfig(filepath.Join(cfg.Dir, "etcd"))
	ecfg.Logger = s.log.With("component", "etcd")
	if st.MetadataURL != "" {
		ecfg.ClientURLs = []string{st.MetadataURL}
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	s.etcd, err = etcdserver.Start(sctx, ecfg)
	if err != nil {
		if st.MetadataURL != "" && inUse(err) {
			return fmt.Errorf("sandbox: etcd's address %s (recorded in %s) is in use: stop whatever holds it: %w",
				st.MetadataURL, filepath.Join(cfg.Dir, stateFile), err)
		}
		return fmt.Errorf("sandbox: start etcd: %w", err)
	}
	endpoints := s.etcd.Endpoints()
	if st.MetadataURL == "" {
		st.MetadataURL = endpoints[0]
		if err := writeState(cfg.Dir, st); err != nil {
			return err
		}
	}
	if err := revokeLeases(sctx, endpoints); err != nil {
		return err
	}
	opts := metadata.DefaultOptions()
	opts.Logger = s.log.With("component", "metadata")
	s.store, err = metadata.Open(sctx, strings.Join(endpoints, ","), opts)
	if err != nil {
		return fmt.Errorf("sandbox: metadata: %w", err)
	}

	for i := 1; i <= n; i++ {
		if err := s.startBookie(ctx, i, &st); err != nil {
			return err
		}
	}

	pcfg := proxy.DefaultConfig("")
	pcfg.Store = s.store
	pcfg.ListenAddr = cfg.ListenAddr
	pcfg.Registry = s.reg
	pcfg.Logger = s.log.With("component", "proxy")
	pcfg.CreateNamespaces = true
	pcfg.Namespace.EnsembleSize, pcfg.Namespace.WriteQuorum, pcfg.Namespace.AckQuorum = s.ensemble, s.wq, s.aq
	if cfg.Proxy != nil {
		cfg.Proxy(&pcfg)
	}
	pctx, pcancel := context.WithTimeout(ctx, startTimeout)
	defer pcancel()
	s.proxy, err = proxy.Start(pctx, pcfg)
	if err != nil {
		if inUse(err) {
			return fmt.Errorf("sandbox: the proxy's address %s is in use (another sandbox or proxy?): stop it, or pass another --listen: %w", cfg.ListenAddr, err)
		}
		return fmt.Errorf("sandbox: start proxy: %w", err)
	}

	if cfg.HTTPAddr != "" {
		s.http, err = obs.NewServer(obs.ServerConfig{Addr: cfg.HTTPAddr, Registry: s.reg})
		if err != nil {
			if inUse(err) {
				return fmt.Errorf("sandbox: the HTTP address %s is in use: stop whatever holds it, or pass another --http: %w", cfg.HTTPAddr, err)
			}
			return fmt.Errorf("sandbox: %w", err)
		}
		s.http.AddCheck("etcd", s.metadataReady)
		for i, b := range s.bookies {
			s.http.AddCheck(fmt.Sprintf("bookie-%d", i+1), b.Ready)
		}
		s.http.AddCheck("proxy", s.proxy.Ready)
		s.http.Handle("GET /{$}", http.HandlerFunc(s.index))
		s.http.Serve()
	}

	st.ProxyAddr = s.proxy.AdvertiseAddr()
	st.HTTPAddr = s.HTTPAddr()
	if err := writeState(cfg.Dir, st); err != nil {
		return err
	}
	s.state = st
	return nil
}

// startBookie starts bookie i (from 1) on its directory and recorded
// address and waits for its registration.
func (s *Sandbox) startBookie(ctx context.Context, i int, st *State) error {
	id := fmt.Sprintf("bookie-%d", i)
	listen := "127.0.0.1:0"
	known := i <= len(st.Bookies)
	if known {
		id, listen = st.Bookies[i-1].ID, st.Bookies[i-1].Listen
	}
	bcfg := bookie.DefaultConfig()
	bcfg.ID = id
	bcfg.Dir = filepath.Join(s.cfg.Dir, id)
	bcfg.ListenAddr = listen
	bcfg.Metadata = s.store
	// The bookie names itself (bookie=ID) and its parts (component=journal,
	// ...): a component attribute here would repeat the key in each line.
	bcfg.Logger = s.log
	bcfg.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"bookie": id}, s.reg)
	// A sandbox shares one machine between its bookies: smaller caches and
	// preallocations than a dedicated storage node, same durability.
	bcfg.JournalFileSizeBytes = 16 << 20
	bcfg.WriteCacheMaxBytes = 32 << 20
	bcfg.EntryLogMaxFileSizeBytes = 64 << 20
	bcfg.MinFreeBytes = 128 << 20
	if s.cfg.Bookie != nil {
		s.cfg.Bookie(i, &bcfg)
	}
	bctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	b, err := bookie.Open(bctx, bcfg)
	if err != nil {
		if known && inUse(err) {
			return fmt.Errorf("sandbox: %s's address %s (recorded in %s; its identity names it) is in use: stop whatever holds it: %w",
				id, listen, filepath.Join(s.cfg.Dir, stateFile), err)
		}
		return fmt.Errorf("sandbox: start %s: %w", id, err)
	}
	s.bookies = append(s.bookies, b)
	if !known {
		st.Bookies = append(st.Bookies, BookieState{ID: id, Listen: b.ListenAddr()})
		if err := writeState(s.cfg.Dir, *st); err != nil {
			return err
		}
	}
	if err := waitFor(bctx, b.Registered); err != nil {
		return fmt.Errorf("sandbox: %s did not register in metadata: %w", id, err)
	}
	return nil
}

// revokeLeases revokes every lease of the sandbox's etcd. Only a sandbox
// uses this etcd and the directory lock guarantees no other run of it is
// alive, so every lease belongs to a run that crashed: its registrations
// and writer locks would otherwise linger for their TTL, and the proxy
// could not take its logs over until then.
func revokeLeases(ctx context.Context, endpoints []string) error {
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 10 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("sandbox: etcd client: %w", err)
	}
	defer c.Close()
	resp, err := c.Leases(ctx)
	if err != nil {
		return fmt.Errorf("sandbox: list etcd leases: %w", err)
	}
	for _, l := range resp.Leases {
		if _, err := c.Revoke(ctx, l.ID); err != nil && !strings.Contains(err.Error(), "requested lease not found") {
			return fmt.Errorf("sandbox: revoke lease %x of a crashed run: %w", l.ID, err)
		}
	}
	return nil
}

func inUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

// waitFor polls cond until it holds or ctx ends (a condition, never a
// fixed sleep).
func waitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
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

func (s *Sandbox) metadataReady(ctx context.Context) error {
	_, _, err := s.store.ListBookies(ctx)
	return err
}

func (s *Sandbox) index(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "dlog sandbox\n\n/metrics   Prometheus metrics of every component\n/healthz   liveness\n/readyz    readiness of etcd, every bookie and the proxy\n\n")
	fmt.Fprintf(w, "proxy API  %s\nmetadata   %s\n", s.Addr(), s.MetadataURL())
	for _, b := range s.Bookies() {
		fmt.Fprintf(w, "%-10s %s\n", b.ID, b.Listen)
	}
}

// Addr is the proxy's API address (what clients use as --server).
func (s *Sandbox) Addr() string { return s.proxy.AdvertiseAddr() }

// HTTPAddr is the metrics and health address ("" when disabled).
func (s *Sandbox) HTTPAddr() string {
	if s.http == nil {
		return ""
	}
	return s.http.Addr()
}

// MetadataURL is the embedded etcd's client URL (what admin tools take
// as --metadata).
func (s *Sandbox) MetadataURL() string { return s.state.MetadataURL }

// Dir is the sandbox directory.
func (s *Sandbox) Dir() string { return s.cfg.Dir }

// Bookies lists the bookies with their listen addresses.
func (s *Sandbox) Bookies() []BookieState {
	out := make([]BookieState, len(s.bookies))
	for i, b := range s.bookies {
		out[i] = BookieState{ID: b.ID(), Listen: b.ListenAddr()}
	}
	return out
}

// Replication is the ensemble size, write quorum and ack quorum of new
// segments.
func (s *Sandbox) Replication() (ensemble, writeQuorum, ackQuorum int) {
	return s.ensemble, s.wq, s.aq
}

// Store is the sandbox's metadata store (owned by the sandbox).
func (s *Sandbox) Store() metadata.Store { return s.store }

// Registry is the registry /metrics serves.
func (s *Sandbox) Registry() *prometheus.Registry { return s.reg }

// Err receives a fatal error of the embedded etcd, if one happens while
// the sandbox runs.
func (s *Sandbox) Err() <-chan error { return s.etcd.Err() }

// Close stops everything, in reverse order of start, and releases the
// directory. Safe to call twice.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.http != nil {
			errs = append(errs, s.http.Close())
		}
		if s.proxy != nil {
			errs = append(errs, s.proxy.Close())
		}
		for i := len(s.bookies) - 1; i >= 0; i-- {
			errs = append(errs, s.bookies[i].Close())
		}
		if s.store != nil {
			errs = append(errs, s.store.Close())
		}
		if s.etcd != nil {
			s.etcd.Close()
		}
		if s.unlock != nil {
			s.unlock()
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
