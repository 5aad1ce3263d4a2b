package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/dlog-io/dlog/internal/loopback"
)

// ErrStart wraps every failure to bring a member up.
var ErrStart = errors.New("etcdserver: start failed")

// Config describes one etcd member.
type Config struct {
	// Name is the member's name, unique within its cluster. Default "default".
	Name string
	// Dir is the data directory. Required. A restart on the same Dir keeps
	// every key, lease and revision.
	Dir string
	// ClientURLs are the URLs the member serves clients on (listen and
	// advertise). Default ["http://127.0.0.1:0"]: a free port chosen at
	// start; read it back with Server.Endpoints.
	ClientURLs []string
	// PeerURLs are the URLs the member talks raft on. Default
	// ["http://127.0.0.1:0"], which only works for a single member.
	PeerURLs []string
	// InitialCluster is etcd's "name=peerURL,..." list of the founding
	// members. Default: this member alone. Ignored on restart.
	InitialCluster string
	// ClusterToken keeps members of different clusters apart. Default
	// "dlog-etcd".
	ClusterToken string
	// TickMs is the raft heartbeat interval in milliseconds; ElectionMs the
	// election timeout (at least 5 ticks). Shorter means faster start-up and
	// fail-over, but more spurious elections on a loaded machine. Defaults
	// 10 and 100 for a single member (nothing to elect against), which
	// also lets a lease TTL of 1 s work.
	TickMs     uint
	ElectionMs uint
	// CompactionRetention keeps this much watch history (etcd periodic
	// auto-compaction); a watcher further behind must re-list. Default 1h;
	// 0 disables compaction (history grows without bound).
	CompactionRetention time.Duration
	// NoFsync disables fsync: a crash may lose acknowledged writes. Tests only.
	NoFsync bool
	// Logger receives this package's own messages; nil discards them. etcd's
	// internal zap logging is always discarded.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration of a single loopback member
// storing its data in dir.
func DefaultConfig(dir string) Config {
	return Config{
		Name:                "default",
		Dir:                 dir,
		ClientURLs:          []string{"http://127.0.0.1:0"},
		PeerURLs:            []string{"http://127.0.0.1:0"},
		ClusterToken:        "dlog-etcd",
		TickMs:              10,
		ElectionMs:          100,
		CompactionRetention: time.Hour,
	}
}

// Validate checks the configuration after defaults were applied.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("etcdserver: empty member name")
	case c.Dir == "":
		return errors.New("etcdserver: empty data dir")
	case len(c.ClientURLs) == 0 || len(c.PeerURLs) == 0:
		return errors.New("etcdserver: no client or peer URL")
	case c.TickMs == 0 || c.ElectionMs < 5*c.TickMs:
		return fmt.Errorf("etcdserver: election timeout %d ms must be at least 5 heartbeats of %d ms", c.ElectionMs, c.TickMs)
	case c.CompactionRetention < 0:
		return errors.New("etcdserver: negative compaction retention")
	}
	for _, u := range append(append([]string(nil), c.ClientURLs...), c.PeerURLs...) {
		if _, err := url.Parse(u); err != nil {
			return fmt.Errorf("etcdserver: bad URL %q: %w", u, err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig(c.Dir)
	if c.Name == "" {
		c.Name = d.Name
	}
	if len(c.ClientURLs) == 0 {
		c.ClientURLs = d.ClientURLs
	}
	if len(c.PeerURLs) == 0 {
		c.PeerURLs = d.PeerURLs
	}
	if c.ClusterToken == "" {
		c.ClusterToken = d.ClusterToken
	}
	if c.TickMs == 0 {
		c.TickMs = d.TickMs
	}
	if c.ElectionMs == 0 {
		c.ElectionMs = d.ElectionMs
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server is one running etcd member.
type Server struct {
	cfg       Config
	etcd      *embed.Etcd
	closeOnce sync.Once
	stopped   atomic.Bool
}

// Start starts a member and waits until it serves requests (for a member of
// a new multi-member cluster: until a quorum has formed). On error nothing
// is left running.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	s, err := launch(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// launch starts the member without waiting for it to become ready.
func launch(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.Dir
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	ec.LogLevel = "error"
	ec.TickMs = cfg.TickMs
	ec.ElectionMs = cfg.ElectionMs
	ec.UnsafeNoFsync = cfg.NoFsync
	ec.InitialClusterToken = cfg.ClusterToken
	ec.ClusterState = embed.ClusterStateFlagNew
	if cfg.CompactionRetention > 0 {
		ec.AutoCompactionMode = embed.CompactorModePeriodic
		ec.AutoCompactionRetention = cfg.CompactionRetention.String()
	}
	var err error
	if ec.ListenClientUrls, err = parseURLs(cfg.ClientURLs); err != nil {
		return nil, err
	}
	ec.AdvertiseClientUrls = ec.ListenClientUrls
	if ec.ListenPeerUrls, err = parseURLs(cfg.PeerURLs); err != nil {
		return nil, err
	}
	ec.AdvertisePeerUrls = ec.ListenPeerUrls
	if cfg.InitialCluster != "" {
		ec.InitialCluster = cfg.InitialCluster
	} else {
		ec.InitialCluster = ec.InitialClusterFromName(cfg.Name)
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		return nil, fmt.Errorf("%w: member %s in %s: %w", ErrStart, cfg.Name, cfg.Dir, err)
	}
	return &Server{cfg: cfg, etcd: e}, nil
}

func (s *Server) waitReady(ctx context.Context) error {
	start := time.Now()
	select {
	case <-s.etcd.Server.ReadyNotify():
		s.cfg.Logger.Info("etcd member ready", "name", s.cfg.Name, "dir", s.cfg.Dir,
			"endpoints", strings.Join(s.Endpoints(), ","), "took", time.Since(start))
		return nil
	case err := <-s.etcd.Err():
		return fmt.Errorf("%w: member %s: %w", ErrStart, s.cfg.Name, err)
	case <-ctx.Done():
		return fmt.Errorf("%w: member %s not ready: %w", ErrStart, s.cfg.Name, ctx.Err())
	}
}

func parseURLs(ss []string) ([]url.URL, error) {
	out := make([]url.URL, 0, len(ss))
	for _, s := range ss {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("etcdserver: bad URL %q: %w", s, err)
		}
		out = append(out, *u)
	}
	return out, nil
}

// Name returns the member's name.
func (s *Server) Name() string { return s.cfg.Name }

// Dir returns the member's data directory.
func (s *Server) Dir() string { return s.cfg.Dir }

// Endpoints returns the client URLs with the ports actually bound.
func (s *Server) Endpoints() []string {
	out := make([]string, 0, len(s.etcd.Clients))
	for _, l := range s.etcd.Clients {
		out = append(out, "http://"+l.Addr().String())
	}
	return out
}

// IsLeader reports whether the member currently leads its cluster.
func (s *Server) IsLeader() bool {
	return !s.stopped.Load() && s.etcd.Server.Leader() == s.etcd.Server.MemberID()
}

// Err reports a fatal error of a running member (nil-free channel; it
// receives at most one error).
func (s *Server) Err() <-chan error { return s.etcd.Err() }

// Close stops the member and waits for it. Safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.stopped.Store(true)
		s.etcd.Close()
		<-s.etcd.Server.StopNotify()
		s.cfg.Logger.Info("etcd member stopped", "name", s.cfg.Name)
	})
}

// FreeLoopbackURLs returns n URLs http://127.0.0.1:PORT whose ports were
// free a moment ago, picked below the kernel's ephemeral range (see
// package loopback). Another process may still take a port before it is
// used; StartCluster retries for that reason.
func FreeLoopbackURLs(n int) ([]string, error) {
	addrs, err := loopback.Addrs(n)
	if err != nil {
		return nil, fmt.Errorf("etcdserver: pick a free port: %w", err)
	}
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = "http://" + a
	}
	return out, nil
}
