package namespace

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
)

// percentiles reports p50 and p99 of ds in milliseconds.
func percentiles(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	p := func(q float64) float64 {
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(p(0.50), "p50-ms")
	b.ReportMetric(p(0.99), "p99-ms")
}

// BenchmarkWrite measures write throughput and latency (accept to
// acknowledgement) on three real bookies in this process (E/Qw/Qa 3/3/2,
// fsynced journals), for 100 B and 1 KiB records, with batching (64 KiB
// record sets) and without (one record per entry), with 256 and 2048
// writes outstanding (one writer's concurrency bounds its throughput:
// throughput ≈ outstanding / latency).
//
//	go test -run '^$' -bench 'BenchmarkWrite$' -benchtime 20000x ./namespace
func BenchmarkWrite(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, batched := range []bool{true, false} {
			for _, window := range []int{256, 2048} {
				mode := "unbatched"
				if batched {
					mode = "batched"
				}
				b.Run(fmt.Sprintf("%dB/%s/outstanding-%d", size, mode, window), func(b *testing.B) {
					benchWrite(b, size, batched, window)
				})
			}
		}
	}
}

func benchWrite(b *testing.B, size int, batched bool, window int) {
	c := startCluster(b, 3, "memory:")
	n := openNS(b, c, func(cfg *Config) {
		cfg.Logger = quietLogger(b)
		cfg.FlushBytes = 0
		if batched {
			cfg.FlushBytes = 64 << 10
		}
	})
	ctx := deadline(b, 10*time.Minute)
	createLog(b, n, "bench")
	w, err := n.OpenWriter(ctx, "bench", WriterOptions{})
	must(b, err, "open writer")
	p := payload(1, size)
	type pending struct {
		f     *Future
		start time.Time
	}
	lat := make([]time.Duration, 0, b.N)
	var out []pending
	settle := func(x pending) {
		if _, err := x.f.Wait(ctx); err != nil {
			b.Fatalf("write: %v", err)
		}
		lat = append(lat, time.Since(x.start))
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if len(out) == window {
			settle(out[0])
			out = out[1:]
		}
		out = append(out, pending{w.WriteAsync(dlog.Record{TxID: int64(i), Payload: p}), time.Now()})
	}
	for _, x := range out {
		settle(x)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "writes/s")
	percentiles(b, lat)
	must(b, w.Close(ctx), "close")
}

// BenchmarkWriteSequential measures the latency of one write at a time
// (Write waits for each acknowledgement): the floor a lone client sees.
//
//	go test -run '^$' -bench BenchmarkWriteSequential -benchtime 2000x ./namespace
func BenchmarkWriteSequential(b *testing.B) {
	c := startCluster(b, 3, "memory:")
	n := openNS(b, c, func(cfg *Config) { cfg.Logger = quietLogger(b) })
	ctx := deadline(b, 10*time.Minute)
	createLog(b, n, "bench")
	w, err := n.OpenWriter(ctx, "bench", WriterOptions{})
	must(b, err, "open writer")
	p := payload(1, 100)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := w.Write(ctx, dlog.Record{TxID: int64(i), Payload: p}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	percentiles(b, lat)
	must(b, w.Close(ctx), "close")
}

// BenchmarkTailLatency measures end-to-end visibility: from a write's
// acknowledgement to a tailing reader delivering it, one write at a time
// (so every record is the last of its burst and becomes visible through
// the explicit LAC the idle writer's ledger sends after ExplicitLACDelay,
// followed by the reader's long poll and read).
//
//	go test -run '^$' -bench BenchmarkTailLatency -benchtime 2000x ./namespace
func BenchmarkTailLatency(b *testing.B) {
	for _, delay := range []time.Duration{time.Millisecond, 5 * time.Millisecond} {
		b.Run(fmt.Sprintf("explicit-lac-%v", delay), func(b *testing.B) { benchTail(b, delay) })
	}
}

func benchTail(b *testing.B, lacDelay time.Duration) {
	c := startCluster(b, 3, "memory:")
	n := openNS(b, c, func(cfg *Config) {
		cfg.Logger = quietLogger(b)
		cfg.LedgerConfig.ExplicitLACDelay = lacDelay
	})
	ctx := deadline(b, 10*time.Minute)
	createLog(b, n, "bench")
	r, err := n.OpenReader(ctx, "bench", AtStart(), ReaderOptions{})
	must(b, err, "open reader")
	defer r.Close()
	w, err := n.OpenWriter(ctx, "bench", WriterOptions{})
	must(b, err, "open writer")
	acked := make([]time.Time, b.N)
	seen := make([]time.Time, b.N)
	got := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range b.N {
			rec, err := r.Next(ctx)
			if err != nil {
				b.Errorf("read %d: %v", i, err)
				close(got)
				return
			}
			seen[rec.TxID] = time.Now()
			got <- struct{}{}
		}
	})
	p := payload(1, 100)
	b.ResetTimer()
	for i := range b.N {
		if _, err := w.Write(ctx, dlog.Record{TxID: int64(i), Payload: p}); err != nil {
			b.Fatal(err)
		}
		acked[i] = time.Now()
		// Wait until the reader has it, so every record is the last of
		// its burst (the worst case for visibility).
		if _, ok := <-got; !ok {
			break
		}
	}
	wg.Wait()
	b.StopTimer()
	lat := make([]time.Duration, 0, b.N)
	for i := range b.N {
		lat = append(lat, max(seen[i].Sub(acked[i]), 0))
	}
	percentiles(b, lat)
	must(b, w.Close(ctx), "close")
}
