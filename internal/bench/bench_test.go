package bench_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/client"
	"github.com/dlog-io/dlog/internal/bench"
	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/sandbox"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startSandbox runs an in-process sandbox and a client of it.
func startSandbox(tb testing.TB) *client.Client {
	tb.Helper()
	cfg := sandbox.DefaultConfig(tb.TempDir())
	cfg.Bookies = 3
	cfg.ListenAddr, cfg.HTTPAddr = "127.0.0.1:0", ""
	cfg.Bookie = func(_ int, b *bookie.Config) {
		b.JournalFileSizeBytes = 4 << 20
		b.WriteCacheMaxBytes = 16 << 20
		b.MinFreeBytes = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sb.Close() })
	ccfg := client.DefaultConfig(sb.Addr())
	ccfg.DiscoveryInterval = -1
	c, err := client.New(ctx, ccfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func TestRunModes(t *testing.T) {
	c := startSandbox(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name string
		tune func(*bench.Config)
	}{
		{"write", func(cfg *bench.Config) {
			cfg.Mode = bench.Write
			cfg.Records, cfg.Concurrency, cfg.BatchRecords = 600, 4, 10
		}},
		{"write single records", func(cfg *bench.Config) { cfg.Mode = bench.Write; cfg.Records, cfg.Concurrency = 100, 8 }},
		{"write several logs", func(cfg *bench.Config) {
			cfg.Mode = bench.Write
			cfg.Log, cfg.Logs, cfg.Records, cfg.Concurrency, cfg.BatchRecords = "multi", 3, 300, 6, 5
		}},
		{"read", func(cfg *bench.Config) { cfg.Mode = bench.Read; cfg.Log, cfg.Records, cfg.Readers = "readme", 700, 2 }},
		{"tail", func(cfg *bench.Config) {
			cfg.Mode = bench.Tail
			cfg.Log, cfg.Records, cfg.Rate, cfg.Concurrency, cfg.Readers = "tail", 200, 2000, 2, 2
		}},
		{"e2e", func(cfg *bench.Config) {
			cfg.Mode = bench.EndToEnd
			cfg.Log, cfg.Records, cfg.Concurrency, cfg.BatchRecords = "e2e", 500, 4, 10
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := bench.DefaultConfig(bench.Write, c)
			tc.tune(&cfg)
			var calls int
			cfg.Progress = func(int64, time.Duration) { calls++ }
			res, err := bench.Run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", res)
			if res.Errors != 0 || res.FirstError != "" {
				t.Fatalf("errors: %d (%s)", res.Errors, res.FirstError)
			}
			want := cfg.Records
			if cfg.Mode == bench.Read {
				want *= int64(cfg.Readers) // every reader reads them all
			}
			if res.Records != want || res.Mode != cfg.Mode.String() || res.RecordsPerSecond <= 0 || res.MBPerSecond <= 0 {
				t.Fatalf("result %+v; want %d records", res, want)
			}
			if res.Bytes != want*int64(cfg.RecordBytes) {
				t.Fatalf("bytes %d; want %d", res.Bytes, want*int64(cfg.RecordBytes))
			}
			if calls == 0 {
				t.Fatal("progress never reported")
			}
			switch cfg.Mode {
			case bench.Write:
				if res.WriteLatency == nil || res.WriteLatency.Count != cfg.Records || res.EndToEndLatency != nil {
					t.Fatalf("latencies %+v %+v", res.WriteLatency, res.EndToEndLatency)
				}
			case bench.Read:
				if res.Delivered != want {
					t.Fatalf("delivered %d", res.Delivered)
				}
			case bench.Tail, bench.EndToEnd:
				e2e := res.EndToEndLatency
				if e2e == nil || e2e.Count != cfg.Records*int64(cfg.Readers) || res.Delivered != e2e.Count {
					t.Fatalf("end-to-end %+v, delivered %d", e2e, res.Delivered)
				}
				if (cfg.Mode == bench.Tail) != (res.WriteLatency == nil) {
					t.Fatalf("write latency %+v in mode %v", res.WriteLatency, cfg.Mode)
				}
			}
			for _, l := range []*bench.Latency{res.WriteLatency, res.EndToEndLatency} {
				if l != nil && !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.P50 > 0) {
					t.Fatalf("latency percentiles out of order: %+v", l)
				}
			}
		})
	}
	t.Run("duration", func(t *testing.T) {
		cfg := bench.DefaultConfig(bench.Write, c)
		cfg.Records, cfg.Duration, cfg.Concurrency = 0, 300*time.Millisecond, 2
		res, err := bench.Run(ctx, cfg)
		if err != nil || res.Records == 0 {
			t.Fatalf("%+v %v", res, err)
		}
	})
	for _, bad := range []bench.Config{
		{},
		{Mode: bench.Write, Client: c, Log: "x", Logs: 1, RecordBytes: 8, Concurrency: 1, BatchRecords: 1, Readers: 1, Records: 1},
		{Mode: bench.Write, Client: c, Log: "x", Logs: 1, RecordBytes: 64, Concurrency: 1, BatchRecords: 1, Readers: 1},
		{Mode: bench.Write, Client: c, Log: "a/b", Logs: 1, RecordBytes: 64, Concurrency: 1, BatchRecords: 1, Readers: 1, Records: 1},
	} {
		if _, err := bench.Run(ctx, bad); err == nil {
			t.Errorf("Run(%+v) accepted", bad)
		}
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []bench.Mode{bench.Write, bench.Read, bench.Tail, bench.EndToEnd} {
		if got, err := bench.ParseMode(m.String()); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m, got, err)
		}
	}
	if _, err := bench.ParseMode("fast"); err == nil {
		t.Error("ParseMode(fast) accepted")
	}
}

// BenchmarkWrite measures acknowledged appends through a proxy, one
// record per request, 16 in flight.
func BenchmarkWrite(b *testing.B) { benchmark(b, bench.Write, 1) }

// BenchmarkWriteBatched sends 100 records per request.
func BenchmarkWriteBatched(b *testing.B) { benchmark(b, bench.Write, 100) }

// BenchmarkEndToEnd measures writes with one tailing reader.
func BenchmarkEndToEnd(b *testing.B) { benchmark(b, bench.EndToEnd, 10) }

func benchmark(b *testing.B, m bench.Mode, batch int) {
	c := startSandbox(b)
	cfg := bench.DefaultConfig(m, c)
	cfg.Records = int64(max(b.N, batch))
	cfg.BatchRecords = batch
	b.SetBytes(int64(cfg.RecordBytes))
	b.ResetTimer()
	res, err := bench.Run(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	if res.Errors > 0 {
		b.Fatalf("%d errors: %s", res.Errors, res.FirstError)
	}
	b.ReportMetric(res.RecordsPerSecond, "records/s")
	for name, l := range map[string]*bench.Latency{"write": res.WriteLatency, "e2e": res.EndToEndLatency} {
		if l != nil {
			b.ReportMetric(float64(l.P50.Microseconds()), name+"-p50-µs")
			b.ReportMetric(float64(l.P99.Microseconds()), name+"-p99-µs")
		}
	}
}

// TestHistogramQuantiles checks the histogram against exact quantiles of
// random samples: within 1%.
func TestHistogramQuantiles(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	var samples []time.Duration
	for range 100000 {
		samples = append(samples, time.Duration(rnd.ExpFloat64()*float64(2*time.Millisecond)))
	}
	got := bench.Quantiles(samples, 0.5, 0.9, 0.99, 0.999)
	slices.Sort(samples)
	for i, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := samples[int(q*float64(len(samples))+0.5)-1]
		diff := float64(got[i]-want) / float64(want)
		if diff < -0.01 || diff > 0.01 {
			t.Errorf("q%v = %v; exact %v (%.2f%% off)", q, got[i], want, 100*diff)
		}
	}
}
