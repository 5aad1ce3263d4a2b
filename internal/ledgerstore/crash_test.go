package ledgerstore

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// crashSnap is what the model knew when Flush(mark) was called: that flush
// must make all of it durable.
type crashSnap struct {
	added  map[[2]int64]bool
	fenced map[int64]bool
	lac    map[int64]int64
}

// crashRun drives a seeded single-threaded workload (adds, fences, LACs,
// flushes, deletes, compactions) over a crashable in-memory FS and takes a
// crash image at a seeded file-system operation: possibly in the middle of
// an entry log write, an fsync, a pebble commit or a compaction.
type crashRun struct {
	t      *testing.T
	seed   uint64
	opN    atomic.Int64
	crash  atomic.Pointer[vfs.MemFS]
	opsRun int64
}

func TestCrashRecovery(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			r := &crashRun{t: t, seed: seed}
			r.run()
		})
	}
}

func (r *crashRun) run() {
	t := r.t
	rng := rand.New(rand.NewPCG(r.seed, 0xc0ffee))
	mem := vfs.NewCrashableMem()
	crashAt := 1 + rng.Int64N(420) // a run makes ~300-450 file-system operations
	cloneRNG := rand.New(rand.NewPCG(r.seed, 1))
	unsynced := rng.IntN(101)
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if r.opN.Add(1) == crashAt {
			r.crash.Store(mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: cloneRNG}))
		}
		return nil
	}))
	cfg := testConfig("/store")
	cfg.FS = fs
	cfg.EntryLogMaxFileSizeBytes = 16 << 10
	cfg.EntryLogWriteBufferBytes = 2 << 10
	cfg.CompactionThreshold = 0.6
	cfg.CompactionChunkBytes = 4 << 10
	s := openStore(t, cfg)

	const ledgers = 8
	next := map[int64]int64{}
	model := crashSnap{added: map[[2]int64]bool{}, fenced: map[int64]bool{}, lac: map[int64]int64{}}
	snaps := map[uint64]crashSnap{0: {added: map[[2]int64]bool{}, fenced: map[int64]bool{}, lac: map[int64]int64{}}}
	deletedAt := map[int64]int{} // ledger → step whose DeleteLedger returned
	var mark uint64
	lastDurable := uint64(0) // highest mark whose Flush returned before the crash
	crashStep := -1
	const steps = 500
	for step := range steps {
		ledger := rng.Int64N(ledgers)
		_, deleted := deletedAt[ledger]
		switch p := rng.IntN(100); {
		case p < 62:
			e := next[ledger]
			err := s.AddEntry(ledger, e, payloadFor(ledger, e))
			if deleted {
				require.ErrorIs(t, err, ErrLedgerDeleted)
				break
			}
			require.NoError(t, err)
			next[ledger]++
			model.added[[2]int64{ledger, e}] = true
		case p < 67:
			_, err := s.SetFenced(ledger)
			if !deleted {
				require.NoError(t, err)
				model.fenced[ledger] = true
			}
		case p < 72:
			if next[ledger] > 0 && !deleted {
				require.NoError(t, s.SetLAC(ledger, next[ledger]-1))
				model.lac[ledger] = next[ledger] - 1
			}
		case p < 88:
			mark++
			snaps[mark] = crashSnap{added: maps.Clone(model.added), fenced: maps.Clone(model.fenced), lac: maps.Clone(model.lac)}
			require.NoError(t, s.Flush(markOf(mark)))
			if r.crash.Load() == nil {
				lastDurable = mark
			}
		case p < 90:
			require.NoError(t, s.DeleteLedger(ledger))
			if !deleted {
				deletedAt[ledger] = step
			}
		default:
			_, err := s.Compact()
			require.NoError(t, err)
		}
		if crashStep < 0 && r.crash.Load() != nil {
			crashStep = step
		}
	}
	require.NoError(t, s.Close())
	crashed := r.crash.Load()
	if crashed == nil {
		crashed = mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: cloneRNG})
		crashStep = steps
	}

	cfg.FS = crashed
	s2 := openStore(t, cfg)
	defer s2.Close()
	got := uint64(0)
	if m := s2.CheckpointMark(); m != nil {
		require.Equal(t, 8, len(m))
		got = binary.BigEndian.Uint64(m)
	}
	require.True(t, got >= lastDurable, "mark %d below %d, which was durable before the crash", got, lastDurable)
	snap, ok := snaps[got]
	require.True(t, ok, "mark %d never passed to Flush", got)

	// deleted: DeleteLedger returned before the crash step (durable);
	// maybe: it ran during the crash step (either outcome is fine).
	status := func(ledger int64) (deleted, maybe bool) {
		at, ok := deletedAt[ledger]
		return ok && at < crashStep, ok && at == crashStep
	}
	verify := func(s *Store) {
		for k := range snap.added {
			deleted, maybe := status(k[0])
			got, err := s.GetEntry(k[0], k[1])
			switch {
			case deleted:
				require.ErrorIs(t, err, ErrNoLedger)
			case maybe && err != nil:
				require.ErrorIs(t, err, ErrNoLedger)
			default:
				require.NoError(t, err, "ledger %d entry %d covered by mark %d", k[0], k[1], got)
				require.Equal(t, payloadFor(k[0], k[1]), got)
			}
		}
		// Entries past the mark may or may not be there, but never wrong.
		for k := range model.added {
			got, err := s.GetEntry(k[0], k[1])
			if err == nil {
				require.Equal(t, payloadFor(k[0], k[1]), got)
			} else if !errorIsAny(err, ErrNoEntry, ErrNoLedger) {
				t.Fatalf("ledger %d entry %d: %v", k[0], k[1], err)
			}
		}
		for l := range int64(ledgers) {
			deleted, maybe := status(l)
			st, err := s.Ledger(l)
			if deleted || (maybe && err != nil) {
				require.ErrorIs(t, err, ErrNoLedger)
				continue
			}
			if snap.fenced[l] {
				require.NoError(t, err)
				require.True(t, st.Fenced, "ledger %d fenced before mark %d", l, got)
			}
			if lac, ok := snap.lac[l]; ok {
				require.NoError(t, err)
				require.True(t, st.LAC >= lac, "ledger %d LAC %d below %d", l, st.LAC, lac)
			}
		}
		checkIndex(t, s)
	}
	verify(s2)
	_, err := s2.Compact()
	require.NoError(t, err)
	verify(s2)
	r.opsRun = r.opN.Load()
	t.Logf("crash at op %d of %d (step %d), unsynced %d%%, mark %d (durable %d)", crashAt, r.opsRun, crashStep, unsynced, got, lastDurable)
}

func errorIsAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errorsIs(err, target) {
			return true
		}
	}
	return false
}
