package ledgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// payloadFor is the deterministic content of (ledger, entry): any bytes a
// store returns can be checked against it.
func payloadFor(ledger, entry int64) []byte {
	r := rand.New(rand.NewPCG(uint64(ledger), uint64(entry)))
	b := make([]byte, 1+r.IntN(700))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func markOf(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func testConfig(dir string) Config {
	c := DefaultConfig()
	c.Dir = dir
	c.GCInterval = -1
	c.EntryLogMaxFileSizeBytes = 64 << 10
	c.EntryLogWriteBufferBytes = 8 << 10
	c.WriteCacheMaxBytes = 8 << 20
	c.FlushThresholdBytes = 1 << 20
	c.CompactionChunkBytes = 16 << 10
	return c
}

func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	require.NoError(t, err)
	return s
}

func mustRead(t testing.TB, s *Store, ledger, entry int64) {
	t.Helper()
	got, err := s.GetEntry(ledger, entry)
	require.NoError(t, err, "ledger %d entry %d", ledger, entry)
	require.Equal(t, payloadFor(ledger, entry), got, "ledger %d entry %d", ledger, entry)
}

func TestRoundTripReopen(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := openStore(t, cfg)
	const ledgers, entries = 12, 80
	for e := range int64(entries) {
		for l := range int64(ledgers) {
			require.NoError(t, s.AddEntry(l, e, payloadFor(l, e)))
		}
		if e == entries/2 {
			require.NoError(t, s.Flush(markOf(1)))
		}
	}
	check := func(s *Store) {
		for l := range int64(ledgers) {
			for e := range int64(entries) {
				mustRead(t, s, l, e)
			}
			last, err := s.LastEntryID(l)
			require.NoError(t, err)
			require.Equal(t, int64(entries-1), last)
			_, err = s.GetEntry(l, entries)
			require.ErrorIs(t, err, ErrNoEntry)
		}
		_, err := s.GetEntry(ledgers+5, 0)
		require.ErrorIs(t, err, ErrNoLedger)
	}
	check(s) // half from entry logs, half from the write cache
	require.NoError(t, s.Flush(markOf(2)))
	check(s)
	require.Greater(t, len(s.logs.IDs()), 1, "small entry logs should have rolled")
	require.NoError(t, s.Close())

	s = openStore(t, cfg)
	defer s.Close()
	require.Equal(t, markOf(2), s.CheckpointMark())
	check(s)
	ids, err := s.LedgerIDs()
	require.NoError(t, err)
	require.Equal(t, ledgers, len(ids))
	du, err := s.DiskUsage()
	require.NoError(t, err)
	require.Greater(t, du, int64(ledgers*entries))
}

func TestFreshStore(t *testing.T) {
	s := openStore(t, testConfig(t.TempDir()))
	defer s.Close()
	require.Nil(t, s.CheckpointMark())
	_, err := s.LastEntryID(1)
	require.ErrorIs(t, err, ErrNoLedger)
	_, err = s.Ledger(1)
	require.ErrorIs(t, err, ErrNoLedger)
	require.ErrorIs(t, s.SetLAC(1, 3), ErrNoLedger)
	require.NoError(t, s.Flush(nil))
}

func TestInvalidArguments(t *testing.T) {
	s := openStore(t, testConfig(t.TempDir()))
	defer s.Close()
	tests := []struct {
		name string
		err  error
	}{
		{name: "add-negative-ledger", err: s.AddEntry(-1, 0, nil)},
		{name: "add-negative-entry", err: s.AddEntry(1, -2, nil)},
		{name: "get-negative", err: func() error { _, err := s.GetEntry(-1, 0); return err }()},
		{name: "last-negative", err: func() error { _, err := s.LastEntryID(-1); return err }()},
		{name: "lac-too-low", err: s.SetLAC(1, -2)},
		{name: "nil-master-key", err: s.SetMasterKey(1, nil)},
		{name: "huge-master-key", err: s.SetMasterKey(1, make([]byte, 2000))},
		{name: "delete-negative", err: s.DeleteLedger(-3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.ErrorIs(t, tt.err, ErrInvalidArgument)
		})
	}
}

func TestFenceLACMasterKeyPersist(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := openStore(t, cfg)
	// Ledger 1: entries, LAC, master key. Ledger 2: only fenced.
	require.NoError(t, s.SetMasterKey(1, []byte("secret")))
	require.NoError(t, s.AddEntry(1, 0, payloadFor(1, 0)))
	require.NoError(t, s.SetLAC(1, 5))
	require.NoError(t, s.SetLAC(1, 3)) // max-merge: stays 5
	changed, err := s.SetFenced(2)
	require.NoError(t, err)
	require.True(t, changed)
	changed, err = s.SetFenced(2)
	require.NoError(t, err)
	require.False(t, changed)
	require.ErrorIs(t, s.SetMasterKey(1, []byte("other")), ErrMasterKeyMismatch)
	require.NoError(t, s.SetMasterKey(1, []byte("secret")))
	require.NoError(t, s.Flush(markOf(7)))
	// A change after the flush is not covered by its mark.
	require.NoError(t, s.SetLAC(1, 9))
	require.NoError(t, s.Close())

	s = openStore(t, cfg)
	defer s.Close()
	st, err := s.Ledger(1)
	require.NoError(t, err)
	require.Equal(t, State{Fenced: false, LAC: 5, MasterKey: []byte("secret")}, st)
	st, err = s.Ledger(2)
	require.NoError(t, err)
	require.Equal(t, State{Fenced: true, LAC: -1}, st)
	last, err := s.LastEntryID(2)
	require.NoError(t, err)
	require.Equal(t, int64(-1), last)
	_, err = s.GetEntry(2, 0)
	require.ErrorIs(t, err, ErrNoEntry)
	require.ErrorIs(t, s.SetMasterKey(1, []byte("other")), ErrMasterKeyMismatch)
	// Returned state is a copy.
	st.MasterKey = append(st.MasterKey, 'x')
	st2, _ := s.Ledger(1)
	require.Equal(t, []byte("secret"), st2.MasterKey)
}

func TestReaddIsIdempotent(t *testing.T) {
	cfg := testConfig(t.TempDir())
	s := openStore(t, cfg)
	defer s.Close()
	for range 3 {
		for e := range int64(10) {
			require.NoError(t, s.AddEntry(4, e, payloadFor(4, e)))
		}
		require.NoError(t, s.Flush(nil))
	}
	for e := range int64(10) {
		mustRead(t, s, 4, e)
	}
	last, err := s.LastEntryID(4)
	require.NoError(t, err)
	require.Equal(t, int64(9), last)
}

func TestCallerOwnsSlices(t *testing.T) {
	s := openStore(t, testConfig(t.TempDir()))
	defer s.Close()
	buf := []byte("original")
	require.NoError(t, s.AddEntry(1, 0, buf))
	copy(buf, "XXXXXXXX") // the store copied it
	got, err := s.GetEntry(1, 0)
	require.NoError(t, err)
	require.Equal(t, []byte("original"), got)
	got[0] = 'Z' // the caller owns what it got
	got2, _ := s.GetEntry(1, 0)
	require.Equal(t, []byte("original"), got2)
}

func TestWriteCacheFullAndFlushWanted(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.WriteCacheMaxBytes = 64 << 10
	cfg.FlushThresholdBytes = 16 << 10
	s := openStore(t, cfg)
	defer s.Close()
	data := make([]byte, 1000)
	var full error
	wanted := false
	for e := range int64(200) {
		if err := s.AddEntry(1, e, data); err != nil {
			full = err
			break
		}
		select {
		case <-s.FlushWanted():
			wanted = true
		default:
		}
	}
	require.True(t, wanted, "crossing FlushThresholdBytes signals")
	require.ErrorIs(t, full, ErrWriteCacheFull)
	require.NoError(t, s.Flush(nil))
	require.NoError(t, s.AddEntry(1, 1000, data), "a flush frees the cache")
}

func TestClosed(t *testing.T) {
	s := openStore(t, testConfig(t.TempDir()))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	require.ErrorIs(t, s.AddEntry(1, 0, nil), ErrClosed)
	_, err := s.GetEntry(1, 0)
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, s.Flush(nil), ErrClosed)
	_, err = s.Compact()
	require.ErrorIs(t, err, ErrClosed)
}

func TestConfigValidate(t *testing.T) {
	base := func() Config { c := DefaultConfig(); c.Dir = "d"; return c }
	tests := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{name: "defaults", mod: func(*Config) {}, ok: true},
		{name: "no-dir", mod: func(c *Config) { c.Dir = "" }},
		{name: "tiny-log", mod: func(c *Config) { c.EntryLogMaxFileSizeBytes = 100 }},
		{name: "threshold-over-max", mod: func(c *Config) { c.FlushThresholdBytes = c.WriteCacheMaxBytes + 1 }},
		{name: "compaction-threshold", mod: func(c *Config) { c.CompactionThreshold = 1.5 }},
		{name: "chunk", mod: func(c *Config) { c.CompactionChunkBytes = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			if err := c.Validate(); tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

// TestReadsDuringConcurrentFlush: readers never miss an entry that was
// added, whether it sits in the active half, the flushing half, or the
// entry logs, while flushes and compactions run concurrently.
func TestReadsDuringConcurrentFlush(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.EntryLogMaxFileSizeBytes = 32 << 10
	cfg.CompactionThreshold = 1 // every finished log is rewritten
	s := openStore(t, cfg)
	defer s.Close()
	const ledgers = 4
	n := int64(1500)
	if testing.Short() {
		n = 600
	}
	var added [ledgers]atomic.Int64 // entries [0, added) are readable
	var stop atomic.Bool
	var wg sync.WaitGroup
	fail := func(err error) {
		stop.Store(true)
		t.Error(err)
	}
	wg.Go(func() { // writer
		defer stop.Store(true)
		for e := range n {
			for l := range int64(ledgers) {
				if err := s.AddEntry(l, e, payloadFor(l, e)); err != nil {
					fail(err)
					return
				}
				added[l].Store(e + 1)
			}
		}
	})
	wg.Go(func() { // flusher
		for m := uint64(1); !stop.Load(); m++ {
			if err := s.Flush(markOf(m)); err != nil {
				fail(err)
				return
			}
		}
	})
	wg.Go(func() { // compactor
		for !stop.Load() {
			if _, err := s.Compact(); err != nil {
				fail(err)
				return
			}
		}
	})
	for r := range 2 {
		wg.Go(func() { // readers
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			for !stop.Load() {
				l := rng.Int64N(ledgers)
				hi := added[l].Load()
				if hi == 0 {
					continue
				}
				e := rng.Int64N(hi)
				got, err := s.GetEntry(l, e)
				if err != nil {
					fail(fmt.Errorf("ledger %d entry %d: %w", l, e, err))
					return
				}
				if string(got) != string(payloadFor(l, e)) {
					fail(fmt.Errorf("ledger %d entry %d: wrong bytes", l, e))
					return
				}
				if last, err := s.LastEntryID(l); err != nil || last < hi-1 {
					fail(fmt.Errorf("ledger %d: last %d below %d (%v)", l, last, hi-1, err))
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(t, s.Flush(markOf(1<<40)))
	for l := range int64(ledgers) {
		for e := range n {
			mustRead(t, s, l, e)
		}
	}
	checkIndex(t, s)
}

// checkIndex verifies that every index entry reads back the right bytes:
// nothing is half-indexed, nothing points at garbage.
func checkIndex(t testing.TB, s *Store) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixIndex}, UpperBound: []byte{prefixIndex + 1}})
	require.NoError(t, err)
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		l, e, err := decodeIndexKey(it.Key())
		require.NoError(t, err)
		loc, err := decodeIndexValue(it.Value())
		require.NoError(t, err)
		got, err := s.logs.Read(loc, l, e)
		require.NoError(t, err, "index entry ledger %d entry %d at %+v", l, e, loc)
		require.Equal(t, payloadFor(l, e), got)
		n++
	}
	require.NoError(t, it.Error())
	return n
}

var errorsIs = errors.Is
var _ = vfs.Default

func runtimeGosched() { runtime.Gosched() }

func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(t.TempDir())
	cfg.Registerer = reg
	s := openStore(t, cfg)
	require.NoError(t, s.AddEntry(1, 0, payloadFor(1, 0)))
	require.NoError(t, s.Flush(nil))
	mustRead(t, s, 1, 0)
	// A second store on the same registry is refused, and leaves nothing
	// registered behind.
	cfg2 := testConfig(t.TempDir())
	cfg2.Registerer = reg
	_, err := Open(cfg2)
	require.Error(t, err)
	families, err := reg.Gather()
	require.NoError(t, err)
	require.Greater(t, len(families), 5)
	require.NoError(t, s.Close())
	families, err = reg.Gather()
	require.NoError(t, err)
	require.Equal(t, 0, len(families), "Close unregisters")
	s = openStore(t, cfg2) // registers again now that it is free
	require.NoError(t, s.Close())
}
