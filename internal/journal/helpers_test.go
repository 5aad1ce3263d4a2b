package journal

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig is a small journal on the real disk: 64 KiB files so that a
// few hundred records roll several files.
func testConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig(dir)
	cfg.FileSizeBytes = 64 << 10
	cfg.MaxRecordBytes = 4 << 10
	cfg.MaxQueueBytes = 1 << 20
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

// replayed is one record seen by Replay.
type replayed struct {
	pos, next Position
	data      []byte
}

// replayAll replays from and copies every record.
func replayAll(t testing.TB, j *Journal, from Position) []replayed {
	t.Helper()
	var out []replayed
	must.NoError(t, j.Replay(from, func(pos, next Position, rec []byte) error {
		out = append(out, replayed{pos: pos, next: next, data: bytes.Clone(rec)})
		return nil
	}))
	return out
}

// openReplay opens cfg and replays from.
func openReplay(t testing.TB, cfg Config, from Position) (*Journal, []replayed) {
	t.Helper()
	j, err := Open(cfg)
	must.NoError(t, err)
	t.Cleanup(func() { _ = j.Close() })
	return j, replayAll(t, j, from)
}

// reopenRecords opens cfg, replays from, closes, and returns the records.
func reopenRecords(t testing.TB, cfg Config, from Position) []replayed {
	t.Helper()
	j, recs := openReplay(t, cfg, from)
	must.NoError(t, j.Close())
	return recs
}

// appended is one record whose Append callback ran.
type appended struct {
	data []byte
	end  Position
	err  error
}

// appendSeq appends recs one at a time with AppendSync.
func appendSeq(t testing.TB, j *Journal, recs [][]byte) []appended {
	t.Helper()
	out := make([]appended, 0, len(recs))
	for _, r := range recs {
		end, err := j.AppendSync(t.Context(), r)
		must.NoError(t, err)
		out = append(out, appended{data: r, end: end})
	}
	return out
}

// randomRecords returns n records of 1..maxLen random bytes, each unique
// (prefixed by its index).
func randomRecords(rng *rand.Rand, n, maxLen int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		l := max(8, 1+rng.IntN(maxLen))
		b := make([]byte, l)
		for k := range b {
			b[k] = byte(rng.UintN(256))
		}
		copy(b, fmt.Sprintf("%08d", i))
		out[i] = b
	}
	return out
}

// requireSameRecords checks that got replays want (data and positions).
func requireSameRecords(t testing.TB, want []appended, got []replayed) {
	t.Helper()
	must.Len(t, got, len(want))
	for i := range want {
		must.Equal(t, want[i].data, got[i].data, "record %d", i)
		must.Equal(t, want[i].end, got[i].next, "record %d end", i)
	}
}

// requireOrdered checks that positions strictly increase and that each
// record's next is after its pos.
func requireOrdered(t testing.TB, recs []replayed) {
	t.Helper()
	for i, r := range recs {
		must.Equal(t, 1, r.next.Compare(r.pos), "record %d", i)
		if i > 0 {
			must.Equal(t, 1, r.pos.Compare(recs[i-1].pos), "record %d after %d", i, i-1)
			atLeast(t, r.pos.Compare(recs[i-1].next), 0, "record %d overlaps %d", i, i-1)
		}
	}
}

// journalFiles lists the journal file ids in dir.
func journalFiles(t testing.TB, fs vfs.FS, dir string) dirListing {
	t.Helper()
	l, err := listDir(fs, dir)
	must.NoError(t, err)
	return l
}

// waitFor polls cond until it holds or the deadline passes. It is a
// condition wait, not a timed assertion: the deadline only bounds a hang.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// flipBit flips one bit of the byte at off in the named file.
func flipBit(t testing.TB, path string, off int64, bit uint) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must.NoError(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	must.NoError(t, err)
	b[0] ^= 1 << bit
	_, err = f.WriteAt(b, off)
	must.NoError(t, err)
}

// callbackLog records Append callbacks in the order they run.
type callbackLog struct {
	mu   sync.Mutex
	recs []appended
}

func (l *callbackLog) done(data []byte) func(Position, error) {
	return func(end Position, err error) {
		l.mu.Lock()
		l.recs = append(l.recs, appended{data: data, end: end, err: err})
		l.mu.Unlock()
	}
}

func (l *callbackLog) snapshot() []appended {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]appended(nil), l.recs...)
}

func (l *callbackLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

var errTest = errors.New("test error")
