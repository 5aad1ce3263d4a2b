package namespace

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/ledger"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
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

func quietLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DLOG_TEST_LOG") == "debug" {
		return testLogger(t)
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
}

// startCluster starts n real bookies (behind fault proxies) and a
// metadata store ("memory:" or "embedded:").
func startCluster(t testing.TB, n int, md string) *cluster.Cluster {
	t.Helper()
	cfg := cluster.DefaultConfig(t.TempDir())
	cfg.Bookies = n
	cfg.Metadata = md
	cfg.Logger = quietLogger(t)
	// Loaded test machines (and -race) can starve a lease's keepalive: a
	// bookie must not vanish from the registry because of that.
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
	return c
}

// testConfig is the namespace configuration of the tests. Timeouts only
// bound how long a failure takes to be noticed; they never decide an
// assertion, and they are generous because test machines are loaded.
func testConfig(t testing.TB, c *cluster.Cluster) Config {
	cfg := DefaultConfig("")
	cfg.Store = c.Store()
	lcfg := ledger.DefaultConfig()
	lcfg.AddTimeout = 10 * time.Second
	lcfg.FenceTimeout = 5 * time.Second
	lcfg.RecoveryReadTimeout = 5 * time.Second
	lcfg.ReadTimeout = 5 * time.Second
	lcfg.LongPollTimeout = 2 * time.Second
	lcfg.MetadataTimeout = 10 * time.Second
	lcfg.Logger = quietLogger(t)
	cfg.LedgerConfig = &lcfg
	cfg.GCInterval = 0
	// Tests end sessions explicitly (expireSession); a long TTL keeps a
	// starved keepalive on a loaded machine from ending one by accident.
	cfg.SessionTTL = 20 * time.Second
	cfg.RetryMin = 20 * time.Millisecond
	cfg.RetryMax = 500 * time.Millisecond
	cfg.ReaderRelistInterval = time.Second
	cfg.Logger = testLogger(t)
	cfg.testHooks = &testHooks{}
	return cfg
}

// openNS opens a namespace on the cluster; the test's cleanup closes it.
func openNS(t testing.TB, c *cluster.Cluster, tune ...func(*Config)) *Namespace {
	t.Helper()
	cfg := testConfig(t, c)
	for _, f := range tune {
		f(&cfg)
	}
	n, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open namespace: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// deadline is t.Context() bounded by d: every wait in a test has one.
// Shortly before it ends, the goroutines are dumped to the test's output,
// so a test that runs into its deadline shows where it was stuck.
func deadline(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	var mu sync.Mutex
	done := false
	dump := time.AfterFunc(d-d/20, func() {
		var b bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
		mu.Lock()
		defer mu.Unlock()
		if !done {
			t.Logf("deadline near; goroutines:\n%s", b.String())
		}
	})
	t.Cleanup(func() {
		dump.Stop()
		mu.Lock()
		done = true
		mu.Unlock()
		cancel()
	})
	return ctx
}

func must(t testing.TB, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

func wantErr(t testing.TB, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v; want %v", what, err, want)
	}
}

// payload encodes a record id (8 bytes) padded to size bytes, so a reader
// can tell which write it sees. The padding is pseudo-random in runs of 8
// bytes: compressible, but not to nothing.
func payload(id uint64, size int) []byte {
	p := make([]byte, max(size, 8))
	binary.BigEndian.PutUint64(p, id)
	for i := 8; i < len(p); i++ {
		p[i] = fill(id, i)
	}
	return p
}

func fill(id uint64, i int) byte {
	x := id*0x9e3779b97f4a7c15 + uint64(i/8)*0xbf58476d1ce4e5b9
	x ^= x >> 31
	x *= 0x94d049bb133111eb
	return byte(x >> 29)
}

func payloadID(t testing.TB, p []byte) uint64 {
	t.Helper()
	if len(p) < 8 {
		t.Fatalf("payload of %d bytes", len(p))
	}
	id := binary.BigEndian.Uint64(p)
	for i := 8; i < len(p); i++ {
		if p[i] != fill(id, i) {
			t.Fatalf("payload of record %d corrupt at byte %d", id, i)
		}
	}
	return id
}

// createLog creates a log or fails the test.
func createLog(t testing.TB, n *Namespace, log string) {
	t.Helper()
	must(t, n.CreateLog(t.Context(), log, LogOptions{}), "create log %s", log)
}

// readN reads exactly k records or fails the test.
func readN(t testing.TB, ctx context.Context, r *Reader, k int) []dlog.ReadRecord {
	t.Helper()
	out := make([]dlog.ReadRecord, 0, k)
	for len(out) < k {
		recs, err := r.NextBatch(ctx, k-len(out))
		if err != nil {
			t.Fatalf("read record %d of %d: %v", len(out), k, err)
		}
		out = append(out, recs...)
	}
	return out
}

// checkSequence checks DLSN order and consecutive sequence ids.
func checkSequence(t testing.TB, recs []dlog.ReadRecord) {
	t.Helper()
	for i := 1; i < len(recs); i++ {
		if !recs[i-1].DLSN.Less(recs[i].DLSN) {
			t.Fatalf("record %d at %v after %v", i, recs[i].DLSN, recs[i-1].DLSN)
		}
		if recs[i].SequenceID != recs[i-1].SequenceID+1 {
			t.Fatalf("record %d: sequence id %d after %d", i, recs[i].SequenceID, recs[i-1].SequenceID)
		}
	}
}

func ledgerOptions(n *Namespace) ledger.CreateOptions {
	return ledger.CreateOptions{EnsembleSize: n.cfg.EnsembleSize, WriteQuorum: n.cfg.WriteQuorum, AckQuorum: n.cfg.AckQuorum}
}
