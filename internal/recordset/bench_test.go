package recordset

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// logLikeBuilder fills a builder with ~setBytes of log-like records:
// timestamped lines with a few levels, paths, ids and latencies, the kind
// of text a log service carries (repetitive structure, varying fields).
func logLikeBuilder(b *testing.B, setBytes int) *Builder {
	rng := rand.New(rand.NewPCG(1, 2))
	levels := []string{"INFO", "INFO", "INFO", "WARN", "DEBUG", "ERROR"}
	paths := []string{"/v1/logs/append", "/v1/logs/read", "/v1/segments", "/healthz", "/v1/logs/truncate"}
	bld := mustBuilder(b, Config{MaxRecordBytes: 4096, MaxSetBytes: setBytes + 4096, FlushBytes: setBytes})
	for i := 0; !bld.Full(); i++ {
		line := fmt.Appendf(nil,
			`{"ts":"2026-11-22T19:%02d:%02d.%06dZ","level":"%s","msg":"request done","path":"%s","req":"%016x","bytes":%d,"took_us":%d,"peer":"10.0.%d.%d:7000"}`,
			(i/60000)%60, (i/1000)%60, rng.IntN(1e6), levels[rng.IntN(len(levels))], paths[rng.IntN(len(paths))],
			rng.Uint64(), rng.IntN(1<<16), rng.IntN(50000), rng.IntN(4), rng.IntN(256))
		if err := bld.Append(Record{TxID: int64(1_700_000_000_000 + i), Payload: line}); err != nil {
			b.Fatal(err)
		}
	}
	return bld
}

func BenchmarkEncode(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, c := range allCodecs {
			b.Run(fmt.Sprintf("%s/%dKiB", c, size>>10), func(b *testing.B) {
				bld := logLikeBuilder(b, size)
				buf, err := bld.AppendTo(nil, c)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(bld.Size()))
				b.ResetTimer()
				for b.Loop() {
					if buf, err = bld.AppendTo(buf[:0], c); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(bld.Size())/float64(len(buf)), "ratio")
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		for _, c := range allCodecs {
			b.Run(fmt.Sprintf("%s/%dKiB", c, size>>10), func(b *testing.B) {
				bld := logLikeBuilder(b, size)
				entry, err := bld.Build(c)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(bld.Size()))
				b.ResetTimer()
				for b.Loop() {
					if _, err := Decode(entry, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
