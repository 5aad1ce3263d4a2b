package metadata_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/metadata/etcdserver"
)

// benchStore opens a store on a fresh embedded etcd (fsync on, as in
// production) or on memory.
func benchStore(b *testing.B, backend string) metadata.Store {
	b.Helper()
	url := "memory:"
	if backend == "etcd" {
		srv, err := etcdserver.Start(b.Context(), etcdserver.DefaultConfig(b.TempDir()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(srv.Close)
		url = srv.Endpoints()[0]
	}
	st, err := metadata.Open(b.Context(), url, metadata.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	if err := st.CreateNamespace(b.Context(), "ns", metadata.NamespaceInfo{}); err != nil {
		b.Fatal(err)
	}
	return st
}

// segmentWriter creates segments of one log, each with the commit a log
// writer makes: CreateSegment + SetMaxLSSN + SetMaxTxID.
type segmentWriter struct {
	st         metadata.Store
	log        string
	lssn       int64
	lssnV, txV metadata.Version
}

func newSegmentWriter(ctx context.Context, st metadata.Store, log string) (*segmentWriter, error) {
	if err := st.CreateLog(ctx, "ns", log, metadata.LogInfo{}); err != nil {
		return nil, err
	}
	state, err := st.GetLogState(ctx, "ns", log)
	if err != nil {
		return nil, err
	}
	return &segmentWriter{st: st, log: log, lssnV: state.MaxLSSNVersion, txV: state.MaxTxIDVersion}, nil
}

func (w *segmentWriter) next(ctx context.Context) error {
	n := w.lssn + 1
	rev, err := w.st.Commit(ctx,
		metadata.CreateSegment("ns", w.log, metadata.Segment{LSSN: n, LedgerID: n, State: metadata.SegmentInProgress, FirstTxID: n * 100}),
		metadata.SetMaxLSSN("ns", w.log, n, w.lssnV),
		metadata.SetMaxTxID("ns", w.log, n*100, w.txV))
	if err != nil {
		return err
	}
	w.lssn, w.lssnV, w.txV = n, metadata.Version(rev), metadata.Version(rev)
	return nil
}

// BenchmarkCreateSegment measures create-segment transactions per second:
// one writer (sequential, as one log's writer is) and 16 writers on 16 logs
// (etcd batches concurrent proposals into one fsync).
func BenchmarkCreateSegment(b *testing.B) {
	for _, backend := range []string{"etcd", "memory"} {
		for _, writers := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/writers=%d", backend, writers), func(b *testing.B) {
				st := benchStore(b, backend)
				ctx := b.Context()
				ws := make([]*segmentWriter, writers)
				for i := range ws {
					w, err := newSegmentWriter(ctx, st, fmt.Sprintf("log-%d", i))
					if err != nil {
						b.Fatal(err)
					}
					ws[i] = w
				}
				var left atomic.Int64
				left.Store(int64(b.N))
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for _, w := range ws {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							if err := w.next(ctx); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
			})
		}
	}
}

// BenchmarkWatchLatency measures Commit -> event received on a watch of
// the log, one change at a time, and reports the median and 99th
// percentile.
func BenchmarkWatchLatency(b *testing.B) {
	for _, backend := range []string{"etcd", "memory"} {
		b.Run(backend, func(b *testing.B) {
			st := benchStore(b, backend)
			ctx := b.Context()
			w, err := newSegmentWriter(ctx, st, "watched")
			if err != nil {
				b.Fatal(err)
			}
			state, err := st.GetLogState(ctx, "ns", "watched")
			if err != nil {
				b.Fatal(err)
			}
			events := st.WatchLog(ctx, "ns", "watched", state.Revision+1)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				if err := w.next(ctx); err != nil {
					b.Fatal(err)
				}
				for seen := 0; seen < 3; seen++ { // segment, maxlssn, maxtxid
					ev := <-events
					if ev.Err != nil {
						b.Fatal(ev.Err)
					}
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
