package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// httpGet fetches url and returns the status and body.
func httpGet(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// metricFamilies returns the metric family names of a Prometheus text
// exposition (from its # TYPE lines).
func metricFamilies(body string) map[string]bool {
	fams := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if name, _, ok := strings.Cut(rest, " "); ok {
				fams[name] = true
			}
		}
	}
	return fams
}

// The metric families the issue asks of the server processes, by what
// they measure.
var (
	bookieFamilies = []string{
		"dlog_bookie_add_seconds",        // add latency on the bookie
		"dlog_bookie_read_seconds",       // read latency on the bookie
		"dlog_journal_fdatasync_seconds", // fsync latency
		"dlog_journal_group_records",     // group commit size
		"dlog_journal_queue_bytes",       // journal queue
		"dlog_bookie_requests_in_flight", // requests queued in the bookie
		"dlog_ledgerstore_write_cache_bytes",
		"dlog_ledgerstore_reads_write_cache_total", // bookie cache hits ...
		"dlog_ledgerstore_reads_entry_log_total",   // ... and misses
	}
	proxyFamilies = []string{
		"dlog_proxy_write_latency_seconds",   // add latency seen by the service
		"dlog_proxy_rpc_duration_seconds",    // read (stream) and unary latencies
		"dlog_ledger_add_latency_seconds",    // ledger client add latency
		"dlog_ledger_read_latency_seconds",   // ledger client read latency
		"dlog_proxy_ownership_changes_total", // ownership changes
		"dlog_proxy_redirects_total",         // redirects
		"dlog_proxy_read_records_total",      // by source: cache hit rate
		"dlog_proxy_write_bytes_total",       // bytes in per log
		"dlog_proxy_read_bytes_total",        // bytes out per log
		"dlog_log_reader_lag_entries",        // entries behind the LAC
		"go_goroutines",
	}
)

func checkFamilies(t *testing.T, what, body string, want []string) {
	t.Helper()
	fams := metricFamilies(body)
	for _, f := range want {
		if !fams[f] {
			t.Errorf("%s /metrics lacks %s", what, f)
		}
	}
}

// traffic creates a log, writes through it and reads it back (so that the
// per-log and latency families have samples).
func traffic(t *testing.T, ctx context.Context, run func(stdin string, args ...string) result) {
	t.Helper()
	if r := run("", "log", "create", "observed"); r.code != 0 {
		t.Fatal(r)
	}
	var in strings.Builder
	for i := range 200 {
		fmt.Fprintf(&in, "record-%d\n", i)
	}
	if r := run(in.String(), "write", "observed"); r.code != 0 {
		t.Fatal(r)
	}
	if r := run("", "read", "observed"); r.code != 0 || strings.Count(r.stdout, "\n") != 200 {
		t.Fatalf("read back: %s", r)
	}
}

// TestSandboxMetrics scrapes an in-process sandbox's /metrics after some
// traffic and checks every family the operations guide lists is there,
// and that /healthz and /readyz answer.
func TestSandboxMetrics(t *testing.T) {
	sb := testSandbox(t, 3)
	traffic(t, t.Context(), func(stdin string, args ...string) result {
		return runDlog(t, stdin, append(args, "--server", sb.Addr())...)
	})
	base := "http://" + sb.HTTPAddr()
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	checkFamilies(t, "sandbox", body, append(append([]string{}, bookieFamilies...), proxyFamilies...))
	for _, label := range []string{`log="observed"`, `source="`} {
		if !strings.Contains(body, label) {
			t.Errorf("sandbox /metrics has no sample labelled %s", label)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := httpGet(t, base+p); code != 200 {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
}

// TestServerProcessesObservability runs etcd, three bookies and a proxy as
// separate `dlog` processes with -o json and --log-format json: each
// prints one JSON ready line, logs JSON to stderr, and (bookies and the
// proxy) serves /metrics, /healthz and /readyz on its --http address.
func TestServerProcessesObservability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five processes; long test")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	env := []string{"DLOG_CONFIG=", "DLOG_SERVER=", "DLOG_METADATA="}

	ready := func(c *child) map[string]any {
		t.Helper()
		line, ok := c.line(ctx)
		if !ok {
			t.Fatalf("dlog %v exited before it was ready: %v\nstderr:\n%s", c.cmd.Args[1:], c.err, c.stderr.String())
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["event"] != "listening" {
			t.Fatalf("ready line of dlog %v: %q (%v)", c.cmd.Args[1:], line, err)
		}
		return m
	}
	etcdURL := "http://" + freeAddr(t)
	etcd := startChild(t, env, "etcd", "--name", "m0", "--dir", dir+"/etcd", "--listen-client", etcdURL,
		"--listen-peer", "http://"+freeAddr(t), "--log-format", "json", "--log-level", "warn", "-o", "json")
	if eps, _ := ready(etcd)["endpoints"].([]any); len(eps) != 1 || eps[0] != etcdURL {
		t.Fatalf("etcd endpoints %v; want %s", eps, etcdURL)
	}

	var servers []*child
	var https []string
	for i := 1; i <= 3; i++ {
		b := startChild(t, env, "bookie", "--id", fmt.Sprintf("bookie-%d", i), "--dir", fmt.Sprintf("%s/bookie-%d", dir, i),
			"--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--metadata", etcdURL,
			"--min-free-bytes", "0", "--write-cache-max-bytes", "16777216", "--journal-file-size-bytes", "1048576",
			"--log-format", "json", "-o", "json")
		m := ready(b)
		if m["id"] != fmt.Sprintf("bookie-%d", i) || m["http"] == "" {
			t.Fatalf("bookie ready line %v", m)
		}
		servers = append(servers, b)
		https = append(https, m["http"].(string))
	}
	p := startChild(t, env, "proxy", "--id", "proxy-1", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
		"--metadata", etcdURL, "--log-format", "json", "-o", "json")
	pm := ready(p)
	servers = append(servers, p)
	https = append(https, pm["http"].(string))
	server := pm["listen"].(string)

	traffic(t, ctx, func(stdin string, args ...string) result {
		return runBin(t, ctx, stdin, env, append(args, "--server", server)...)
	})

	for i, h := range https {
		what := "bookie"
		want := []string{"dlog_bookie_add_seconds", "dlog_bookie_read_seconds", "dlog_journal_fdatasync_seconds", "dlog_bookie_requests_in_flight", "go_goroutines"}
		if i == len(https)-1 {
			what, want = "proxy", proxyFamilies
		}
		code, body := httpGet(t, "http://"+h+"/metrics")
		if code != 200 {
			t.Fatalf("%s /metrics: %d", what, code)
		}
		checkFamilies(t, what, body, want)
		for _, path := range []string{"/healthz", "/readyz"} {
			if code, body := httpGet(t, "http://"+h+path); code != 200 {
				t.Errorf("%s %s: %d %s", what, path, code, body)
			}
		}
	}

	// SIGTERM: each stops cleanly (exit 0), proxy first, etcd last; every
	// line it logged is a JSON object.
	for i := len(servers) - 1; i >= 0; i-- {
		servers[i].signal(syscall.SIGTERM)
		if code := servers[i].exitCode(); code != 0 {
			t.Errorf("dlog %v exited %d after SIGTERM\nstderr:\n%s", servers[i].cmd.Args[1:], code, servers[i].stderr.String())
		}
	}
	etcd.signal(syscall.SIGTERM)
	for _, c := range append(servers, etcd) {
		logged := 0
		for _, line := range strings.Split(strings.TrimSpace(c.stderr.String()), "\n") {
			if line == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil || m["level"] == nil || m["msg"] == nil {
				t.Errorf("dlog %v logged a line that is not slog JSON: %q", c.cmd.Args[1:2], line)
				break
			}
			logged++
		}
		if c != etcd && logged == 0 {
			t.Errorf("dlog %v logged nothing at info level", c.cmd.Args[1:2])
		}
	}
}
