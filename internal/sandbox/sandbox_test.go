package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/sandbox"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testConfig is a sandbox on free loopback ports with small bookie
// preallocations (tests run many at once).
func testConfig(dir string, bookies int) sandbox.Config {
	cfg := sandbox.DefaultConfig(dir)
	cfg.Bookies = bookies
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Bookie = func(_ int, b *bookie.Config) {
		b.JournalFileSizeBytes = 1 << 20
		b.WriteCacheMaxBytes = 16 << 20
		b.MinFreeBytes = 0
	}
	return cfg
}

func newClient(t *testing.T, sb *sandbox.Sandbox) *client.Client {
	t.Helper()
	cfg := client.DefaultConfig(sb.Addr())
	cfg.DiscoveryInterval = -1
	c, err := client.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func readAll(ctx context.Context, t *testing.T, c *client.Client, log string) []dlog.ReadRecord {
	t.Helper()
	r, err := c.OpenReader(ctx, log, client.AtStart(), client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []dlog.ReadRecord
	for rec, err := range r.All(ctx) {
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", log, err)
		}
		out = append(out, rec)
	}
	return out
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestRestartKeepsData writes through a sandbox, stops it, starts it again
// on the same directory and reads everything back; the bookies come back
// on their recorded ports.
func TestRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, testConfig(dir, 3))
	if err != nil {
		t.Fatal(err)
	}
	if e, qw, qa := sb.Replication(); e != 3 || qw != 3 || qa != 2 {
		t.Fatalf("replication %d/%d/%d", e, qw, qa)
	}
	bookies := sb.Bookies()
	c := newClient(t, sb)
	if err := c.CreateLog(ctx, "orders", 0); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 50 {
		p := fmt.Sprintf("record-%d", i)
		if _, err := c.Write(ctx, "orders", dlog.Record{Payload: []byte(p)}); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}

	// Every component's metrics on one endpoint, and readiness.
	code, body := get(t, "http://"+sb.HTTPAddr()+"/metrics")
	for _, m := range []string{`dlog_bookie_add_seconds_count{bookie="bookie-1"}`, `dlog_bookie_add_seconds_count{bookie="bookie-3"}`, "dlog_proxy_", "dlog_ledger_", "go_goroutines"} {
		if code != 200 || !strings.Contains(body, m) {
			t.Errorf("/metrics (status %d) lacks %s", code, m)
		}
	}
	if code, body := get(t, "http://"+sb.HTTPAddr()+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, _ := get(t, "http://"+sb.HTTPAddr()+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	c.Close()
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}

	st, found, err := sandbox.ReadState(dir)
	if err != nil || !found || len(st.Bookies) != 3 || st.MetadataURL == "" {
		t.Fatalf("state %+v found %v err %v", st, found, err)
	}

	// Bookies: 0 means "as many as the directory has".
	sb, err = sandbox.Start(ctx, testConfig(dir, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if got := sb.Bookies(); fmt.Sprint(got) != fmt.Sprint(bookies) {
		t.Errorf("bookies after restart %v; want %v", got, bookies)
	}
	if sb.MetadataURL() != st.MetadataURL {
		t.Errorf("metadata URL %s; recorded %s", sb.MetadataURL(), st.MetadataURL)
	}
	c = newClient(t, sb)
	recs := readAll(ctx, t, c, "orders")
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Payload))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("after restart read %v; want %v", got, want)
	}
	// And the log is writable again at once (the new proxy takes it over).
	if _, err := c.Write(ctx, "orders", dlog.Record{Payload: []byte("after")}); err != nil {
		t.Fatal(err)
	}
}

func TestOneBookieAndRefusals(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, testConfig(dir, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if e, qw, qa := sb.Replication(); e != 1 || qw != 1 || qa != 1 {
		t.Fatalf("replication %d/%d/%d", e, qw, qa)
	}
	c := newClient(t, sb)
	if err := c.CreateLog(ctx, "solo", 0); err != nil {
		t.Fatal(err)
	}
	res, err := c.Write(ctx, "solo", dlog.Record{Payload: []byte("x")})
	if err != nil || res.DLSN != dlog.InitialDLSN {
		t.Fatalf("write: %v %v", res, err)
	}

	// A second sandbox on the same directory is refused while the first
	// runs.
	_, err = sandbox.Start(ctx, testConfig(dir, 1))
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second sandbox on one dir: %v", err)
	}

	for _, tc := range []struct {
		name string
		cfg  sandbox.Config
		want string
	}{
		{"no dir", sandbox.Config{ListenAddr: "x"}, "no directory"},
		{"too many bookies", sandbox.Config{Dir: "d", ListenAddr: "x", Bookies: 99}, "bookies"},
		{"partial quorum", sandbox.Config{Dir: "d", ListenAddr: "x", EnsembleSize: 3}, "together"},
		{"bad quorum", sandbox.Config{Dir: "d", ListenAddr: "x", EnsembleSize: 2, WriteQuorum: 3, AckQuorum: 1}, "ensemble >= write quorum"},
		{"ensemble above bookies", sandbox.Config{Dir: "d", ListenAddr: "x", Bookies: 2, EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2}, "above"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v; want %q", err, tc.want)
			}
		})
	}
}

func TestFewerBookiesRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two sandboxes")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, testConfig(dir, 2))
	if err != nil {
		t.Fatal(err)
	}
	if e, qw, qa := sb.Replication(); e != 2 || qw != 2 || qa != 2 {
		t.Fatalf("replication %d/%d/%d", e, qw, qa)
	}
	sb.Close()
	_, err = sandbox.Start(ctx, testConfig(dir, 1))
	if err == nil || !strings.Contains(err.Error(), "--bookies 2") {
		t.Fatalf("fewer bookies: %v", err)
	}
	// The refused start released the directory.
	sb, err = sandbox.Start(ctx, testConfig(dir, 3))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if n := len(sb.Bookies()); n != 3 {
		t.Fatalf("%d bookies after growing", n)
	}
}
