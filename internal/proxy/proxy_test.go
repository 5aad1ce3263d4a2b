package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/client"
)

func payloadOf(i int) []byte { return []byte(fmt.Sprintf("record-%06d", i)) }

// readAll reads log from the start to its current end through c, after
// a heartbeat made everything written visible to readers.
func readAll(t testing.TB, c *client.Client, log string) []dlog.ReadRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := c.Heartbeat(ctx, log); err != nil {
		t.Fatalf("heartbeat %s: %v", log, err)
	}
	r, err := c.OpenReader(ctx, log, client.AtStart(), client.ReadOptions{})
	if err != nil {
		t.Fatalf("open reader: %v", err)
	}
	defer r.Close()
	var out []dlog.ReadRecord
	for rec, err := range r.All(ctx) {
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s after %d records: %v", log, len(out), err)
		}
		out = append(out, rec)
	}
	return out
}

func TestWriteReadRoundTrip(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	p := e.proxy()
	c := newClient(t, []string{p.AdvertiseAddr()})
	ctx := t.Context()
	if err := c.CreateLog(ctx, "orders", 0); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.CreateLog(ctx, "orders", 0); !errors.Is(err, dlog.ErrLogExists) || !dlog.IsDefinite(err) {
		t.Fatalf("create again: %v, want definite ErrLogExists", err)
	}
	var acked []client.WriteResult
	for i := range 20 {
		res, err := c.Write(ctx, "orders", dlog.Record{Payload: payloadOf(i)})
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if res.Duplicate {
			t.Fatalf("write %d: duplicate on a first attempt", i)
		}
		if res.Owner != p.AdvertiseAddr() {
			t.Fatalf("write %d: owner %q, want %s", i, res.Owner, p.AdvertiseAddr())
		}
		acked = append(acked, res)
	}
	bulk := make([]dlog.Record, 30)
	for i := range bulk {
		bulk[i] = dlog.Record{Payload: payloadOf(20 + i)}
	}
	res, err := c.WriteBulk(ctx, "orders", bulk)
	if err != nil {
		t.Fatalf("bulk: %v", err)
	}
	if res[len(res)-1].Owner != p.AdvertiseAddr() {
		t.Fatalf("bulk: owner %q", res[len(res)-1].Owner)
	}
	acked = append(acked, res...)
	for i := 1; i < len(acked); i++ {
		if !acked[i-1].DLSN.Less(acked[i].DLSN) || acked[i].TxID < acked[i-1].TxID {
			t.Fatalf("acks %d and %d out of order: %+v %+v", i-1, i, acked[i-1], acked[i])
		}
	}
	recs := readAll(t, c, "orders")
	if len(recs) != len(acked) {
		t.Fatalf("read %d records, acknowledged %d", len(recs), len(acked))
	}
	for i, r := range recs {
		if r.DLSN != acked[i].DLSN || r.TxID != acked[i].TxID || !bytes.Equal(r.Payload, payloadOf(i)) || r.SequenceID != int64(i) {
			t.Fatalf("record %d: %+v, acknowledged %+v", i, r, acked[i])
		}
	}
	info, err := c.LogInfo(ctx, "orders")
	if err != nil {
		t.Fatalf("info: %v", err)
	}
	if info.RecordCount != int64(len(acked)) || info.LastDLSN != acked[len(acked)-1].DLSN || info.FirstDLSN != acked[0].DLSN || info.Owner != p.AdvertiseAddr() {
		t.Fatalf("info %+v", info)
	}
	last, txid, err := c.LastDLSN(ctx, "orders")
	if err != nil || last != acked[len(acked)-1].DLSN || txid != acked[len(acked)-1].TxID {
		t.Fatalf("last dlsn %v %d %v", last, txid, err)
	}
	if err := c.CommitSubscription(ctx, "orders", "billing", acked[9].DLSN, false); err != nil {
		t.Fatalf("commit subscription: %v", err)
	}
	if d, _, err := c.Subscription(ctx, "orders", "billing"); err != nil || d != acked[9].DLSN {
		t.Fatalf("subscription %v %v", d, err)
	}
	if _, _, err := c.Subscription(ctx, "orders", "nobody"); !errors.Is(err, dlog.ErrNotFound) {
		t.Fatalf("unknown subscription: %v", err)
	}
	r, err := c.OpenReader(ctx, "orders", client.AtSubscription("billing"), client.ReadOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Next(ctx)
	r.Close()
	if err != nil || rec.DLSN != acked[10].DLSN {
		t.Fatalf("read after subscription: %v %v", rec.DLSN, err)
	}
	owner, err := c.Heartbeat(ctx, "orders")
	if err != nil || owner != p.AdvertiseAddr() {
		t.Fatalf("heartbeat %q %v", owner, err)
	}
	segs, err := c.Segments(ctx, "orders")
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments %v %v", segs, err)
	}
	to, err := c.Truncate(ctx, "orders", acked[5].DLSN)
	if err != nil || to != acked[5].DLSN {
		t.Fatalf("truncate: %v %v", to, err)
	}
	if recs := readAll(t, c, "orders"); len(recs) != len(acked)-5 || recs[0].DLSN != acked[5].DLSN {
		t.Fatalf("after truncation read %d records from %v", len(recs), recs[0].DLSN)
	}
	names, next, err := c.ListLogs(ctx, "ord", "", 0)
	if err != nil || len(names) != 1 || names[0] != "orders" || next != "" {
		t.Fatalf("list logs %v %q %v", names, next, err)
	}
	proxies, err := c.Proxies(ctx)
	if err != nil || len(proxies) != 1 || proxies[0].Address != p.AdvertiseAddr() || !proxies[0].AcceptNewLogs {
		t.Fatalf("proxies %+v %v", proxies, err)
	}
	bookies, err := c.Bookies(ctx)
	if err != nil || len(bookies) != 3 {
		t.Fatalf("bookies %+v %v", bookies, err)
	}
	ld, err := c.Ledger(ctx, segs[0].LedgerID)
	if err != nil || ld.GetEnsembleSize() != 3 {
		t.Fatalf("ledger %v %v", ld, err)
	}
	entries := 0
	for _, err := range c.ReadLedger(ctx, segs[0].LedgerID, 0, -1) {
		if err != nil {
			t.Fatalf("read ledger: %v", err)
		}
		entries++
	}
	if entries == 0 {
		t.Fatal("read ledger: no entry")
	}
	if err := c.DeleteLog(ctx, "orders", false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.Write(ctx, "orders", dlog.Record{Payload: []byte("x")}); !errors.Is(err, dlog.ErrLogNotFound) || !dlog.IsDefinite(err) {
		t.Fatalf("write to deleted log: %v", err)
	}
}

// post sends a Connect unary request with a JSON body.
func post(t testing.TB, addr, procedure, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+procedure, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", procedure, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("POST %s: %d %q: %v", procedure, resp.StatusCode, b, err)
	}
	return resp.StatusCode, out
}

func TestHTTPJSONAndGRPC(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	p := e.proxy()
	addr := p.AdvertiseAddr()
	if code, _ := post(t, addr, "/dlog.api.v1.LogService/CreateLog", `{"log":{"log":"web"}}`); code != 200 {
		t.Fatalf("create: %d", code)
	}
	code, out := post(t, addr, "/dlog.api.v1.LogService/Write", `{"log":{"log":"web"},"record":{"payload":"aGVsbG8=","txid":"42"}}`)
	if code != 200 || out["dlsn"] != "1:0:0" || out["txid"] != "42" {
		t.Fatalf("write: %d %v", code, out)
	}
	// A definite error carries its detail as JSON.
	code, out = post(t, addr, "/dlog.api.v1.LogService/Write", `{"log":{"log":"web"},"record":{"payload":"aGVsbG8=","txid":"7"}}`)
	if code != 400 {
		t.Fatalf("txid out of order: %d %v", code, out)
	}
	details, _ := out["details"].([]any)
	if len(details) != 1 {
		t.Fatalf("error without detail: %v", out)
	}
	debug, _ := details[0].(map[string]any)["debug"].(map[string]any)
	if debug["code"] != "CODE_TXID_OUT_OF_ORDER" || debug["definite"] != true || debug["reason"] != "txid-out-of-order" {
		t.Fatalf("detail %v", debug)
	}
	// Malformed JSON and bad names: clear errors, and the proxy serves on.
	if code, out := post(t, addr, "/dlog.api.v1.LogService/Write", `{"log":`); code != 400 || out["code"] != "invalid_argument" {
		t.Fatalf("malformed: %d %v", code, out)
	}
	if code, out := post(t, addr, "/dlog.api.v1.LogService/Write", `{"log":{"log":"../etc"},"record":{}}`); code != 400 || !strings.Contains(fmt.Sprint(out), "invalid-name") {
		t.Fatalf("bad name: %d %v", code, out)
	}

	// The same handlers over gRPC, with grpc-go.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gc := dlogpb.NewLogServiceClient(conn)
	resp, err := gc.Write(t.Context(), &dlogpb.WriteRequest{Log: &dlogpb.LogRef{Log: "web"}, Record: &dlogpb.Record{Payload: []byte("grpc")}})
	if err != nil || resp.GetDlsn() == "" {
		t.Fatalf("grpc write: %v %v", resp, err)
	}
	_, err = gc.Write(t.Context(), &dlogpb.WriteRequest{Log: &dlogpb.LogRef{Log: "missing"}, Record: &dlogpb.Record{}})
	st, _ := grpcstatus.FromError(err)
	var detail *dlogpb.ErrorDetail
	for _, d := range st.Details() {
		if v, ok := d.(*dlogpb.ErrorDetail); ok {
			detail = v
		}
	}
	if detail == nil || detail.GetCode() != dlogpb.Code_CODE_NOT_FOUND || detail.GetReason() != "log-not-found" || !detail.GetDefinite() {
		t.Fatalf("grpc error %v, detail %v", err, detail)
	}
	if _, err := gc.Heartbeat(t.Context(), &dlogpb.HeartbeatRequest{Log: &dlogpb.LogRef{Log: "web"}}); err != nil {
		t.Fatal(err)
	}
	rs, err := gc.Read(t.Context(), &dlogpb.ReadRequest{Log: &dlogpb.LogRef{Log: "web"}, From: &dlogpb.ReadRequest_Start{Start: true}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m, err := rs.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("grpc read: %v", err)
		}
		for _, r := range m.GetRecords() {
			got = append(got, string(r.GetPayload()))
		}
	}
	if strings.Join(got, ",") != "hello,grpc" {
		t.Fatalf("grpc read %v", got)
	}
}

// TestSetRetention: a log created to keep everything gets a retention
// through any proxy; the collector then deletes its completed segments,
// and the log's info shows the new period. Bad requests fail definitely.
func TestSetRetention(t *testing.T) {
	_, c := collectingProxy(t)
	ctx := t.Context()
	if err := c.CreateLog(ctx, "metrics", 0); err != nil {
		t.Fatal(err)
	}
	last := writeSegments(t, c, "metrics", 4)
	segs, err := c.Segments(ctx, "metrics")
	if err != nil || len(segs) < 4 {
		t.Fatalf("segments before: %d %v", len(segs), err)
	}
	if info, err := c.LogInfo(ctx, "metrics"); err != nil || info.Retention != 0 {
		t.Fatalf("info before: %+v %v", info, err)
	}
	if err := c.SetRetention(ctx, "metrics", time.Millisecond); err != nil {
		t.Fatalf("set retention: %v", err)
	}
	if info, err := c.LogInfo(ctx, "metrics"); err != nil || info.Retention != time.Millisecond {
		t.Fatalf("info after: %+v %v", info, err)
	}
	waitCollected(t, c, "metrics", last)
	// The newest record survives; reads start at its segment.
	if recs := readAll(t, c, "metrics"); len(recs) == 0 || recs[len(recs)-1].DLSN != last {
		t.Fatalf("after collection read %d records", len(recs))
	}
	if err := c.SetRetention(ctx, "metrics", -time.Second); !errors.Is(err, dlog.ErrInvalidArgument) {
		t.Fatalf("negative retention: %v", err)
	}
	if err := c.SetRetention(ctx, "nothing", time.Hour); !errors.Is(err, dlog.ErrLogNotFound) || !dlog.IsDefinite(err) {
		t.Fatalf("retention of a missing log: %v", err)
	}
}

// TestNamespaceAdmin: namespaces are created, listed, described, given a
// default retention that the collector applies to their logs, and deleted
// only when empty; every refusal is definite.
func TestNamespaceAdmin(t *testing.T) {
	p, c := collectingProxy(t)
	ctx := t.Context()
	if err := c.CreateNamespace(ctx, "team-a", 0); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := c.CreateNamespace(ctx, "team-a", 0); !errors.Is(err, dlog.ErrNamespaceExists) || !dlog.IsDefinite(err) {
		t.Fatalf("create again: %v", err)
	}
	if err := c.CreateNamespace(ctx, "bad/name", 0); !errors.Is(err, dlog.ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
	names, err := c.Namespaces(ctx)
	if err != nil || !slices.Contains(names, "team-a") {
		t.Fatalf("list: %v %v", names, err)
	}
	if info, err := c.NamespaceInfo(ctx, "team-a"); err != nil || info.Retention != 0 || info.Created.IsZero() {
		t.Fatalf("info: %+v %v", info, err)
	}
	if _, err := c.NamespaceInfo(ctx, "nobody"); !errors.Is(err, dlog.ErrNamespaceNotFound) || !dlog.IsDefinite(err) {
		t.Fatalf("info of a missing namespace: %v", err)
	}

	// A log without its own retention follows the namespace's.
	tc := c.Namespace("team-a")
	if err := tc.CreateLog(ctx, "events", 0); err != nil {
		t.Fatal(err)
	}
	last := writeSegments(t, tc, "events", 4)
	if err := c.SetNamespaceRetention(ctx, "team-a", time.Millisecond); err != nil {
		t.Fatalf("set retention: %v", err)
	}
	if info, err := c.NamespaceInfo(ctx, "team-a"); err != nil || info.Retention != time.Millisecond {
		t.Fatalf("info after set: %+v %v", info, err)
	}
	waitCollected(t, tc, "events", last)
	if err := c.SetNamespaceRetention(ctx, "nobody", time.Hour); !errors.Is(err, dlog.ErrNamespaceNotFound) {
		t.Fatalf("retention of a missing namespace: %v", err)
	}
	if err := c.SetNamespaceRetention(ctx, "team-a", -time.Hour); !errors.Is(err, dlog.ErrInvalidArgument) {
		t.Fatalf("negative retention: %v", err)
	}

	// Only an empty namespace goes, and never the proxy's default.
	if err := c.DeleteNamespace(ctx, "team-a"); !errors.Is(err, dlog.ErrNamespaceNotEmpty) || !dlog.IsDefinite(err) {
		t.Fatalf("delete of a namespace with a log: %v", err)
	}
	if err := tc.DeleteLog(ctx, "events", false); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNamespace(ctx, "team-a"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := tc.CreateLog(ctx, "again", 0); !errors.Is(err, dlog.ErrNamespaceNotFound) {
		t.Fatalf("create a log in a deleted namespace: %v", err)
	}
	if err := c.DeleteNamespace(ctx, "team-a"); !errors.Is(err, dlog.ErrNamespaceNotFound) {
		t.Fatalf("delete again: %v", err)
	}
	if err := c.DeleteNamespace(ctx, p.cfg.DefaultNamespace); !errors.Is(err, dlog.ErrInvalidArgument) {
		t.Fatalf("delete of the default namespace: %v", err)
	}
}

// writeSegments writes 200-byte records to log until one lands in segment
// lssn (the proxy rolls small segments) and returns its DLSN.
func writeSegments(t *testing.T, c *client.Client, log string, lssn int64) dlog.DLSN {
	t.Helper()
	var last dlog.DLSN
	for last.LSSN < lssn {
		res, err := c.Write(t.Context(), log, dlog.Record{Payload: bytes.Repeat([]byte{'r'}, 200)})
		if err != nil {
			t.Fatalf("write to %s: %v", log, err)
		}
		last = res.DLSN
	}
	return last
}

// waitCollected waits until the collector deleted every completed segment
// of log before last's but the last completed one (it seeds the sequence
// ids of the next).
func waitCollected(t *testing.T, c *client.Client, log string, last dlog.DLSN) {
	t.Helper()
	waitFor(t, 30*time.Second, "completed segments of "+log+" collected", func() bool {
		s, err := c.Segments(t.Context(), log)
		return err == nil && len(s) > 0 && s[0].LSSN == last.LSSN-1
	})
}

// collectingProxy starts a proxy that rolls 1 KiB segments and collects
// every 50 ms, and a client of it.
func collectingProxy(t *testing.T) (*Server, *client.Client) {
	e := newEnv(t, 3, "memory:")
	p := e.proxy(func(cfg *Config) {
		cfg.Namespace.SegmentRollBytes = 1 << 10
		cfg.Namespace.FlushBytes = 256
		cfg.Namespace.GCInterval = 50 * time.Millisecond
	})
	return p, newClient(t, []string{p.AdvertiseAddr()})
}
