package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
)

// Benchmarks of the service tier: one proxy in front of three real bookies
// (journal fsync on) over loopback, clients in the same process.
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/proxy/
//
// Each reports records/s and, for writes, p50/p99 latency per write.

// benchEnv is one cluster and proxy shared by a benchmark's sub-benchmarks.
type benchEnv struct {
	p *Server
	c *client.Client
}

func newBenchEnv(b *testing.B) *benchEnv {
	e := newEnv(b, 3, "memory:")
	p := e.proxy(func(c *Config) {
		c.Logger = quietLogger(b)
		c.MaxPendingRecordsPerLog = 1 << 20
		c.MaxPendingBytesPerLog = 1 << 30
	})
	c := newClient(b, []string{p.AdvertiseAddr()}, func(c *client.Config) { c.Logger = quietLogger(b) })
	return &benchEnv{p: p, c: c}
}

var benchLogs atomic.Int64

func (be *benchEnv) newLog(b *testing.B) string {
	name := fmt.Sprintf("bench-%d", benchLogs.Add(1))
	if err := be.c.CreateLog(b.Context(), name, 0); err != nil {
		b.Fatal(err)
	}
	return name
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkWrite: concurrent writers, one Write (one record) each at a
// time, through one proxy (the client coalesces concurrent Writes into
// WriteBulk requests: client.Config.BatchWrites).
func BenchmarkWrite(b *testing.B) {
	benchWrite(b, newBenchEnv(b).c, []int{100, 1024}, []int{1, 16, 256})
}

// BenchmarkWriteUnbatched: BenchmarkWrite's 100 B records with a client
// that sends every Write as its own request (the cost batching saves).
func BenchmarkWriteUnbatched(b *testing.B) {
	be := newBenchEnv(b)
	c := newClient(b, []string{be.p.AdvertiseAddr()}, func(c *client.Config) { c.Logger = quietLogger(b); c.BatchWrites = false })
	benchWrite(b, c, []int{100}, []int{16, 256})
}

func benchWrite(b *testing.B, c *client.Client, sizes, concurrency []int) {
	be := &benchEnv{c: c}
	for _, size := range sizes {
		for _, writers := range concurrency {
			b.Run(fmt.Sprintf("size=%d/writers=%d", size, writers), func(b *testing.B) {
				log := be.newLog(b)
				// Take the log over before the clock starts.
				if _, err := be.c.Write(b.Context(), log, dlog.Record{Payload: []byte("warm")}); err != nil {
					b.Fatal(err)
				}
				payload := bytes.Repeat([]byte{'x'}, size)
				lat := make([]time.Duration, b.N)
				var next atomic.Int64
				var failed atomic.Pointer[error]
				b.SetBytes(int64(size))
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							t0 := time.Now()
							if _, err := be.c.Write(b.Context(), log, dlog.Record{Payload: payload}); err != nil {
								failed.Store(&err)
								return
							}
							lat[i] = time.Since(t0)
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				if err := failed.Load(); err != nil {
					b.Fatal(*err)
				}
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
				reportLatency(b, lat)
			})
		}
	}
}

// BenchmarkTailLatency: the time from the start of a Write to the moment a
// following reader (through the same proxy) delivers the record.
func BenchmarkTailLatency(b *testing.B) {
	be := newBenchEnv(b)
	log := be.newLog(b)
	ctx := b.Context()
	r, err := be.c.OpenReader(ctx, log, client.AtEnd(), client.ReadOptions{Follow: true})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	// Wait until the reader is at the tail: write markers until it
	// delivers one.
	for {
		if _, err := be.c.Write(ctx, log, dlog.Record{Payload: []byte("warm")}); err != nil {
			b.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := r.Next(wctx)
		cancel()
		if err == nil {
			break
		}
	}
	// Drain the other warm-up records.
	for {
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := r.Next(wctx)
		cancel()
		if err != nil {
			break
		}
	}
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		var p [8]byte
		t0 := time.Now()
		binary.BigEndian.PutUint64(p[:], uint64(t0.UnixNano()))
		if _, err := be.c.Write(ctx, log, dlog.Record{Payload: p[:]}); err != nil {
			b.Fatal(err)
		}
		rec, err := r.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		lat[i] = time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(rec.Payload))))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

// fill writes n records of size bytes to log in bulks of 1000.
func (be *benchEnv) fill(b *testing.B, log string, n, size int) {
	payload := bytes.Repeat([]byte{'r'}, size)
	for i := 0; i < n; i += 1000 {
		recs := make([]dlog.Record, min(1000, n-i))
		for j := range recs {
			recs[j] = dlog.Record{Payload: payload}
		}
		if _, err := be.c.WriteBulk(b.Context(), log, recs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCatchUpRead: one reader reading a log from its start (from the
// bookies: nothing is cached for a reader that far behind).
func BenchmarkCatchUpRead(b *testing.B) {
	be := newBenchEnv(b)
	const size = 100
	log := be.newLog(b)
	be.fill(b, log, b.N, size)
	if _, err := be.c.Heartbeat(b.Context(), log); err != nil { // everything readable
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ResetTimer()
	start := time.Now()
	r, err := be.c.OpenReader(b.Context(), log, client.AtStart(), client.ReadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	n := 0
	for _, err := range r.All(b.Context()) {
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if n != b.N {
		b.Fatalf("read %d of %d", n, b.N)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
}

// BenchmarkFanOut: 100 readers following one log through one proxy while
// one writer writes b.N records in bulks; records/s counts deliveries
// (100 per record written).
func BenchmarkFanOut(b *testing.B) {
	const readers, size = 100, 100
	be := newBenchEnv(b)
	log := be.newLog(b)
	ctx := b.Context()
	first, err := be.c.Write(ctx, log, dlog.Record{Payload: []byte("start")})
	if err != nil {
		b.Fatal(err)
	}
	rs := make([]*client.Reader, readers)
	for i := range rs {
		if rs[i], err = be.c.OpenReader(ctx, log, client.AtDLSN(first.DLSN.Next()), client.ReadOptions{Follow: true}); err != nil {
			b.Fatal(err)
		}
		defer rs[i].Close()
	}
	b.SetBytes(size * readers)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for _, r := range rs {
		wg.Go(func() {
			for range b.N {
				if _, err := r.Next(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	be.fill(b, log, b.N, size)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*readers)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(metricValue(b, be.p.Registry(), "dlog_proxy_bookie_entries_read_total", map[string]string{"log": "default/" + log}), "bookie-entries")
}
