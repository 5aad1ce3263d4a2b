package ledgerstore

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/dlog-io/dlog/internal/entrylog"
)

func TestDeleteLedger(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := openStore(t, cfg)
	for e := range int64(30) {
		for l := range int64(3) {
			require.NoError(t, s.AddEntry(l, e, payloadFor(l, e)))
		}
		if e == 10 {
			require.NoError(t, s.Flush(markOf(1)))
		}
	}
	// Ledger 1 has entries in the entry logs and in the write cache.
	require.NoError(t, s.DeleteLedger(1))
	gone := func(s *Store) {
		for _, e := range []int64{0, 10, 11, 29} {
			_, err := s.GetEntry(1, e)
			require.ErrorIs(t, err, ErrNoLedger)
		}
		_, err := s.LastEntryID(1)
		require.ErrorIs(t, err, ErrNoLedger)
		_, err = s.Ledger(1)
		require.ErrorIs(t, err, ErrNoLedger)
		ids, err := s.LedgerIDs()
		require.NoError(t, err)
		require.Equal(t, []int64{0, 2}, ids)
		// A straggler or a journal replay cannot bring it back.
		require.ErrorIs(t, s.AddEntry(1, 30, []byte("late")), ErrLedgerDeleted)
		_, err = s.SetFenced(1)
		require.ErrorIs(t, err, ErrLedgerDeleted)
		require.NoError(t, s.DeleteLedger(1), "deleting twice is fine")
		for l := range []int64{0, 2} {
			for e := range int64(30) {
				mustRead(t, s, int64(l*2), e)
			}
		}
	}
	gone(s)
	// Durable without a Flush: reopen straight away.
	require.NoError(t, s.Close())
	s = openStore(t, cfg)
	defer s.Close()
	require.Equal(t, markOf(1), s.CheckpointMark())
	_, err := s.GetEntry(1, 0)
	require.ErrorIs(t, err, ErrNoLedger)
	require.NoError(t, s.DeleteLedger(77), "deleting an unknown ledger is fine")
	_, err = s.GetEntry(77, 0)
	require.ErrorIs(t, err, ErrNoLedger)
}

// TestDeleteDuringFlush: a ledger deleted while a flush of its entries is in
// progress must not be indexed by that flush.
func TestDeleteDuringFlush(t *testing.T) {
	for seed := range uint64(5) {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			s := openStore(t, cfg)
			for e := range int64(400) {
				require.NoError(t, s.AddEntry(1, e, payloadFor(1, e)))
				require.NoError(t, s.AddEntry(2, e, payloadFor(2, e)))
			}
			var wg sync.WaitGroup
			wg.Go(func() { require.NoError(t, s.Flush(markOf(1))) })
			wg.Go(func() { require.NoError(t, s.DeleteLedger(1)) })
			wg.Wait()
			_, err := s.GetEntry(1, 5)
			require.ErrorIs(t, err, ErrNoLedger)
			require.Equal(t, 400, checkIndex(t, s), "only ledger 2 is indexed")
			require.NoError(t, s.Close())
			s = openStore(t, cfg)
			defer s.Close()
			require.Equal(t, 400, checkIndex(t, s))
			_, err = s.GetEntry(1, 5)
			require.ErrorIs(t, err, ErrNoLedger)
			for e := range int64(400) {
				mustRead(t, s, 2, e)
			}
		})
	}
}

func TestCompactionReclaimsSpace(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.EntryLogMaxFileSizeBytes = 32 << 10
	s := openStore(t, cfg)
	const ledgers = 6
	for e := range int64(150) {
		for l := range int64(ledgers) {
			require.NoError(t, s.AddEntry(l, e, payloadFor(l, e)))
		}
		if e%25 == 24 {
			require.NoError(t, s.Flush(nil))
		}
	}
	require.NoError(t, s.Flush(markOf(1)))
	require.NoError(t, s.logs.Roll())
	logsBefore := s.logs.IDs()
	bytesBefore := s.logs.TotalBytes()
	require.Greater(t, len(logsBefore), 5)

	// Nothing deleted: nothing to do.
	st, err := s.Compact()
	require.NoError(t, err)
	require.Equal(t, 0, st.LogsRemoved)

	// Delete two thirds of the ledgers: every log drops below the 0.5 live
	// ratio, so each is rewritten or removed.
	for l := range int64(ledgers) {
		if l%3 != 0 {
			require.NoError(t, s.DeleteLedger(l))
		}
	}
	st, err = s.Compact()
	require.NoError(t, err)
	require.Greater(t, st.LogsRemoved, 0)
	require.Greater(t, st.BytesCopied, int64(0))
	for _, id := range logsBefore {
		require.NotContains(t, s.logs.IDs(), id)
	}
	bytesAfter := s.logs.TotalBytes()
	require.Less(t, bytesAfter, bytesBefore/2)
	t.Logf("entry logs %d → %d bytes, %+v", bytesBefore, bytesAfter, st)

	live := func(s *Store) {
		for l := range int64(ledgers) {
			for e := range int64(150) {
				if l%3 == 0 {
					mustRead(t, s, l, e)
				} else {
					_, err := s.GetEntry(l, e)
					require.ErrorIs(t, err, ErrNoLedger)
				}
			}
		}
		require.Equal(t, 2*150, checkIndex(t, s))
	}
	live(s)
	// Usage metadata of removed logs is gone; the new logs' usage adds up.
	for _, id := range logsBefore {
		u, err := s.logUsage(id)
		require.NoError(t, err)
		require.Equal(t, 0, len(u))
	}
	require.NoError(t, s.Close())
	s = openStore(t, cfg)
	defer s.Close()
	live(s)
	require.Equal(t, bytesAfter, s.logs.TotalBytes())
	// A second pass finds nothing more worth doing.
	st, err = s.Compact()
	require.NoError(t, err)
	require.Equal(t, 0, st.LogsCompacted)
}

func TestCompactionKeepsLogWithHiddenLiveEntries(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig("/store")
	cfg.FS = fs
	s := openStore(t, cfg)
	defer s.Close()
	for e := range int64(40) {
		for l := range int64(4) {
			require.NoError(t, s.AddEntry(l, e, payloadFor(l, e)))
		}
	}
	require.NoError(t, s.Flush(nil))
	require.NoError(t, s.logs.Roll())
	require.NoError(t, s.DeleteLedger(1))
	require.NoError(t, s.DeleteLedger(2))
	require.NoError(t, s.DeleteLedger(3))
	// Corrupt an early record of ledger 0: the scan stops there, so the
	// live entries after it cannot be copied. The log must be kept.
	loc, found, err := s.lookup(0, 1)
	require.NoError(t, err)
	require.True(t, found)
	data, err := fs.UnsafeGetFileDataBuffer("/store/logs/" + entrylog.FileName(loc.LogID))
	require.NoError(t, err)
	data[loc.Offset+entrylog.RecordHeaderSize] ^= 0xff
	st, err := s.Compact()
	require.NoError(t, err)
	require.Equal(t, 0, st.LogsRemoved)
	require.Contains(t, s.logs.IDs(), loc.LogID)
	_, err = s.GetEntry(0, 1)
	require.ErrorIs(t, err, ErrCorrupt)
	for e := int64(2); e < 40; e++ {
		mustRead(t, s, 0, e)
	}
}

// TestReadsDuringCompaction: reads racing with compaction (which moves
// entries and removes logs) never fail.
func TestReadsDuringCompaction(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.EntryLogMaxFileSizeBytes = 16 << 10
	cfg.CompactionChunkBytes = 2 << 10
	s := openStore(t, cfg)
	defer s.Close()
	const ledgers = 8
	rounds := 6
	if testing.Short() {
		rounds = 3
	}
	var wg sync.WaitGroup
	var stop atomic.Bool
	var readErr atomic.Pointer[error]
	var deleted [ledgers]atomic.Bool
	for e := range int64(60) {
		for l := range int64(ledgers) {
			require.NoError(t, s.AddEntry(l, e, payloadFor(l, e)))
		}
	}
	require.NoError(t, s.Flush(nil))
	for r := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			for !stop.Load() {
				l, e := rng.Int64N(ledgers), rng.Int64N(60)
				wasDeleted := deleted[l].Load()
				got, err := s.GetEntry(l, e)
				if err == nil && string(got) == string(payloadFor(l, e)) {
					continue
				}
				if err != nil && errorsIs(err, ErrNoLedger) && (wasDeleted || deleted[l].Load()) {
					continue
				}
				err = fmt.Errorf("ledger %d entry %d: %v", l, e, err)
				readErr.Store(&err)
				return
			}
		})
	}
	for round := range rounds {
		require.NoError(t, s.logs.Roll())
		deleted[round].Store(true)
		require.NoError(t, s.DeleteLedger(int64(round)))
		_, err := s.Compact()
		require.NoError(t, err)
	}
	stop.Store(true)
	wg.Wait()
	if p := readErr.Load(); p != nil {
		t.Fatal(*p)
	}
	checkIndex(t, s)
}

func TestBackgroundGC(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.GCInterval = 1 // as often as the ticker allows
	s := openStore(t, cfg)
	for e := range int64(50) {
		require.NoError(t, s.AddEntry(1, e, payloadFor(1, e)))
	}
	require.NoError(t, s.Flush(nil))
	require.NoError(t, s.logs.Roll())
	require.NoError(t, s.DeleteLedger(1))
	// Wait (bounded) until the background pass has removed the log.
	for i := 0; len(s.logs.IDs()) > 0; i++ {
		if i > 1_000_000 {
			t.Fatal("background GC never removed the dead log")
		}
		runtimeGosched()
	}
	require.NoError(t, s.Close()) // stops the goroutine (goleak checks)
}
