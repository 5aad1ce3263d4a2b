package journal

import (
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// syncGate blocks every fdatasync of a journal file until released.
type syncGate struct {
	blocked  atomic.Int64
	releasec chan struct{}
}

func newSyncGate() *syncGate { return &syncGate{releasec: make(chan struct{})} }

func (g *syncGate) wrap(fs vfs.FS) vfs.FS {
	return errorfs.Wrap(fs, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileSyncData && isJournalFile(op.Path) {
			g.blocked.Add(1)
			<-g.releasec
		}
		return nil
	}))
}

func (g *syncGate) waitBlocked(t testing.TB, n int64) {
	waitFor(t, "a blocked fdatasync", func() bool { return g.blocked.Load() >= n })
}

func (g *syncGate) release() { close(g.releasec) }

// faultInjector fails the nth operation of a kind (counting from 1) with
// err, and counts every operation of that kind.
type faultInjector struct {
	kind  errorfs.OpKind
	match func(path string) bool
	nth   int64
	err   error
	count atomic.Int64
}

func (f *faultInjector) MaybeError(op errorfs.Op) error {
	if op.Kind != f.kind || (f.match != nil && !f.match(op.Path)) {
		return nil
	}
	if f.count.Add(1) == f.nth {
		return f.err
	}
	return nil
}

func (f *faultInjector) String() string { return "faultInjector" }

func isJournalFile(path string) bool { return strings.HasSuffix(path, fileSuffix) }

func TestStickyFailure(t *testing.T) {
	tests := []struct {
		name   string
		inj    *faultInjector
		wantOp string
		want   error
	}{
		{
			name:   "fdatasync EIO",
			inj:    &faultInjector{kind: errorfs.OpFileSyncData, match: isJournalFile, nth: 40, err: syscall.EIO},
			wantOp: "sync", want: syscall.EIO,
		},
		{
			name:   "first fdatasync EIO",
			inj:    &faultInjector{kind: errorfs.OpFileSyncData, match: isJournalFile, nth: 1, err: syscall.EIO},
			wantOp: "sync", want: syscall.EIO,
		},
		{
			name:   "write ENOSPC",
			inj:    &faultInjector{kind: errorfs.OpFileWriteAt, match: isJournalFile, nth: 25, err: syscall.ENOSPC},
			wantOp: "write", want: syscall.ENOSPC,
		},
		{
			// Preallocating the next file runs out of space, twice (ahead of
			// time, then the retry at the roll).
			name: "preallocation ENOSPC",
			inj: &faultInjector{kind: errorfs.OpFileWriteAt, match: func(p string) bool {
				return strings.HasSuffix(p, spareFileName)
			}, nth: -1, err: syscall.ENOSPC},
			wantOp: "roll", want: syscall.ENOSPC,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var armed atomic.Bool
			inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
				if !armed.Load() {
					return nil
				}
				if tc.inj.nth == -1 { // every matching op fails
					if op.Kind == tc.inj.kind && tc.inj.match(op.Path) {
						return tc.inj.err
					}
					return nil
				}
				return tc.inj.MaybeError(op)
			})
			cfg := testConfig(t, t.TempDir())
			cfg.FS = errorfs.Wrap(vfs.Default, inj)
			j, _ := openReplay(t, cfg, Position{})
			armed.Store(true)

			var log callbackLog
			var wg sync.WaitGroup
			var rejected atomic.Int64
			for a := range 8 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(a), 9))
					for _, r := range randomRecords(rng, 100, 1500) {
						done := make(chan struct{})
						cb := log.done(r)
						if err := j.Append(r, func(end Position, err error) { cb(end, err); close(done) }); err != nil {
							must.ErrorIs(t, err, ErrFailed)
							rejected.Add(1)
							continue
						}
						<-done
					}
				})
			}
			wg.Wait()

			err := j.Err()
			must.ErrorIs(t, err, ErrFailed)
			must.ErrorIs(t, err, tc.want)
			var ferr *FailureError
			must.ErrorAs(t, err, &ferr)
			must.Equal(t, tc.wantOp, ferr.Op)
			must.Contains(t, err.Error(), "journal: failed")

			got := log.snapshot()
			firstFail := -1
			for i, a := range got {
				if a.err != nil {
					must.ErrorIs(t, a.err, ErrFailed)
					if firstFail < 0 {
						firstFail = i
					}
				} else {
					less(t, firstFail, 0, "callback %d reported success after a failure", i)
				}
			}
			atLeast(t, firstFail, 0, "some callback saw the failure")
			must.Positive(t, rejected.Load(), "later appends were rejected")

			// Nothing is retried: no write or sync reaches a journal file
			// after the failure, however much more is appended.
			syncs, writes := j.Stats().Syncs, countOps(t, j)
			for range 20 {
				_, err := j.AppendSync(t.Context(), []byte("after"))
				must.ErrorIs(t, err, ErrFailed)
			}
			must.Equal(t, syncs, j.Stats().Syncs)
			must.Equal(t, writes, countOps(t, j))
			if tc.inj.kind == errorfs.OpFileSyncData {
				must.Equal(t, tc.inj.nth, tc.inj.count.Load(), "fdatasync was called again after it failed")
			}
			must.NoError(t, j.Close())

			// Whatever was acknowledged is replayed.
			var acked []appended
			for _, a := range got {
				if a.err == nil {
					acked = append(acked, a)
				}
			}
			recs := reopenRecords(t, testConfig(t, cfg.Dir), Position{})
			atLeast(t, len(recs), len(acked))
			requireSameRecords(t, acked, recs[:len(acked)])
		})
	}
}

// countOps is the journal's own count of bytes written, a proxy for "no
// write happened".
func countOps(t testing.TB, j *Journal) uint64 {
	t.Helper()
	return j.Stats().Bytes
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		kind errorfs.OpKind
	}{
		{name: "mkdir", kind: errorfs.OpMkdirAll},
		{name: "lock", kind: errorfs.OpLock},
		{name: "list", kind: errorfs.OpList},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
				if op.Kind == tc.kind {
					return syscall.EIO
				}
				return nil
			}))
			_, err := Open(cfg)
			must.ErrorIs(t, err, syscall.EIO)
		})
	}
}

func TestReplayReadErrorCutsNothing(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	j, _ := openReplay(t, cfg, Position{})
	want := appendSeq(t, j, randomRecords(rand.New(rand.NewPCG(8, 8)), 200, 1000))
	must.NoError(t, j.Close())

	var fail atomic.Bool
	fail.Store(true)
	cfg2 := cfg
	cfg2.FS = errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if fail.Load() && op.Kind == errorfs.OpFileReadAt {
			return syscall.EIO
		}
		return nil
	}))
	j, err := Open(cfg2)
	must.NoError(t, err)
	err = j.Replay(Position{}, nil)
	must.ErrorIs(t, err, syscall.EIO)
	must.False(t, errors.Is(err, ErrFailed))
	must.NoError(t, j.Close())
	requireSameRecords(t, want, reopenRecords(t, cfg, Position{}))
	must.Zero(t, j.Stats().ReplayCutBytes)
}
