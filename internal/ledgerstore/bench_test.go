package ledgerstore

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkAddFlush measures AddEntry+Flush throughput on real files: b.N
// entries of the given size spread over 16 ledgers, flushed every 4 MiB.
func BenchmarkAddFlush(b *testing.B) {
	for _, size := range []int{100, 1024, 16 << 10} {
		b.Run(fmt.Sprintf("entry-%dB", size), func(b *testing.B) {
			cfg := testConfig(b.TempDir())
			cfg.EntryLogMaxFileSizeBytes = 512 << 20
			cfg.EntryLogWriteBufferBytes = 1 << 20
			cfg.WriteCacheMaxBytes = 64 << 20
			cfg.FlushThresholdBytes = 4 << 20
			s := openStore(b, cfg)
			defer s.Close()
			data := make([]byte, size)
			next := make([]int64, 16)
			flushes := 0
			var flushTime time.Duration
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := range b.N {
				l := int64(i % 16)
				if err := s.AddEntry(l, next[l], data); err != nil {
					b.Fatal(err)
				}
				next[l]++
				select {
				case <-s.FlushWanted():
					start := time.Now()
					if err := s.Flush(markOf(uint64(i))); err != nil {
						b.Fatal(err)
					}
					flushTime += time.Since(start)
					flushes++
				default:
				}
			}
			start := time.Now()
			if err := s.Flush(markOf(uint64(b.N))); err != nil {
				b.Fatal(err)
			}
			flushTime += time.Since(start)
			flushes++
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(flushTime)/float64(flushes)/1e6, "ms/flush")
		})
	}
}

// BenchmarkGetEntry measures read latency of 1 KiB entries served from the
// write cache and from entry logs (after a flush; the OS page cache is
// warm, so this is the software path, not the disk).
func BenchmarkGetEntry(b *testing.B) {
	const ledgers, perLedger = 8, 2000
	for _, from := range []string{"write-cache", "entry-log"} {
		b.Run(from, func(b *testing.B) {
			cfg := testConfig(b.TempDir())
			cfg.WriteCacheMaxBytes = 64 << 20
			cfg.FlushThresholdBytes = 64 << 20
			cfg.EntryLogMaxFileSizeBytes = 512 << 20
			s := openStore(b, cfg)
			defer s.Close()
			data := make([]byte, 1024)
			for e := range int64(perLedger) {
				for l := range int64(ledgers) {
					if err := s.AddEntry(l, e, data); err != nil {
						b.Fatal(err)
					}
				}
			}
			if from == "entry-log" {
				if err := s.Flush(nil); err != nil {
					b.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for range b.N {
				if _, err := s.GetEntry(rng.Int64N(ledgers), rng.Int64N(perLedger)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "µs/read")
		})
	}
}
