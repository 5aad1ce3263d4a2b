package journal

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestRollsWithPacedPreparation uses files of several zero-fill chunks, so
// that the preparer paces itself and the writer has to mark requests
// urgent when records arrive in bursts.
func TestRollsWithPacedPreparation(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.FileSizeBytes = 1 << 20
	cfg.MaxRecordBytes = 64 << 10
	cfg.MaxQueueBytes = 4 << 20
	j, _ := openReplay(t, cfg, Position{})
	rng := rand.New(rand.NewPCG(11, 11))
	var log callbackLog
	var want int
	for burst := range 6 {
		// A burst larger than a file: the spare cannot have been paced to
		// completion when the roll comes.
		n := 20 + burst*10
		for range n {
			r := make([]byte, 1+rng.IntN(cfg.MaxRecordBytes))
			r[0] = byte(burst)
			for {
				err := j.Append(r, log.done(r))
				if err == nil {
					break
				}
				must.ErrorIs(t, err, ErrOverloaded)
				waitFor(t, "queue room", func() bool { return log.len() > want-100 })
			}
			want++
		}
		waitFor(t, "the burst", func() bool { return log.len() == want })
	}
	st := j.Stats()
	atLeast(t, st.Rolls, uint64(6))
	must.NoError(t, j.Close())
	got := log.snapshot()
	for _, a := range got {
		must.NoError(t, a.err)
	}
	requireSameRecords(t, got, reopenRecords(t, cfg, Position{}))
}

// TestRollWaitsForSlowPreparation blocks the zero-fill of the next file:
// the roll must wait for it (back-pressure), then everything completes.
func TestRollWaitsForSlowPreparation(t *testing.T) {
	gate := make(chan struct{})
	var release sync.Once
	var creates, blocked atomic.Int64
	cfg := testConfig(t, t.TempDir())
	cfg.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !strings.HasSuffix(op.Path, spareFileName) {
			return nil
		}
		switch {
		case op.Kind == errorfs.OpCreate:
			creates.Add(1)
		case op.Kind == errorfs.OpFileWriteAt && creates.Load() >= 2:
			// The first file is the first append's; block the next one.
			blocked.Add(1)
			<-gate
		}
		return nil
	}))
	j, _ := openReplay(t, cfg, Position{})
	t.Cleanup(func() { release.Do(func() { close(gate) }) }) // runs before Close
	first := appendSeq(t, j, [][]byte{[]byte("first")})
	waitFor(t, "the preparer to block", func() bool { return blocked.Load() > 0 })
	waits := j.stats.spareWaits.Load()
	var log callbackLog
	recs := randomRecords(rand.New(rand.NewPCG(13, 13)), 200, 1000) // more than a file
	for _, r := range recs {
		must.NoError(t, j.Append(r, log.done(r)))
	}
	waitFor(t, "a roll waiting for the spare", func() bool { return j.stats.spareWaits.Load() == waits+1 })
	less(t, log.len(), len(recs), "records beyond the first file completed before the spare")
	release.Do(func() { close(gate) })
	waitFor(t, "all callbacks", func() bool { return log.len() == len(recs) })
	for _, a := range log.snapshot() {
		must.NoError(t, a.err)
	}
	must.NoError(t, j.Close())
	requireSameRecords(t, append(first, log.snapshot()...), reopenRecords(t, testConfig(t, cfg.Dir), Position{}))
}

// TestCloseWhilePreparerPaces closes a journal whose preparer is waiting
// for the writer to make progress; Close must not wait for it.
func TestCloseWhilePreparerPaces(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.FileSizeBytes = 4 << 20
	j, _ := openReplay(t, cfg, Position{})
	appendSeq(t, j, [][]byte{[]byte("one")})
	done := make(chan error)
	go func() { done <- j.Close() }()
	select {
	case err := <-done:
		must.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Close hung on the preparer")
	}
	l := journalFiles(t, vfs.Default, cfg.Dir)
	must.False(t, l.spare, "Close left the spare file")
}

// TestInterruptedCut fails the cut's zeroing after it has quarantined the
// later files, crashes, and checks that the next replay still stops at the
// same place and never yields a record past the damage.
func TestInterruptedCut(t *testing.T) {
	mem := vfs.NewCrashableMem()
	cfg := crashConfig(t, mem)
	j, _ := openReplay(t, cfg, Position{})
	want := appendSeq(t, j, randomRecords(rand.New(rand.NewPCG(12, 12)), 120, 500))
	must.NoError(t, j.Close())
	recs := reopenRecords(t, cfg, Position{})
	files := (template{recs: recs}).files()
	atLeast(t, len(files), 3)

	// Corrupt a record in the second file.
	k := (template{recs: recs}).recordsIn(files[1])[1]
	path := mem.PathJoin(cfg.Dir, fileName(files[1]))
	f, err := mem.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	must.NoError(t, err)
	_, err = f.WriteAt([]byte{0xff, 0xff}, recs[k].pos.Offset+recordHeaderSize)
	must.NoError(t, err)
	must.NoError(t, f.Sync())
	must.NoError(t, f.Close())

	var armed atomic.Bool
	armed.Store(true)
	failing := cfg
	failing.FS = errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && op.Kind == errorfs.OpFileWriteAt {
			return syscall.EIO
		}
		return nil
	}))
	j, err = Open(failing)
	must.NoError(t, err)
	var got []replayed
	err = j.Replay(Position{}, func(pos, next Position, rec []byte) error {
		got = append(got, replayed{pos: pos, next: next, data: append([]byte(nil), rec...)})
		return nil
	})
	must.ErrorIs(t, err, syscall.EIO)
	must.Equal(t, recs[:k], got, "records up to the damage were replayed before the cut failed")
	must.NoError(t, j.Close())

	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	after := reopenRecords(t, crashConfig(t, crashed), Position{})
	must.Equal(t, recs[:k], after)
	for i := range after {
		must.Equal(t, want[i].data, after[i].data)
	}
}

// TestSlowSyncWarning logs a warning for every fdatasync above the
// threshold.
func TestSlowSyncWarning(t *testing.T) {
	var warnings atomic.Int64
	cfg := testConfig(t, t.TempDir())
	cfg.SlowSyncThreshold = time.Nanosecond
	cfg.Logger = slog.New(countingHandler{msg: "journal: slow fdatasync", n: &warnings})
	j, _ := openReplay(t, cfg, Position{})
	appendSeq(t, j, [][]byte{[]byte("a"), []byte("b")})
	must.Equal(t, int64(2), warnings.Load())
	must.NoError(t, j.Close())
}

type countingHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) && r.Level == slog.LevelWarn {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }
