package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/client"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
)

// Child proxy processes (failover tests) are this test binary re-executed
// with childEnv set: TestMain then runs a proxy instead of the tests.
const (
	childEnv       = "DLOG_PROXY_TEST_CHILD"
	childMetaEnv   = "DLOG_PROXY_TEST_METADATA"
	childTTLEnv    = "DLOG_PROXY_TEST_TTL_MS"
	childListenEnv = "DLOG_PROXY_TEST_LISTEN"
	childIDEnv     = "DLOG_PROXY_TEST_ID"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	goleak.VerifyTestMain(m)
}

// runChild runs a proxy on the metadata service of the parent test and
// prints "ready <addr>" once it serves; it runs until killed (or SIGTERM).
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ttl, _ := strconv.Atoi(os.Getenv(childTTLEnv))
	cfg := DefaultConfig(os.Getenv(childMetaEnv))
	cfg.ListenAddr = os.Getenv(childListenEnv)
	cfg.ID = os.Getenv(childIDEnv)
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	cfg.SessionTTL = time.Duration(ttl) * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	lcfg := testLedgerConfig(cfg.Logger)
	cfg.Ledger = &lcfg
	tuneNamespace(&cfg)
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	s, err := Start(sctx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child proxy:", err)
		return 1
	}
	fmt.Printf("ready %s\n", s.AdvertiseAddr())
	<-ctx.Done()
	s.Close()
	return 0
}

// testLogger logs warnings and errors to the test's output
// (DLOG_TEST_LOG=debug for everything).
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("DLOG_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// quietLogger is for components whose warnings are expected noise in a
// test (bookies being killed, leases ending).
func quietLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DLOG_TEST_LOG") == "debug" {
		return testLogger(t)
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
}

// testLedgerConfig has generous timeouts: they bound how long a failure
// takes to be noticed and never decide an assertion.
func testLedgerConfig(l *slog.Logger) ledger.Config {
	lcfg := ledger.DefaultConfig()
	lcfg.AddTimeout = 10 * time.Second
	lcfg.FenceTimeout = 5 * time.Second
	lcfg.RecoveryReadTimeout = 5 * time.Second
	lcfg.ReadTimeout = 5 * time.Second
	lcfg.LongPollTimeout = 2 * time.Second
	lcfg.MetadataTimeout = 10 * time.Second
	lcfg.ExplicitLACDelay = time.Millisecond // as the proxy's default
	lcfg.Logger = l
	return lcfg
}

func tuneNamespace(cfg *Config) {
	cfg.Namespace.GCInterval = 0
	cfg.Namespace.ReaderRelistInterval = time.Second
	cfg.Namespace.RetryMin = 20 * time.Millisecond
	cfg.Namespace.RetryMax = 500 * time.Millisecond
}

// env is a storage cluster (real bookies on loopback, real metadata) to
// run proxies and clients on.
type env struct {
	t  testing.TB
	cl *cluster.Cluster
}

// newEnv starts n bookies on "memory:" or "embedded:" (a real etcd)
// metadata.
func newEnv(t testing.TB, bookies int, md string) *env {
	t.Helper()
	cfg := cluster.DefaultConfig(t.TempDir())
	cfg.Bookies = bookies
	cfg.Metadata = md
	cfg.Proxies = false
	cfg.Logger = quietLogger(t)
	// Loaded machines (and -race) can starve a lease's keepalive: bookies
	// must not vanish from the registry because of that.
	cfg.SessionTTL = 10 * time.Second
	c, err := cluster.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Logf("close cluster: %v", err)
		}
	})
	return &env{t: t, cl: c}
}

// newEnvWithFaults is newEnv (3 bookies, memory metadata) with a fault
// proxy in front of every bookie.
func newEnvWithFaults(t testing.TB) *env {
	t.Helper()
	cfg := cluster.DefaultConfig(t.TempDir())
	cfg.Logger = quietLogger(t)
	cfg.SessionTTL = 10 * time.Second
	c, err := cluster.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &env{t: t, cl: c}
}

func (e *env) store() metadata.Store { return e.cl.Store() }

// proxyConfig is a test proxy on the cluster's store.
func (e *env) proxyConfig() Config {
	cfg := DefaultConfig("")
	cfg.Store = e.store()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.SessionTTL = 5 * time.Second
	cfg.Logger = testLogger(e.t)
	lcfg := testLedgerConfig(quietLogger(e.t))
	cfg.Ledger = &lcfg
	tuneNamespace(&cfg)
	return cfg
}

// proxy starts a proxy (closed by the test's cleanup).
func (e *env) proxy(tune ...func(*Config)) *Server {
	e.t.Helper()
	cfg := e.proxyConfig()
	for _, f := range tune {
		f(&cfg)
	}
	s, err := Start(e.t.Context(), cfg)
	if err != nil {
		e.t.Fatalf("start proxy: %v", err)
	}
	e.t.Cleanup(func() {
		if err := s.Close(); err != nil {
			e.t.Logf("close proxy %s: %v", s.ID(), err)
		}
	})
	return s
}

// client returns a client of servers (closed by the test's cleanup).
func newClient(t testing.TB, servers []string, tune ...func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig(servers...)
	cfg.Logger = testLogger(t)
	cfg.Blackout = 2 * time.Second
	for _, f := range tune {
		f(&cfg)
	}
	c, err := client.New(t.Context(), cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// metricValue sums the samples of a counter or gauge whose labels include
// the given ones.
func metricValue(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	sum := 0.0
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				if !hasLabel(m, k, v) {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or the deadline passes: waiting on a
// condition, never on a duration.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
