package journal

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

var crashSeed = flag.Uint64("journal.crash-seed", 0, "seed for TestCrashKeepsAcknowledged (0: a fixed default)")

// crashConfig is a tiny journal on a crashable in-memory FS: 8 KiB files
// roll every few dozen records, so crashes land in every phase of a roll.
func crashConfig(t testing.TB, fs vfs.FS) Config {
	cfg := testConfig(t, "/journal")
	cfg.FS = fs
	cfg.FileSizeBytes = 8 << 10
	cfg.MaxRecordBytes = 600
	cfg.MaxQueueBytes = 16 << 10
	return cfg
}

// TestCrashKeepsAcknowledged crashes a journal under concurrent appenders
// at random moments (a clone of the file system keeping only synced data,
// plus a random share of unsynced blocks), reopens the clone and checks
// that every record acknowledged before the crash is replayed,
// byte-identical and in order, after everything that survived earlier
// crashes, and that nothing but a prefix of the run's append order is.
func TestCrashKeepsAcknowledged(t *testing.T) {
	iterations := 600
	if testing.Short() {
		iterations = 40
	}
	seed := *crashSeed
	if seed == 0 {
		seed = 20261122
	}
	t.Logf("seed %d (rerun with -journal.crash-seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))

	fs := vfs.NewCrashableMem()
	var (
		durable []replayed // what a replay from `from` must start with
		from    Position
		lastRun []appended // callbacks of the previous run, in order
		acked   int        // leading successes of lastRun at the crash
	)
	for it := range iterations {
		cfg := crashConfig(t, fs)
		j, err := Open(cfg)
		must.NoError(t, err, "iteration %d", it)
		got := replayAll(t, j, from)
		checkAfterCrash(t, it, durable, lastRun, acked, got)
		durable = got

		if it%5 == 4 && len(durable) > 0 {
			k := rng.IntN(len(durable))
			from = durable[k].next
			must.NoError(t, j.ReleaseBefore(from))
			durable = durable[k+1:]
		}

		// Run appenders until the crash.
		var log callbackLog
		stop := make(chan struct{})
		var wg sync.WaitGroup
		appenders := 1 + rng.IntN(8)
		for a := range appenders {
			arng := rand.New(rand.NewPCG(seed, uint64(it*100+a)))
			wg.Go(func() { crashAppender(j, &log, stop, arng, it, a) })
		}
		target := rng.IntN(120)
		waitFor(t, "appends before the crash", func() bool { return log.len() >= target })
		before := log.snapshot() // acknowledged before the clone: must survive
		pct := []int{0, 0, 30, 100}[rng.IntN(4)]
		clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, uint64(it)))})
		close(stop)
		wg.Wait()
		must.NoError(t, j.Close())

		acked = 0
		for acked < len(before) && before[acked].err == nil {
			acked++
		}
		if acked < len(before) {
			t.Fatalf("iteration %d: a callback failed before the crash: %v", it, before[acked].err)
		}
		lastRun = log.snapshot()
		fs = clone
	}
	cfg := crashConfig(t, fs)
	j, err := Open(cfg)
	must.NoError(t, err)
	checkAfterCrash(t, iterations, durable, lastRun, acked, replayAll(t, j, from))
	must.NoError(t, j.Close())
}

// crashAppender appends unique records until stop is closed, sometimes
// waiting for each callback, sometimes keeping a few in flight.
func crashAppender(j *Journal, log *callbackLog, stop <-chan struct{}, rng *rand.Rand, it, a int) {
	inflight := make(chan struct{}, 1+rng.IntN(4))
	for seq := 0; ; seq++ {
		select {
		case <-stop:
			return
		case inflight <- struct{}{}:
		}
		rec := make([]byte, 12+rng.IntN(500))
		binary.LittleEndian.PutUint32(rec[0:], uint32(it))
		binary.LittleEndian.PutUint32(rec[4:], uint32(a))
		binary.LittleEndian.PutUint32(rec[8:], uint32(seq))
		for i := 12; i < len(rec); i++ {
			rec[i] = byte(rng.UintN(256))
		}
		cb := log.done(rec)
		err := j.Append(rec, func(end Position, err error) { cb(end, err); <-inflight })
		if err != nil {
			<-inflight
			if err == ErrOverloaded {
				continue
			}
			return
		}
	}
}

// checkAfterCrash checks a replay after a crash: durable first, then a
// prefix of the previous run's callback order that covers every record
// acknowledged before the crash and only records that succeeded.
func checkAfterCrash(t *testing.T, it int, durable []replayed, lastRun []appended, acked int, got []replayed) {
	t.Helper()
	if len(got) < len(durable) {
		t.Fatalf("iteration %d: replayed %d records, %d survived earlier crashes", it, len(got), len(durable))
	}
	for i, d := range durable {
		if !bytes.Equal(d.data, got[i].data) || d.pos != got[i].pos || d.next != got[i].next {
			t.Fatalf("iteration %d: record %d of earlier runs changed", it, i)
		}
	}
	extra := got[len(durable):]
	if len(extra) < acked {
		t.Fatalf("iteration %d: %d acknowledged records before the crash, only %d replayed", it, acked, len(extra))
	}
	for i, r := range extra {
		if i >= len(lastRun) || lastRun[i].err != nil {
			t.Fatalf("iteration %d: replayed record %d was never acknowledged", it, i)
		}
		if !bytes.Equal(lastRun[i].data, r.data) || lastRun[i].end != r.next {
			t.Fatalf("iteration %d: replayed record %d differs from append %d", it, i, i)
		}
	}
	requireOrdered(t, got)
}
