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

// TestClientBatchesConcurrentWrites: concurrent untagged Writes of one log
// travel as WriteBulk requests (fewer requests than records), every one
// keeps its own outcome — an oversized record and a txid below the log's
// fail alone, definitely, even when they share a request with good ones —
// and every acknowledged record is in the log exactly once.
func TestClientBatchesConcurrentWrites(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	p := e.proxy(func(c *Config) {
		c.MaxRecordBytes = 4 << 10
		c.MaxMessageBytes = 1 << 20
	})
	// One request in flight at a time: the others queue and go together.
	c := newClient(t, []string{p.AdvertiseAddr()}, func(c *client.Config) { c.BatchesInFlight = 1 })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const log = "batched"
	if err := c.CreateLog(ctx, log, 0); err != nil {
		t.Fatal(err)
	}
	first, err := c.Write(ctx, log, dlog.Record{Payload: []byte("first")})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 64, 8
	var mu sync.Mutex
	acked := map[string]dlog.DLSN{"first": first.DLSN}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			for n := range each {
				rec := dlog.Record{Payload: []byte(fmt.Sprintf("w%02d-%d", i, n))}
				switch {
				case i == 7 && n == 3: // too large: refused alone
					_, err := c.Write(ctx, log, dlog.Record{Payload: bytes.Repeat([]byte{'x'}, 8<<10)})
					if !errors.Is(err, dlog.ErrRecordTooLarge) || !dlog.IsDefinite(err) {
						errs <- fmt.Errorf("oversized record: %v, want a definite ErrRecordTooLarge", err)
					}
					continue
				case i == 9 && n == 5: // txid below the log's: refused alone
					_, err := c.Write(ctx, log, dlog.Record{TxID: 1, Payload: []byte("old")})
					if !errors.Is(err, dlog.ErrTxIDOutOfOrder) || !dlog.IsDefinite(err) {
						errs <- fmt.Errorf("txid 1: %v, want a definite ErrTxIDOutOfOrder", err)
					}
					continue
				}
				res, err := c.Write(ctx, log, rec)
				if err != nil {
					errs <- fmt.Errorf("writer %d record %d: %w", i, n, err)
					return
				}
				if res.Owner != p.AdvertiseAddr() {
					errs <- fmt.Errorf("writer %d record %d: owner %q", i, n, res.Owner)
					return
				}
				mu.Lock()
				acked[string(rec.Payload)] = res.DLSN
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	bulks := metricValue(t, p.Registry(), "dlog_proxy_rpcs_total", map[string]string{"method": "WriteBulk", "code": "CODE_OK"})
	singles := metricValue(t, p.Registry(), "dlog_proxy_rpcs_total", map[string]string{"method": "Write", "code": "CODE_OK"})
	t.Logf("%d records acknowledged in %v WriteBulk and %v Write requests", len(acked), bulks, singles)
	if bulks == 0 || bulks+singles >= float64(len(acked)) {
		t.Fatalf("%d records took %v bulk and %v single requests: no coalescing", len(acked), bulks, singles)
	}
	if _, err := c.Heartbeat(ctx, log); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, c, log)
	if len(recs) != len(acked) {
		t.Fatalf("read %d records, %d acknowledged", len(recs), len(acked))
	}
	checkExactlyOnce(t, recs, acked)
}

// TestClientBatchQueueHonoursCtx: a Write whose ctx ends while it waits in
// the client's queue fails definitely (it was never sent).
func TestClientBatchQueueHonoursCtx(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	p := e.proxy()
	c := newClient(t, []string{p.AdvertiseAddr()}, func(c *client.Config) { c.BatchesInFlight = 1 })
	ctx := t.Context()
	if err := c.CreateLog(ctx, "q", 0); err != nil {
		t.Fatal(err)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err := c.Write(done, "q", dlog.Record{Payload: []byte("x")})
	if err == nil {
		t.Fatal("write with an ended ctx succeeded")
	}
	if _, err := c.Write(ctx, "q", dlog.Record{Payload: []byte("y")}); err != nil {
		t.Fatalf("write after a cancelled one: %v", err)
	}
}
