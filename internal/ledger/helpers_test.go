package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger logs warnings and errors to the test's output (DLOG_TEST_LOG=debug
// for everything).
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("DLOG_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// startCluster starts n proxied bookies on the in-memory metadata store;
// the test's cleanup stops them.
func startCluster(t testing.TB, n int, tune ...func(*cluster.Config)) *cluster.Cluster {
	t.Helper()
	cfg := cluster.DefaultConfig(t.TempDir())
	cfg.Bookies = n
	cfg.Logger = quietLogger(t)
	for _, f := range tune {
		f(&cfg)
	}
	c, err := cluster.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Logf("close cluster: %v", err)
		}
	})
	return c
}

// quietLogger drops the bookies' expected warnings unless debugging.
func quietLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DLOG_TEST_LOG") == "debug" {
		return testLogger(t)
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
}

// testConfig is the ledger client configuration of the tests. Timeouts
// are generous: on a loaded machine a healthy bookie may stall for seconds,
// and a timeout must never turn it into a failure a test did not stage.
// Tests that need a timeout to expire set their own, and then expect the
// failure it causes.
func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.Seed = 1
	cfg.AddTimeout = 30 * time.Second
	cfg.FenceTimeout = 20 * time.Second
	cfg.RecoveryReadTimeout = 20 * time.Second
	cfg.ReadTimeout = 20 * time.Second
	cfg.LongPollTimeout = 5 * time.Second
	cfg.MetadataTimeout = 20 * time.Second
	cfg.Logger = testLogger(t)
	return cfg
}

// newClient returns a ledger client on the cluster's store.
func newClient(t testing.TB, c *cluster.Cluster, tune ...func(*Config)) *Client {
	t.Helper()
	cfg := testConfig(t)
	for _, f := range tune {
		f(&cfg)
	}
	cl, err := New(t.Context(), c.Store(), cfg)
	if err != nil {
		t.Fatalf("new ledger client: %v", err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// deadline returns a context that ends after d (a bound on how long a
// failing test hangs, never an assertion about speed).
func deadline(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitUntil polls cond until it holds, failing the test after d. It
// synchronises on a condition, never on a duration.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func must(t testing.TB, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

func wantErr(t testing.TB, err, target error, what string, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", fmt.Sprintf(what, args...), err, target)
	}
}

// payload is entry e's bytes in a test (distinct per ledger, entry and tag).
func payload(tag string, e int64, size int) []byte {
	b := fmt.Appendf(nil, "%s/%d/", tag, e)
	for len(b) < size {
		b = append(b, byte('a'+len(b)%26))
	}
	return b
}

// ackLog collects the outcomes of async adds.
type ackLog struct {
	mu    chan struct{} // 1-slot mutex usable in callbacks
	acked map[int64][]byte
	errs  []error
	done  int
}

func newAckLog() *ackLog {
	l := &ackLog{mu: make(chan struct{}, 1), acked: make(map[int64][]byte)}
	return l
}

func (l *ackLog) record(p []byte) func(int64, error) {
	return func(id int64, err error) {
		l.mu <- struct{}{}
		defer func() { <-l.mu }()
		l.done++
		if err != nil {
			l.errs = append(l.errs, err)
			return
		}
		l.acked[id] = p
	}
}

func (l *ackLog) snapshot() (acked map[int64][]byte, errs []error, done int) {
	l.mu <- struct{}{}
	defer func() { <-l.mu }()
	acked = make(map[int64][]byte, len(l.acked))
	for k, v := range l.acked {
		acked[k] = v
	}
	return acked, append([]error(nil), l.errs...), l.done
}

// readDirect reads entry e of ledger id from one bookie address (no
// ledger-client logic); it returns the payload or nil when absent/failed.
func readDirect(t testing.TB, cl *Client, addr string, id, e int64) ([]byte, error) {
	t.Helper()
	r, err := cl.BookieClient().Read(deadline(t, 10*time.Second), addr, &bookiepb.ReadRequest{LedgerId: id, EntryId: e})
	if err != nil {
		return nil, err
	}
	if r.Entry == nil {
		return nil, errors.New("no entry in answer")
	}
	p, _, ok := unframe(currentFormat, r.Entry.Payload)
	if !ok {
		return nil, errors.New("malformed entry")
	}
	return p, nil
}
