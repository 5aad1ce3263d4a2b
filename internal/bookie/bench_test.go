package bookie

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// BenchmarkAdd measures a bookie over loopback gRPC on the benchmark's
// directory: adds per second and p50/p99 add latency with 1, 16 and 256
// concurrent adders (each waiting for its add before the next), for 100 B
// and 1 KiB entries. Beside each, in the same directory, it runs the raw
// loop the journal cannot beat: write a batch of framed records with one
// write(2) and one fdatasync(2), with the batch size the bookie's journal
// achieved (records per group commit), and reports its rate and the
// bookie's share of it (raw-ratio). It also reports the process's CPU time
// per add (client and server together, user plus system: cpu-us/add),
// which moves less than rates on a shared machine, and the journal's mean
// fdatasync time during the run (fsync-us).
//
//	go test -run XXX -bench . ./internal/bookie/
func BenchmarkAdd(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, conc := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("size=%d/adders=%d", size, conc), func(b *testing.B) { benchAdd(b, size, conc) })
		}
	}
}

func benchAdd(b *testing.B, size, conc int) {
	dir := b.TempDir()
	cfg := testConfig(b, dir)
	cfg.Logger = nil
	bk := start(b, cfg)
	c := newClient(b)
	addr := bk.ListenAddr()
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(i)
	}
	ctx := b.Context()
	// Warm up the stream and the ledgers.
	for a := range int64(conc) {
		noErr(b, c.Add(ctx, addr, &bookiepb.AddRequest{Entry: bookiepb.NewEntry(a, 0, -1, payload), MasterKey: testKey}), "warm-up")
	}
	before := bk.journal.Stats()
	cpuBefore := cpuTime(b)
	b.ReportAllocs() // the whole process: client, server and store
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		lats = make([][]time.Duration, conc)
	)
	b.ResetTimer()
	startT := time.Now()
	for a := range conc {
		wg.Go(func() {
			l := int64(a)
			for e := int64(1); next.Add(1) <= int64(b.N); e++ {
				t0 := time.Now()
				err := c.Add(ctx, addr, &bookiepb.AddRequest{Entry: bookiepb.NewEntry(l, e, e-1, payload), MasterKey: testKey})
				lats[a] = append(lats[a], time.Since(t0))
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(startT)
	cpu := cpuTime(b) - cpuBefore
	b.StopTimer()
	after := bk.journal.Stats()
	all := slices.Concat(lats...)
	slices.Sort(all)
	rate := float64(b.N) / elapsed.Seconds()
	group := float64(after.Records-before.Records) / float64(max(after.Groups-before.Groups, 1))
	b.ReportMetric(rate, "adds/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-us")
	b.ReportMetric(group, "records/group")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-us/add")
	if syncs := after.Syncs - before.Syncs; syncs > 0 {
		b.ReportMetric(float64((after.SyncTotal-before.SyncTotal).Microseconds())/float64(syncs), "fsync-us")
	}
	// A journal record of an add: 8 bytes of framing, the record header,
	// the key and the stored entry.
	recBytes := 8 + len(appendAddRecord(nil, bookiepb.NewEntry(1, 1, 0, payload), testKey, false))
	batch := max(int(group+0.5), 1)
	raw := rawSyncRate(b, dir, recBytes, batch)
	b.ReportMetric(raw, "raw-adds/s")
	b.ReportMetric(rate/raw, "raw-ratio")
}

// rawSyncRate writes batches of batch records of recBytes each into a
// preallocated file in dir, one write and one fdatasync per batch, for
// about half a second, and returns records per second.
func rawSyncRate(b *testing.B, dir string, recBytes, batch int) float64 {
	const fileBytes = 64 << 20
	path := filepath.Join(dir, "raw-sync-bench")
	f, err := os.Create(path)
	noErr(b, err, "create")
	defer os.Remove(path)
	defer f.Close()
	noErr(b, f.Truncate(0), "truncate")
	zeros := make([]byte, 1<<20)
	for off := 0; off < fileBytes; off += len(zeros) {
		_, err := f.Write(zeros)
		noErr(b, err, "preallocate")
	}
	noErr(b, f.Sync(), "sync")
	buf := make([]byte, recBytes*batch)
	for i := range buf {
		buf[i] = byte(i | 1)
	}
	var off int64
	records := 0
	startT := time.Now()
	for time.Since(startT) < 500*time.Millisecond {
		if off+int64(len(buf)) > fileBytes {
			off = 0
		}
		_, err := f.WriteAt(buf, off)
		noErr(b, err, "write")
		noErr(b, syscall.Fdatasync(int(f.Fd())), "fdatasync")
		off += int64(len(buf))
		records += batch
	}
	return float64(records) / time.Since(startT).Seconds()
}

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	noErr(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru), "getrusage")
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
