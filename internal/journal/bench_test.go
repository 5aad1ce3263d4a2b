//go:build linux

package journal

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkAppend measures durable appends on the real disk (b.TempDir),
// beside raw loops on the same directory in the same run:
//
//   - raw-per-record: write one framed record + fdatasync, one at a time
//     (the physical limit for a lone appender);
//   - journal/appenders=N: N goroutines each appending and waiting for the
//     callback, in a closed loop;
//   - raw-batched: write G records with one write call + one fdatasync,
//     where G is the journal's average group size at 256 appenders in this
//     run (the physical limit for that batching);
//   - paired: rounds alternating the journal at 256 appenders and the raw
//     batched loop (with that round's group size), reporting the median of
//     the per-round ratios. On a shared, noisy machine this ratio is far
//     steadier than one computed from two separate sub-benchmarks.
//
// Metrics: appends/s, p50-us and p99-us (append to durable; for the raw
// loops the write+fdatasync time), records/group, and for the journal the
// mean fdatasync, callback and group-wait times per group.
//
//	go test -run XXX -bench . -benchtime 2s ./internal/journal/
func BenchmarkAppend(b *testing.B) {
	dir := b.TempDir()
	raw := newRawFile(b, filepath.Join(dir, "raw"), 64<<20)
	defer raw.Close()
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			var group256, ops256 float64
			b.Run("raw-per-record", func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ResetTimer()
				r := runRaw(raw, size, 1, b.N)
				b.StopTimer()
				r.report(b)
			})
			for _, n := range []int{1, 16, 256} {
				bj := &benchJournal{dir: filepath.Join(dir, fmt.Sprintf("j-%d-%d", size, n))}
				b.Run(fmt.Sprintf("journal/appenders=%d", n), func(b *testing.B) {
					j := bj.get(b)
					b.SetBytes(int64(size))
					b.ResetTimer()
					r := runJournal(b, j, size, n, b.N)
					b.StopTimer()
					r.report(b)
					if n == 256 {
						group256, ops256 = r.group, r.ops
					}
				})
				bj.close(b)
			}
			b.Run("raw-batched", func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ResetTimer()
				r := runRaw(raw, size, max(1, int(math.Round(group256))), b.N)
				b.StopTimer()
				r.report(b)
				b.ReportMetric(ops256/r.ops, "journal/raw")
			})
			bj := &benchJournal{dir: filepath.Join(dir, fmt.Sprintf("j-%d-paired", size))}
			b.Run("paired/appenders=256", func(b *testing.B) {
				const rounds = 9
				j := bj.get(b)
				per := max(b.N/rounds, 4096)
				var ratios, jops, rops, groups []float64
				b.ResetTimer()
				for range rounds {
					jr := runJournal(b, j, size, 256, per)
					rr := runRaw(raw, size, max(1, int(math.Round(jr.group))), per)
					ratios = append(ratios, jr.ops/rr.ops)
					jops, rops, groups = append(jops, jr.ops), append(rops, rr.ops), append(groups, jr.group)
				}
				b.StopTimer()
				b.ReportMetric(median(ratios), "journal/raw-median")
				b.ReportMetric(slices.Min(ratios), "journal/raw-min")
				b.ReportMetric(median(jops), "journal-appends/s")
				b.ReportMetric(median(rops), "raw-batched-appends/s")
				b.ReportMetric(median(groups), "records/group")
			})
			bj.close(b)
		})
	}
}

// benchJournal is a journal shared by the repeated runs of one
// sub-benchmark (opening one preallocates a 64 MiB file).
type benchJournal struct {
	dir string
	j   *Journal
}

func (bj *benchJournal) get(b *testing.B) *Journal {
	if bj.j != nil {
		return bj.j
	}
	cfg := DefaultConfig(bj.dir)
	j, err := Open(cfg)
	must.NoError(b, err)
	must.NoError(b, j.Replay(Position{}, nil))
	bj.j = j
	return j
}

func (bj *benchJournal) close(b *testing.B) {
	if bj.j == nil {
		return
	}
	must.NoError(b, bj.j.Close())
	must.NoError(b, os.RemoveAll(bj.dir))
	bj.j = nil
}

type benchResult struct {
	ops   float64         // records per second
	group float64         // records per fdatasync group
	lat   []time.Duration // per record (journal) or per batch (raw)
	extra map[string]float64
}

func (r benchResult) report(b *testing.B) {
	slices.Sort(r.lat)
	pct := func(p float64) float64 {
		if len(r.lat) == 0 {
			return 0
		}
		return float64(r.lat[min(len(r.lat)-1, int(p*float64(len(r.lat))))].Microseconds())
	}
	b.ReportMetric(r.ops, "appends/s")
	b.ReportMetric(pct(0.50), "p50-us")
	b.ReportMetric(pct(0.99), "p99-us")
	b.ReportMetric(r.group, "records/group")
	for k, v := range r.extra {
		b.ReportMetric(v, k)
	}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}

// runJournal appends total records of size bytes from n goroutines, each
// waiting for its callback before its next append.
func runJournal(b *testing.B, j *Journal, size, n, total int) benchResult {
	rec := make([]byte, size)
	var remaining atomic.Int64
	remaining.Store(int64(total))
	lat := make([][]time.Duration, n)
	start := j.Stats()
	waits, waitNanos := j.stats.groupWaits.Load(), j.stats.groupWaitNanos.Load()
	var wg sync.WaitGroup
	began := time.Now()
	for a := range n {
		wg.Go(func() {
			done := make(chan error, 1)
			cb := func(_ Position, err error) { done <- err }
			mine := make([]time.Duration, 0, 2*total/n+1)
			for remaining.Add(-1) >= 0 {
				t0 := time.Now()
				if err := j.Append(rec, cb); err != nil {
					b.Error(err)
					return
				}
				if err := <-done; err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			lat[a] = mine
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	end := j.Stats()
	groups := float64(max(1, end.Groups-start.Groups))
	return benchResult{
		ops:   float64(total) / elapsed.Seconds(),
		group: float64(end.Records-start.Records) / groups,
		lat:   slices.Concat(lat...),
		extra: map[string]float64{
			"fdatasync-us":  float64((end.SyncTotal - start.SyncTotal).Microseconds()) / float64(max(1, end.Syncs-start.Syncs)),
			"waits/group":   float64(j.stats.groupWaits.Load()-waits) / groups,
			"wait-us/group": float64(j.stats.groupWaitNanos.Load()-waitNanos) / 1e3 / groups,
		},
	}
}

// rawFile is a preallocated (zero-filled, synced) file for the raw loops,
// reused circularly so its size never changes.
type rawFile struct {
	*os.File
	size int64
	off  int64
}

func newRawFile(b *testing.B, path string, size int64) *rawFile {
	f, err := os.Create(path)
	must.NoError(b, err)
	zeros := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(zeros)) {
		_, err := f.WriteAt(zeros, off)
		must.NoError(b, err)
	}
	must.NoError(b, f.Sync())
	return &rawFile{File: f, size: size}
}

// runRaw writes total framed records, batch at a time with one write and
// one fdatasync per batch.
func runRaw(f *rawFile, size, batch, total int) benchResult {
	buf := make([]byte, 0, batch*(recordHeaderSize+size))
	rec := make([]byte, size)
	for range batch {
		buf = appendRecord(buf, rec, 0)
	}
	lat := make([]time.Duration, 0, total/batch+1)
	began := time.Now()
	for done := 0; done < total; done += batch {
		w := buf[:min(batch, total-done)*(recordHeaderSize+size)]
		if f.off+int64(len(w)) > f.size {
			f.off = 0
		}
		t0 := time.Now()
		if _, err := f.WriteAt(w, f.off); err != nil {
			panic(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			panic(err)
		}
		lat = append(lat, time.Since(t0))
		f.off += int64(len(w))
	}
	return benchResult{ops: float64(total) / time.Since(began).Seconds(), group: float64(batch), lat: lat}
}
