package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
)

// checkExactlyOnce checks that the log's records are in strictly
// increasing DLSN order, that every acknowledged write is there exactly
// once at its acknowledged DLSN, and that no payload appears twice.
func checkExactlyOnce(t testing.TB, recs []dlog.ReadRecord, acked map[string]dlog.DLSN) {
	t.Helper()
	seen := make(map[string]dlog.DLSN, len(recs))
	for i, r := range recs {
		if i > 0 && !recs[i-1].DLSN.Less(r.DLSN) {
			t.Fatalf("records %d and %d out of order: %v then %v", i-1, i, recs[i-1].DLSN, r.DLSN)
		}
		k := string(r.Payload)
		if d, dup := seen[k]; dup {
			t.Fatalf("payload %q twice: at %v and %v", k, d, r.DLSN)
		}
		seen[k] = r.DLSN
	}
	for k, d := range acked {
		got, ok := seen[k]
		switch {
		case !ok:
			t.Fatalf("acknowledged record %q (%v) missing", k, d)
		case got != d:
			t.Fatalf("acknowledged record %q at %v, read at %v", k, d, got)
		}
	}
}

// TestFanIn: 50 clients write one log through two proxies; half of them
// know only the proxy that loses the ownership race and are redirected.
// Every acknowledged record is read back exactly once, in one order.
func TestFanIn(t *testing.T) {
	perClient := 40
	if testing.Short() {
		perClient = 10
	}
	const clients = 50
	e := newEnv(t, 3, "memory:")
	pa, pb := e.proxy(), e.proxy()
	admin := newClient(t, []string{pa.AdvertiseAddr()})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := admin.CreateLog(ctx, "fanin", 0); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := make(map[string]dlog.DLSN)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		seed := pa.AdvertiseAddr()
		if i%2 == 1 {
			seed = pb.AdvertiseAddr()
		}
		c := newClient(t, []string{seed}, func(cfg *client.Config) { cfg.DiscoveryInterval = -1 })
		wg.Go(func() {
			var prev dlog.DLSN
			for n := range perClient {
				k := fmt.Sprintf("c%02d-%04d", i, n)
				res, err := c.Write(ctx, "fanin", dlog.Record{Payload: []byte(k)})
				if err != nil {
					errs <- fmt.Errorf("client %d write %d: %w", i, n, err)
					return
				}
				if !prev.Less(res.DLSN) {
					errs <- fmt.Errorf("client %d: write %d at %v after %v", i, n, res.DLSN, prev)
					return
				}
				prev = res.DLSN
				mu.Lock()
				acked[k] = res.DLSN
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(acked) != clients*perClient {
		t.Fatalf("%d writes acknowledged, want %d", len(acked), clients*perClient)
	}
	recs := readAll(t, admin, "fanin")
	if len(recs) != len(acked) {
		t.Fatalf("read %d records, acknowledged %d", len(recs), len(acked))
	}
	checkExactlyOnce(t, recs, acked)

	info, err := admin.LogInfo(ctx, "fanin")
	if err != nil {
		t.Fatal(err)
	}
	owner, other := pa, pb
	if info.Owner == pb.AdvertiseAddr() {
		owner, other = pb, pa
	}
	if info.Owner != owner.AdvertiseAddr() {
		t.Fatalf("owner %q is neither proxy", info.Owner)
	}
	if n := metricValue(t, other.Registry(), "dlog_proxy_redirects_total", nil); n < 1 {
		t.Fatalf("the non-owner redirected %v times", n)
	}
	if n := metricValue(t, owner.Registry(), "dlog_proxy_redirects_total", nil); n != 0 {
		t.Fatalf("the owner redirected %v times", n)
	}
	t.Logf("owner %s; non-owner redirected %v requests", owner.ID(), metricValue(t, other.Registry(), "dlog_proxy_redirects_total", nil))
}

// TestFanOut: 200 readers tail one log through one proxy; the tail cache
// serves them all from one reader of the bookies.
func TestFanOut(t *testing.T) {
	const readers = 200
	records := 300
	if testing.Short() {
		records = 100
	}
	e := newEnv(t, 3, "memory:")
	p := e.proxy()
	c := newClient(t, []string{p.AdvertiseAddr()})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := c.CreateLog(ctx, "fanout", 0); err != nil {
		t.Fatal(err)
	}
	first, err := c.Write(ctx, "fanout", dlog.Record{Payload: []byte("before")})
	if err != nil {
		t.Fatal(err)
	}
	start := first.DLSN.Next()
	rs := make([]*client.Reader, readers)
	for i := range rs {
		if rs[i], err = c.OpenReader(ctx, "fanout", client.AtDLSN(start), client.ReadOptions{Follow: true}); err != nil {
			t.Fatal(err)
		}
		defer rs[i].Close()
	}
	k := logKey{ns: "default", log: "fanout"}
	waitFor(t, time.Minute, "every reader attached to the tail cache", func() bool {
		p.caches.mu.Lock()
		tc := p.caches.byKey[k]
		p.caches.mu.Unlock()
		if tc == nil {
			return false
		}
		tc.mu.Lock()
		defer tc.mu.Unlock()
		return tc.mu.readers == readers
	})
	bookieEntriesBefore := metricValue(t, p.Registry(), "dlog_proxy_bookie_entries_read_total", map[string]string{"log": "default/fanout"})
	nsRecordsBefore := metricValue(t, p.Registry(), "dlog_log_records_read_total", map[string]string{"log": "fanout"})

	var want []client.WriteResult
	entries := map[[2]int64]bool{}
	for i := 0; i < records; i += 10 {
		batch := make([]dlog.Record, 10)
		for j := range batch {
			batch[j] = dlog.Record{Payload: payloadOf(i + j)}
		}
		res, err := c.WriteBulk(ctx, "fanout", batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			entries[[2]int64{r.DLSN.LSSN, r.DLSN.EntryID}] = true
		}
		want = append(want, res...)
	}
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for i, r := range rs {
		wg.Go(func() {
			for n := range records {
				rec, err := r.Next(ctx)
				if err != nil {
					errs <- fmt.Errorf("reader %d record %d: %w", i, n, err)
					return
				}
				if rec.DLSN != want[n].DLSN || !bytes.Equal(rec.Payload, payloadOf(n)) {
					errs <- fmt.Errorf("reader %d record %d: got %v %q, want %v", i, n, rec.DLSN, rec.Payload, want[n].DLSN)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	bookieEntries := metricValue(t, p.Registry(), "dlog_proxy_bookie_entries_read_total", map[string]string{"log": "default/fanout"}) - bookieEntriesBefore
	nsRecords := metricValue(t, p.Registry(), "dlog_log_records_read_total", map[string]string{"log": "fanout"}) - nsRecordsBefore
	fromCache := metricValue(t, p.Registry(), "dlog_proxy_read_records_total", map[string]string{"log": "default/fanout", "source": "cache"})
	t.Logf("%d entries written; read from bookies: %v entries, %v records; %v records served from the cache", len(entries), bookieEntries, nsRecords, fromCache)
	if bookieEntries > 2*float64(len(entries)) {
		t.Fatalf("%v entries read from bookies for %d written: the readers did not share the tail", bookieEntries, len(entries))
	}
	if nsRecords > 2*float64(records) {
		t.Fatalf("namespace readers fetched %v records for %d written", nsRecords, records)
	}
	if fromCache < float64(readers*records) {
		t.Fatalf("only %v records served from the cache", fromCache)
	}
}

// TestSlowReader: a reader that stops consuming blocks neither the writer
// nor the other readers, the cache stays within its bound, and when the
// slow reader goes on it falls back to the bookies and still gets every
// record exactly once.
func TestSlowReader(t *testing.T) {
	const cacheBytes = 64 << 10
	e := newEnv(t, 3, "memory:")
	p := e.proxy(func(c *Config) {
		c.CacheBytesPerLog = cacheBytes
		c.ReadBatchRecords = 16
	})
	c := newClient(t, []string{p.AdvertiseAddr()})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := c.CreateLog(ctx, "slow", 0); err != nil {
		t.Fatal(err)
	}
	slow, err := c.OpenReader(ctx, "slow", client.AtStart(), client.ReadOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := c.OpenReader(ctx, "slow", client.AtStart(), client.ReadOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	// 12 MiB through a 64 KiB cache: far more than the slow reader's
	// HTTP/2 window (4 MiB) and buffers hold.
	const n = 3072
	payload := func(i int) []byte { return append(payloadOf(i), bytes.Repeat([]byte{'x'}, 4<<10)...) }
	var acked []dlog.DLSN
	for i := 0; i < n; i += 32 {
		batch := make([]dlog.Record, 32)
		for j := range batch {
			batch[j] = dlog.Record{Payload: payload(i + j)}
		}
		res, err := c.WriteBulk(ctx, "slow", batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			acked = append(acked, r.DLSN)
		}
	}
	check := func(name string, r *client.Reader) {
		for i := range n {
			rec, err := r.Next(ctx)
			if err != nil {
				t.Fatalf("%s reader record %d: %v", name, i, err)
			}
			if rec.DLSN != acked[i] || !bytes.Equal(rec.Payload, payload(i)) {
				t.Fatalf("%s reader record %d at %v, want %v", name, i, rec.DLSN, acked[i])
			}
		}
	}
	check("fast", fast)
	if b := metricValue(t, p.Registry(), "dlog_proxy_cache_bytes", nil); b > cacheBytes+8<<10 {
		t.Fatalf("cache holds %v bytes, bound %d", b, cacheBytes)
	}
	check("slow", slow)
	// Nothing more: the next read waits (bounded here by a short ctx).
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = slow.Next(short)
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read past the end: %v", err)
	}
	if f := metricValue(t, p.Registry(), "dlog_proxy_cache_fallbacks_total", nil); f < 1 {
		t.Fatalf("the slow reader never fell behind the cache (%v fallbacks)", f)
	}
}
