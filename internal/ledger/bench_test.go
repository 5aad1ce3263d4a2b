package ledger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// BenchmarkAdd measures ledger adds (E=Qw=3, Qa=2 over three real bookies
// on loopback, no proxies) and, beside them in the same run, ledger adds to
// one bookie (E=Qw=Qa=1: the client's own cost) and direct adds to one
// bookie through the bookie client, so the cost of replication shows as a
// ratio. Each case reports adds/s and the p50 and p99 latency from the
// call to the acknowledgement.
//
//	go test -run '^$' -bench BenchmarkAdd -benchtime 5000x ./internal/ledger/
func BenchmarkAdd(b *testing.B) {
	c := startCluster(b, 3, func(cfg *cluster.Config) { cfg.Proxies = false })
	ctx := b.Context()
	var nextLedger atomic.Int64
	nextLedger.Store(1 << 40) // ids the metadata counter will not reach
	for _, size := range []int{100, 1024} {
		for _, inflight := range []int{1, 256} {
			name := fmt.Sprintf("%s/inflight-%d", sizeName(size), inflight)
			for _, opts := range []CreateOptions{DefaultCreateOptions(), {EnsembleSize: 1, WriteQuorum: 1, AckQuorum: 1}} {
				shape := fmt.Sprintf("ledger-E%d-Qw%d-Qa%d/", opts.EnsembleSize, opts.WriteQuorum, opts.AckQuorum)
				b.Run(shape+name, func(b *testing.B) { benchLedger(b, c, opts, size, inflight, currentFormat) })
			}
			// Entry format 0 (no length header), for the cost of the
			// header's copy.
			b.Run("ledger-E3-Qw3-Qa2-format0/"+name, func(b *testing.B) {
				benchLedger(b, c, DefaultCreateOptions(), size, inflight, formatRaw)
			})
			b.Run("single-bookie/"+name, func(b *testing.B) {
				cl := newClient(b, c)
				bc := cl.BookieClient()
				addr := c.Addr(0)
				id := nextLedger.Add(1)
				key := []byte("bench")
				data := make([]byte, size)
				lat := make([]time.Duration, b.N)
				slots := make(chan struct{}, inflight)
				var wg sync.WaitGroup
				b.SetBytes(int64(size))
				b.ResetTimer()
				start := time.Now()
				for i := range b.N {
					slots <- struct{}{}
					wg.Add(1)
					t0 := time.Now()
					add := &bookiepb.AddRequest{Entry: bookiepb.NewEntry(id, int64(i), int64(i)-1, data), MasterKey: key}
					actx, cancel := context.WithTimeout(ctx, 10*time.Second)
					bc.AddAsync(actx, addr, add, func(err error) {
						cancel()
						lat[i] = time.Since(t0)
						if err != nil {
							b.Error(err)
						}
						<-slots
						wg.Done()
					})
				}
				wg.Wait()
				report(b, start, lat)
			})
		}
	}
}

// benchLedger adds b.N entries of size bytes to a new ledger of shape opts
// and entry format with up to inflight adds pending.
func benchLedger(b *testing.B, c *cluster.Cluster, opts CreateOptions, size, inflight, format int) {
	ctx := b.Context()
	// The writer's own bound is never the one that waits: latency is
	// measured from the send, as for the single bookie.
	cl := newClient(b, c, func(cfg *Config) { cfg.MaxPendingAdds = 2 * inflight })
	w, err := cl.Create(ctx, opts)
	must(b, err, "create")
	if format != currentFormat {
		// Same ensemble, another ledger written in the given format.
		md := w.Metadata()
		w.Abort()
		md.EntryFormat = format
		id, err := cl.store.NewLedgerID(ctx)
		must(b, err, "ledger id")
		ver, err := cl.store.CreateLedger(ctx, id, md)
		must(b, err, "create ledger of format %d", format)
		w, err = newWriter(cl, id, md, ver)
		must(b, err, "writer")
	}
	defer w.Abort()
	data := make([]byte, size)
	lat := make([]time.Duration, b.N)
	slots := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	b.SetBytes(int64(size))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		slots <- struct{}{}
		wg.Add(1)
		t0 := time.Now()
		err := w.AddAsync(ctx, data, func(_ int64, err error) {
			lat[i] = time.Since(t0)
			if err != nil {
				b.Error(err)
			}
			<-slots
			wg.Done()
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	report(b, start, lat)
}

func sizeName(n int) string {
	if n >= 1024 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

func report(b *testing.B, start time.Time, lat []time.Duration) {
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "adds/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
