package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// TestDrainAndRelease: a draining proxy keeps serving the logs it owns,
// refuses new ones (clients move them to another proxy) and gives a log up
// on request.
func TestDrainAndRelease(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	pa, pb := e.proxy(), e.proxy()
	admin := newClient(t, []string{pa.AdvertiseAddr()}, func(c *client.Config) { c.DiscoveryInterval = -1 })
	ctx := t.Context()
	for _, l := range []string{"kept", "new"} {
		if err := admin.CreateLog(ctx, l, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.Write(ctx, "kept", dlog.Record{Payload: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetAcceptNewLogs(ctx, pa.AdvertiseAddr(), false); err != nil {
		t.Fatal(err)
	}
	proxies, err := admin.Proxies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range proxies {
		if p.AcceptNewLogs != (p.Address != pa.AdvertiseAddr()) {
			t.Fatalf("registration of %s says accept=%v", p.Address, p.AcceptNewLogs)
		}
	}
	// Owned: still served by the draining proxy.
	if _, err := admin.Write(ctx, "kept", dlog.Record{Payload: []byte("2")}); err != nil {
		t.Fatalf("write to an owned log while draining: %v", err)
	}
	// New: refused there, taken by the other proxy (the client tries it
	// although it was only told about the draining one: its discovery is
	// off, so it learns it from the proxies list).
	c := newClient(t, []string{pa.AdvertiseAddr(), pb.AdvertiseAddr()}, func(c *client.Config) { c.DiscoveryInterval = -1 })
	if _, err := c.Write(ctx, "new", dlog.Record{Payload: []byte("n")}); err != nil {
		t.Fatalf("write of a new log while one proxy drains: %v", err)
	}
	if info, _ := c.LogInfo(ctx, "new"); info.Owner != pb.AdvertiseAddr() {
		t.Fatalf("new log owned by %q, want the accepting proxy", info.Owner)
	}
	// Refused definitely when only the draining proxy is known.
	only := newClient(t, []string{pa.AdvertiseAddr()}, func(c *client.Config) { c.DiscoveryInterval = -1; c.MaxAttempts = 3 })
	if err := only.CreateLog(ctx, "third", 0); err != nil {
		t.Fatal(err)
	}
	_, err = only.Write(ctx, "third", dlog.Record{Payload: []byte("x")})
	if !errors.Is(err, client.ErrStreamUnavailable) || !dlog.IsDefinite(err) {
		t.Fatalf("new log on a draining proxy: %v", err)
	}
	// Release: the log moves on its next write.
	if err := admin.Release(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	if info, _ := c.LogInfo(ctx, "kept"); info.Owner != "" {
		t.Fatalf("released log still owned by %q", info.Owner)
	}
	if _, err := c.Write(ctx, "kept", dlog.Record{Payload: []byte("3")}); err != nil {
		t.Fatal(err)
	}
	if info, _ := c.LogInfo(ctx, "kept"); info.Owner != pb.AdvertiseAddr() {
		t.Fatalf("released log now owned by %q", info.Owner)
	}
	recs := readAll(t, c, "kept")
	if len(recs) != 3 || string(recs[0].Payload) != "1" || string(recs[2].Payload) != "3" {
		t.Fatalf("log after the move: %d records", len(recs))
	}
	if err := admin.SetAcceptNewLogs(ctx, pa.AdvertiseAddr(), true); err != nil {
		t.Fatal(err)
	}
}

// TestProbation: after repeated writer failures a proxy gives the log up
// and, for the probation period, sends clients elsewhere instead of taking
// it back. Failures are injected through the stream's failure path (what a
// fenced or broken writer triggers).
func TestProbation(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	pa := e.proxy(func(c *Config) {
		c.ProbationErrors = 3
		c.ProbationWindow = time.Hour
		c.ProbationPeriod = time.Hour
	})
	pb := e.proxy()
	ca := newClient(t, []string{pa.AdvertiseAddr()}, func(c *client.Config) { c.DiscoveryInterval = -1; c.MaxAttempts = 2 })
	ctx := t.Context()
	if err := ca.CreateLog(ctx, "flaky", 0); err != nil {
		t.Fatal(err)
	}
	k := logKey{ns: "default", log: "flaky"}
	for i := range 3 {
		if _, err := ca.Write(ctx, "flaky", dlog.Record{Payload: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		st := pa.owned(k)
		if st == nil {
			t.Fatalf("write %d: proxy does not own the log", i)
		}
		st.fail(fmt.Errorf("injected failure %d: %w", i, dlog.ErrUnavailable))
		<-st.done
	}
	_, err := ca.Write(ctx, "flaky", dlog.Record{Payload: []byte("refused")})
	if !errors.Is(err, client.ErrStreamUnavailable) || !dlog.IsDefinite(err) {
		t.Fatalf("write during probation: %v", err)
	}
	c := newClient(t, []string{pa.AdvertiseAddr(), pb.AdvertiseAddr()}, func(c *client.Config) { c.DiscoveryInterval = -1 })
	if _, err := c.Write(ctx, "flaky", dlog.Record{Payload: []byte("moved")}); err != nil {
		t.Fatalf("write with another proxy available: %v", err)
	}
	if info, _ := c.LogInfo(ctx, "flaky"); info.Owner != pb.AdvertiseAddr() {
		t.Fatalf("owner %q", info.Owner)
	}
	if n := metricValue(t, pa.Registry(), "dlog_proxy_ownership_changes_total", map[string]string{"event": "probation"}); n != 1 {
		t.Fatalf("%v probations", n)
	}
}

// TestRateLimits: over a rate limit a write is refused, definitely, before
// anything is sent to the log.
func TestRateLimits(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	// One token per 100 s and a burst of one request: the second request
	// is refused whatever the machine's speed.
	p := e.proxy(func(c *Config) {
		c.LogRecordsPerSecond = 0.01
		c.MaxBulkRecords = 1
		c.ProxyBytesPerSecond = 0.01
		c.MaxRecordBytes = 16 << 10
		c.MaxMessageBytes = 20 << 10
	})
	c := newClient(t, []string{p.AdvertiseAddr()})
	ctx := t.Context()
	for _, l := range []string{"r1", "r2"} {
		if err := c.CreateLog(ctx, l, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write(ctx, "r1", dlog.Record{Payload: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Write(ctx, "r1", dlog.Record{Payload: []byte("too fast")})
	if !errors.Is(err, dlog.ErrOverCapacity) || !dlog.IsDefinite(err) {
		t.Fatalf("second record within the log's rate: %v", err)
	}
	// Another log has its own record limit, but the proxy's byte limit is
	// shared: 16 KiB fits the burst once.
	if _, err := c.Write(ctx, "r2", dlog.Record{Payload: bytes.Repeat([]byte{'b'}, 16<<10)}); err != nil {
		t.Fatalf("first large record: %v", err)
	}
	if _, err := c.Write(ctx, "r2", dlog.Record{Payload: bytes.Repeat([]byte{'b'}, 16<<10)}); !errors.Is(err, dlog.ErrOverCapacity) {
		t.Fatalf("bytes over the proxy's rate: %v", err)
	}
	if recs := readAll(t, c, "r1"); len(recs) != 1 {
		t.Fatalf("r1 holds %d records", len(recs))
	}
	if n := metricValue(t, p.Registry(), "dlog_proxy_rejected_total", map[string]string{"reason": "rate-limit"}); n != 2 {
		t.Fatalf("%v rate-limit rejections", n)
	}
}

// TestShutdownReleasesAndEndpoints: the operator endpoints answer, and a
// proxy that shuts down gives its logs up at once (no lease to wait for):
// another proxy takes them over with the next write.
func TestShutdownReleasesAndEndpoints(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	pa := e.proxy(func(c *Config) { c.HTTPAddr = "127.0.0.1:0"; c.SessionTTL = time.Minute })
	pb := e.proxy()
	ctx := t.Context()
	for _, path := range []string{"/healthz", "/readyz"} {
		code, body := httpGet(t, "http://"+pa.HTTPAddr()+path)
		if code != 200 || body != "ok\n" {
			t.Fatalf("%s: %d %q", path, code, body)
		}
	}
	ca := newClient(t, []string{pa.AdvertiseAddr()}, func(c *client.Config) { c.DiscoveryInterval = -1 })
	if err := ca.CreateLog(ctx, "handover", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Write(ctx, "handover", dlog.Record{Payload: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	_, metrics := httpGet(t, "http://"+pa.HTTPAddr()+"/metrics")
	for _, m := range []string{`dlog_proxy_write_records_total{log="default/handover"} 1`, "dlog_proxy_owned_logs 1", "dlog_log_records_written_total", "dlog_ledger_adds_total"} {
		if !bytes.Contains([]byte(metrics), []byte(m)) {
			t.Fatalf("/metrics lacks %q", m)
		}
	}
	proxies, err := ca.Proxies(ctx)
	if err != nil || len(proxies) != 2 {
		t.Fatalf("proxies %+v %v", proxies, err)
	}
	for _, p := range proxies {
		if p.Address == pa.AdvertiseAddr() && p.HTTPAddress != pa.HTTPAddr() {
			t.Fatalf("registration %+v lacks the http address %s", p, pa.HTTPAddr())
		}
	}
	if err := pa.Close(); err != nil {
		t.Fatal(err)
	}
	cb := newClient(t, []string{pb.AdvertiseAddr()}, func(c *client.Config) { c.DiscoveryInterval = -1 })
	info, err := cb.LogInfo(ctx, "handover")
	if err != nil || info.Owner != "" {
		t.Fatalf("after shutdown the log is owned by %q (%v)", info.Owner, err)
	}
	if proxies, err := cb.Proxies(ctx); err != nil || len(proxies) != 1 {
		t.Fatalf("after shutdown: proxies %+v %v", proxies, err)
	}
	if _, err := cb.Write(ctx, "handover", dlog.Record{Payload: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if recs := readAll(t, cb, "handover"); len(recs) != 2 {
		t.Fatalf("%d records after the handover", len(recs))
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPendingBound: beyond MaxPendingRecordsPerLog unacknowledged records
// a write is refused at once, definitely. The bookies' add answers are
// held (fault proxies in front of them) so that a write stays pending.
func TestPendingBound(t *testing.T) {
	e := newEnvWithFaults(t)
	p := e.proxy(func(c *Config) { c.MaxPendingRecordsPerLog = 1 })
	c := newClient(t, []string{p.AdvertiseAddr()})
	ctx := t.Context()
	if err := c.CreateLog(ctx, "pending", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(ctx, "pending", dlog.Record{Payload: []byte("warm")}); err != nil {
		t.Fatal(err)
	}
	holdAdds := func(r *bookiepb.Response) cluster.Verdict {
		if r.GetAdd() != nil {
			return cluster.Hold
		}
		return cluster.Pass
	}
	for i := range e.cl.Len() {
		e.cl.Proxy(i).OnResponse(holdAdds)
	}
	first := make(chan error, 1)
	go func() {
		_, err := c.Write(ctx, "pending", dlog.Record{Payload: []byte("held")})
		first <- err
	}()
	waitFor(t, time.Minute, "a pending write", func() bool {
		return metricValue(t, p.Registry(), "dlog_proxy_pending_writes", nil) == 1
	})
	_, err := c.Write(ctx, "pending", dlog.Record{Payload: []byte("refused")})
	if !errors.Is(err, dlog.ErrOverCapacity) || !dlog.IsDefinite(err) {
		t.Fatalf("write beyond the pending bound: %v", err)
	}
	for i := range e.cl.Len() {
		e.cl.Proxy(i).OnResponse(nil)
		e.cl.Proxy(i).Release()
	}
	if err := <-first; err != nil {
		t.Fatalf("the held write: %v", err)
	}
	recs := readAll(t, c, "pending")
	if len(recs) != 2 || string(recs[1].Payload) != "held" {
		t.Fatalf("log holds %d records", len(recs))
	}
}
