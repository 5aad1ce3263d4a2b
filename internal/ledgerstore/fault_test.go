package ledgerstore

import (
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/dlog-io/dlog/internal/entrylog"
)

// TestBitFlipsInEntryLogs: any flipped bit inside a flushed record makes
// that entry ErrCorrupt — never other bytes, never ErrNoEntry — and leaves
// every other entry readable.
func TestBitFlipsInEntryLogs(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig("/store")
	cfg.FS = fs
	s := openStore(t, cfg)
	defer s.Close()
	type ent struct{ l, e int64 }
	var all []ent
	for e := range int64(25) {
		for l := range int64(4) {
			require.NoError(t, s.AddEntry(l, e, payloadFor(l, e)))
			all = append(all, ent{l, e})
		}
	}
	require.NoError(t, s.Flush(markOf(1)))
	locs := map[ent]entrylog.Location{}
	for _, x := range all {
		loc, found, err := s.lookup(x.l, x.e)
		require.NoError(t, err)
		require.True(t, found)
		locs[x] = loc
	}
	rng := rand.New(rand.NewPCG(42, 42))
	flips := 300
	if testing.Short() {
		flips = 100
	}
	for range flips {
		victim := all[rng.IntN(len(all))]
		loc := locs[victim]
		data, err := fs.UnsafeGetFileDataBuffer("/store/logs/" + entrylog.FileName(loc.LogID))
		require.NoError(t, err)
		pos := loc.Offset + rng.Int64N(entrylog.RecordSize(int(loc.Size)))
		bit := byte(1) << rng.IntN(8)
		data[pos] ^= bit
		for _, x := range all {
			got, err := s.GetEntry(x.l, x.e)
			if x == victim {
				require.ErrorIs(t, err, ErrCorrupt, "flip at %d of ledger %d entry %d", pos, x.l, x.e)
				require.ErrorIs(t, err, entrylog.ErrCorrupt)
				require.NotErrorIs(t, err, ErrNoEntry)
				require.Nil(t, got)
			} else {
				require.NoError(t, err)
				require.Equal(t, payloadFor(x.l, x.e), got)
			}
		}
		data[pos] ^= bit
	}
}

// logFaults injects err into entry log operations of kind op (only under
// /logs/, never into pebble) while on.
func logFaults(op errorfs.OpKind, err error) *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(o errorfs.Op) error {
		if o.Kind == op && strings.Contains(o.Path, "/logs/") {
			return err
		}
		return nil
	})}
}

// TestFlushIOErrors: ENOSPC or EIO while writing or syncing an entry log
// fails the Flush; the mark does not move, nothing is reported persisted,
// every entry stays readable, and a later Flush persists everything.
func TestFlushIOErrors(t *testing.T) {
	tests := []struct {
		name string
		op   errorfs.OpKind
		err  error
	}{
		{name: "write-enospc", op: errorfs.OpFileWrite, err: syscall.ENOSPC},
		{name: "write-eio", op: errorfs.OpFileWrite, err: syscall.EIO},
		{name: "sync-eio", op: errorfs.OpFileSync, err: syscall.EIO},
		{name: "sync-enospc", op: errorfs.OpFileSync, err: syscall.ENOSPC},
		{name: "create-enospc", op: errorfs.OpCreate, err: syscall.ENOSPC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			toggle := logFaults(tt.op, tt.err)
			cfg := testConfig("/store")
			cfg.FS = errorfs.Wrap(mem, toggle)
			cfg.EntryLogWriteBufferBytes = 1 << 10
			s := openStore(t, cfg)
			for e := range int64(20) {
				require.NoError(t, s.AddEntry(1, e, payloadFor(1, e)))
			}
			require.NoError(t, s.Flush(markOf(1)))
			if tt.op == errorfs.OpCreate {
				require.NoError(t, s.logs.Roll()) // the next flush must create a log
			}
			for e := int64(20); e < 40; e++ {
				require.NoError(t, s.AddEntry(1, e, payloadFor(1, e)))
			}
			_, err := s.SetFenced(1)
			require.NoError(t, err)

			toggle.On()
			err = s.Flush(markOf(2))
			require.ErrorIs(t, err, tt.err)
			require.Equal(t, markOf(1), s.CheckpointMark(), "a failed flush reports nothing persisted")
			for e := range int64(40) {
				mustRead(t, s, 1, e)
			}
			// A crash now comes back at mark 1 with entries 0..19 only.
			crashed := mem.CrashClone(vfs.CrashCloneCfg{})
			toggle.Off()

			require.NoError(t, s.Flush(markOf(3)), "the next flush uses a new entry log")
			for e := range int64(40) {
				mustRead(t, s, 1, e)
			}
			checkIndex(t, s)
			require.NoError(t, s.Close())

			s = openStore(t, Config{FS: errorfs.Wrap(mem, toggle), Dir: "/store", GCInterval: -1})
			require.Equal(t, markOf(3), s.CheckpointMark())
			for e := range int64(40) {
				mustRead(t, s, 1, e)
			}
			st, err := s.Ledger(1)
			require.NoError(t, err)
			require.True(t, st.Fenced)
			// The abandoned log holds nothing indexed: compaction drops it.
			_, err = s.Compact()
			require.NoError(t, err)
			require.Equal(t, 40, checkIndex(t, s))
			require.NoError(t, s.Close())

			s = openStore(t, Config{FS: crashed, Dir: "/store", GCInterval: -1})
			defer s.Close()
			require.Equal(t, markOf(1), s.CheckpointMark())
			require.Equal(t, 20, checkIndex(t, s))
			for e := range int64(20) {
				mustRead(t, s, 1, e)
			}
			_, err = s.GetEntry(1, 25)
			require.ErrorIs(t, err, ErrNoEntry)
		})
	}
}

// TestReadIOErrorIsNotANegative: an I/O error reading an entry log is
// reported as such: not ErrNoEntry, not ErrNoLedger, not ErrCorrupt.
func TestReadIOErrorIsNotANegative(t *testing.T) {
	toggle := logFaults(errorfs.OpFileReadAt, syscall.EIO)
	cfg := testConfig("/store")
	cfg.FS = errorfs.Wrap(vfs.NewMem(), toggle)
	s := openStore(t, cfg)
	defer s.Close()
	require.NoError(t, s.AddEntry(1, 0, payloadFor(1, 0)))
	require.NoError(t, s.Flush(nil))
	toggle.On()
	_, err := s.GetEntry(1, 0)
	require.ErrorIs(t, err, syscall.EIO)
	require.NotErrorIs(t, err, ErrNoEntry)
	require.NotErrorIs(t, err, ErrNoLedger)
	require.NotErrorIs(t, err, ErrCorrupt)
	toggle.Off()
	mustRead(t, s, 1, 0)
}
