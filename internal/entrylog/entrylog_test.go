package entrylog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func payloadFor(ledger, entry int64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(ledger), uint64(entry)))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		ledger  int64
		entry   int64
		payload []byte
	}{
		{name: "empty", ledger: 0, entry: 0, payload: nil},
		{name: "small", ledger: 7, entry: 42, payload: []byte("hello")},
		{name: "max-ids", ledger: 1<<63 - 1, entry: 1<<63 - 1, payload: bytes.Repeat([]byte{0xAB}, 4096)},
		{name: "negative-ids", ledger: -1, entry: -5, payload: []byte{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendRecord([]byte("prefix"), tt.ledger, tt.entry, tt.payload)
			rec, n, err := DecodeRecord(b[len("prefix"):])
			require.NoError(t, err)
			require.Equal(t, int(RecordSize(len(tt.payload))), n)
			require.Equal(t, tt.ledger, rec.LedgerID)
			require.Equal(t, tt.entry, rec.EntryID)
			require.Equal(t, len(tt.payload), len(rec.Payload))
			require.True(t, bytes.Equal(tt.payload, rec.Payload))
		})
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	good := AppendRecord(nil, 3, 4, []byte("payload"))
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name    string
		in      []byte
		wantEOF bool
	}{
		{name: "empty", in: nil, wantEOF: true},
		{name: "short-header", in: good[:10], wantEOF: true},
		{name: "short-payload", in: good[:len(good)-1], wantEOF: true},
		{name: "length-down", in: flip(3)},
		{name: "length-up", in: func() []byte { b := bytes.Clone(good); b[3] = 200; return b }(), wantEOF: true},
		{name: "flip-crc", in: flip(5)},
		{name: "flip-ledger", in: flip(15)},
		{name: "flip-entry", in: flip(16)},
		{name: "flip-payload", in: flip(RecordHeaderSize + 2)},
		{name: "huge-length", in: append([]byte{0xff, 0xff, 0xff, 0xff}, good[4:]...)},
		{name: "zeros", in: make([]byte, 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DecodeRecord(tt.in)
			require.Error(t, err)
			if tt.wantEOF {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			} else {
				require.ErrorIs(t, err, ErrCorrupt)
			}
		})
	}
}

func TestFileNames(t *testing.T) {
	tests := []struct {
		name string
		in   string
		id   int64
		ok   bool
	}{
		{name: "one", in: "0000000000000001.log", id: 1, ok: true},
		{name: "big", in: "00000000deadbeef.log", id: 0xdeadbeef, ok: true},
		{name: "zero", in: "0000000000000000.log"},
		{name: "negative", in: "ffffffffffffffff.log"},
		{name: "short", in: "01.log"},
		{name: "suffix", in: "0000000000000001.tmp"},
		{name: "not-hex", in: "000000000000000g.log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := ParseFileName(tt.in)
			require.Equal(t, tt.ok, ok)
			if ok {
				require.Equal(t, tt.id, id)
				require.Equal(t, tt.in, FileName(id))
			}
		})
	}
}

type written struct {
	ledger, entry int64
	loc           Location
}

func appendMany(t *testing.T, l *Logs, ledgers, perLedger, size int) []written {
	t.Helper()
	var out []written
	ids := map[int64]bool{}
	for e := range perLedger {
		for lg := range ledgers {
			p := payloadFor(int64(lg), int64(e), size+(lg*7+e)%size)
			loc, err := l.Append(int64(lg), int64(e), p)
			require.NoError(t, err)
			ids[loc.LogID] = true
			out = append(out, written{int64(lg), int64(e), loc})
		}
	}
	var list []int64
	for id := range ids {
		list = append(list, id)
	}
	require.NoError(t, l.Sync(list...))
	return out
}

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, MaxFileSizeBytes: 32 << 10, WriteBufferBytes: 4 << 10}
	l, err := Open(cfg)
	require.NoError(t, err)
	recs := appendMany(t, l, 5, 60, 300)
	require.Greater(t, len(l.IDs()), 3, "small MaxFileSizeBytes should roll")
	check := func(l *Logs) {
		for _, w := range recs {
			got, err := l.Read(w.loc, w.ledger, w.entry)
			require.NoError(t, err)
			require.Equal(t, payloadFor(w.ledger, w.entry, int(w.loc.Size)), got)
		}
	}
	check(l)
	ids := l.IDs()
	require.NoError(t, l.Close())

	l, err = Open(cfg)
	require.NoError(t, err)
	defer l.Close()
	require.Equal(t, ids, l.IDs())
	require.Greater(t, l.CurrentID(), ids[len(ids)-1], "a reopened Logs never appends to an old log")
	check(l)

	// Scanning every log yields every record, in order, exactly once.
	seen := 0
	for _, id := range l.IDs() {
		s, err := l.Scanner(id)
		require.NoError(t, err)
		for s.Next() {
			rec := s.Record()
			require.Equal(t, payloadFor(rec.LedgerID, rec.EntryID, len(rec.Payload)), rec.Payload)
			seen++
		}
		require.NoError(t, s.Err())
		s.Close()
	}
	require.Equal(t, len(recs), seen)
}

func TestReadMismatchIsCorrupt(t *testing.T) {
	l, err := Open(Config{Dir: t.TempDir()})
	require.NoError(t, err)
	defer l.Close()
	recs := appendMany(t, l, 2, 3, 50)
	w := recs[0]
	tests := []struct {
		name   string
		loc    Location
		ledger int64
		entry  int64
	}{
		{name: "wrong-ledger", loc: w.loc, ledger: w.ledger + 1, entry: w.entry},
		{name: "wrong-entry", loc: w.loc, ledger: w.ledger, entry: w.entry + 1},
		{name: "wrong-size", loc: Location{LogID: w.loc.LogID, Offset: w.loc.Offset, Size: w.loc.Size - 1}, ledger: w.ledger, entry: w.entry},
		{name: "wrong-offset", loc: Location{LogID: w.loc.LogID, Offset: w.loc.Offset + 1, Size: w.loc.Size}, ledger: w.ledger, entry: w.entry},
		{name: "past-end", loc: Location{LogID: w.loc.LogID, Offset: 1 << 20, Size: 10}, ledger: w.ledger, entry: w.entry},
		{name: "in-header", loc: Location{LogID: w.loc.LogID, Offset: 0, Size: 10}, ledger: w.ledger, entry: w.entry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Read(tt.loc, tt.ledger, tt.entry)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
	_, err = l.Read(Location{LogID: 999, Offset: FileHeaderSize, Size: 1}, 0, 0)
	require.ErrorIs(t, err, ErrLogNotFound)
}

func TestBitFlipsDetected(t *testing.T) {
	fs := vfs.NewMem()
	l, err := Open(Config{FS: fs, Dir: "/logs"})
	require.NoError(t, err)
	defer l.Close()
	recs := appendMany(t, l, 3, 20, 100)
	require.NoError(t, l.Roll())
	path := "/logs/" + FileName(recs[0].loc.LogID)
	data, err := fs.UnsafeGetFileDataBuffer(path)
	require.NoError(t, err)
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		victim := recs[r.IntN(len(recs))]
		pos := victim.loc.Offset + int64(r.IntN(int(RecordSize(int(victim.loc.Size)))))
		if pos >= victim.loc.Offset+4 && pos < victim.loc.Offset+8 {
			// Flipping the checksum field itself is also detected; no
			// special case needed, keep it in.
		}
		bit := byte(1) << r.IntN(8)
		data[pos] ^= bit
		for _, w := range recs {
			got, err := l.Read(w.loc, w.ledger, w.entry)
			if w == victim {
				require.ErrorIs(t, err, ErrCorrupt, "flip at %d", pos)
				require.Nil(t, got)
			} else {
				require.NoError(t, err)
				require.Equal(t, payloadFor(w.ledger, w.entry, int(w.loc.Size)), got)
			}
		}
		data[pos] ^= bit
	}
}

func TestScannerStopsAtTornTail(t *testing.T) {
	fs := vfs.NewMem()
	l, err := Open(Config{FS: fs, Dir: "/logs"})
	require.NoError(t, err)
	recs := appendMany(t, l, 1, 10, 100)
	require.NoError(t, l.Close())
	path := "/logs/" + FileName(recs[0].loc.LogID)
	full, err := fs.UnsafeGetFileDataBuffer(path)
	require.NoError(t, err)
	full = bytes.Clone(full)
	tests := []struct {
		name      string
		data      []byte
		wantCount int
		wantErr   bool
	}{
		{name: "whole", data: full, wantCount: 10},
		{name: "empty-file", data: nil, wantCount: 0},
		{name: "header-only", data: full[:FileHeaderSize], wantCount: 0},
		{name: "torn-header", data: full[:FileHeaderSize-3], wantErr: true},
		{name: "torn-record", data: full[:recs[5].loc.Offset+10], wantCount: 5, wantErr: true},
		{name: "zero-tail", data: append(bytes.Clone(full[:recs[3].loc.Offset]), make([]byte, 5000)...), wantCount: 3, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewScanner(bytes.NewReader(tt.data), int64(len(tt.data)))
			n := 0
			for s.Next() {
				require.Equal(t, recs[n].loc.Offset, s.Offset())
				n++
			}
			require.Equal(t, tt.wantCount, n)
			if tt.wantErr {
				require.ErrorIs(t, s.Err(), ErrCorrupt)
			} else {
				require.NoError(t, s.Err())
			}
		})
	}
}

func TestScannerLargeRecords(t *testing.T) {
	// Records larger than the scan chunk must widen the window.
	var buf []byte
	buf = appendFileHeader(buf)
	sizes := []int{10, scanChunk + 17, 3, 2*scanChunk - 5, 0}
	for i, n := range sizes {
		buf = AppendRecord(buf, 1, int64(i), payloadFor(1, int64(i), n))
	}
	s := NewScanner(bytes.NewReader(buf), int64(len(buf)))
	i := 0
	for s.Next() {
		require.Equal(t, payloadFor(1, int64(i), sizes[i]), s.Record().Payload)
		i++
	}
	require.NoError(t, s.Err())
	require.Equal(t, len(sizes), i)
}

func TestRemoveWhileReading(t *testing.T) {
	l, err := Open(Config{Dir: t.TempDir()})
	require.NoError(t, err)
	defer l.Close()
	recs := appendMany(t, l, 2, 50, 64)
	require.NoError(t, l.Roll())
	id := recs[0].loc.LogID
	s, err := l.Scanner(id)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, l.Remove(id))
	// A scanner opened before Remove still reads the whole log.
	n := 0
	for s.Next() {
		n++
	}
	require.NoError(t, s.Err())
	require.Equal(t, len(recs), n)
	_, err = l.Read(recs[0].loc, recs[0].ledger, recs[0].entry)
	require.ErrorIs(t, err, ErrLogNotFound)
	require.NotContains(t, l.IDs(), id)
}

func TestConcurrentAppendRead(t *testing.T) {
	l, err := Open(Config{Dir: t.TempDir(), MaxFileSizeBytes: 32 << 10, WriteBufferBytes: 1 << 10})
	require.NoError(t, err)
	defer l.Close()
	var mu sync.Mutex
	var synced []written
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for e := range 100 {
				p := payloadFor(int64(g), int64(e), 200)
				loc, err := l.Append(int64(g), int64(e), p)
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.Sync(loc.LogID); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				synced = append(synced, written{int64(g), int64(e), loc})
				mu.Unlock()
			}
		})
	}
	wg.Go(func() {
		for range 300 {
			mu.Lock()
			list := bytes.Clone([]byte{}) // keep vet quiet about unused
			_ = list
			var w *written
			if len(synced) > 0 {
				w = &synced[len(synced)/2]
			}
			mu.Unlock()
			if w == nil {
				continue
			}
			got, err := l.Read(w.loc, w.ledger, w.entry)
			if err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(got, payloadFor(w.ledger, w.entry, 200)) {
				t.Error("wrong bytes")
				return
			}
		}
	})
	wg.Wait()
}

func TestWriteAndSyncErrors(t *testing.T) {
	tests := []struct {
		name string
		op   errorfs.OpKind
	}{
		{name: "write", op: errorfs.OpFileWrite},
		{name: "sync", op: errorfs.OpFileSync},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
				if op.Kind == tt.op {
					return errorfs.ErrInjected
				}
				return nil
			})}
			fs := errorfs.Wrap(vfs.NewMem(), toggle)
			l, err := Open(Config{FS: fs, Dir: "/logs", WriteBufferBytes: 1 << 10})
			require.NoError(t, err)
			defer l.Close()
			good := appendMany(t, l, 1, 5, 100)

			toggle.On()
			var failed error
			var locs []Location
			for e := range 20 {
				loc, err := l.Append(2, int64(e), payloadFor(2, int64(e), 100))
				if err != nil {
					failed = err
					break
				}
				locs = append(locs, loc)
			}
			if failed == nil {
				failed = l.Sync(locs[0].LogID)
			}
			require.ErrorIs(t, failed, errorfs.ErrInjected)
			if len(locs) > 0 {
				// Once failed, a Sync naming the log keeps failing.
				require.Error(t, l.Sync(locs[0].LogID))
			}
			toggle.Off()

			// Records synced before the failure still read back.
			for _, w := range good {
				got, err := l.Read(w.loc, w.ledger, w.entry)
				require.NoError(t, err)
				require.Equal(t, payloadFor(w.ledger, w.entry, int(w.loc.Size)), got)
			}
			// A new log takes over.
			loc, err := l.Append(3, 0, []byte("after"))
			require.NoError(t, err)
			require.Greater(t, loc.LogID, good[0].loc.LogID)
			require.NoError(t, l.Sync(loc.LogID))
			got, err := l.Read(loc, 3, 0)
			require.NoError(t, err)
			require.Equal(t, []byte("after"), got)
		})
	}
}

func TestCrashKeepsSyncedRecords(t *testing.T) {
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed-", seed), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			l, err := Open(Config{FS: fs, Dir: "/logs", MaxFileSizeBytes: 16 << 10, WriteBufferBytes: 512})
			require.NoError(t, err)
			r := rand.New(rand.NewPCG(seed, 99))
			var durable []written
			var pending []written
			for e := range 200 {
				p := payloadFor(1, int64(e), 1+r.IntN(400))
				loc, err := l.Append(1, int64(e), p)
				require.NoError(t, err)
				pending = append(pending, written{1, int64(e), loc})
				if r.IntN(10) == 0 {
					ids := []int64{}
					for _, w := range pending {
						ids = append(ids, w.loc.LogID)
					}
					require.NoError(t, l.Sync(ids...))
					durable = append(durable, pending...)
					pending = nil
				}
			}
			crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: r.IntN(100), RNG: rand.New(rand.NewPCG(seed, 1))})
			require.NoError(t, l.Close())
			l2, err := Open(Config{FS: crashed, Dir: "/logs"})
			require.NoError(t, err)
			defer l2.Close()
			for _, w := range durable {
				got, err := l2.Read(w.loc, w.ledger, w.entry)
				require.NoError(t, err)
				require.Equal(t, payloadFor(w.ledger, w.entry, int(w.loc.Size)), got)
			}
			// Scans of crashed logs stop cleanly or at a corrupt record,
			// never yield a record that was not written.
			for _, id := range l2.IDs() {
				s, err := l2.Scanner(id)
				require.NoError(t, err)
				for s.Next() {
					rec := s.Record()
					require.Equal(t, payloadFor(rec.LedgerID, rec.EntryID, len(rec.Payload)), rec.Payload)
				}
				if err := s.Err(); err != nil {
					require.ErrorIs(t, err, ErrCorrupt)
				}
				s.Close()
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{name: "default-with-dir", cfg: func() Config { c := DefaultConfig(); c.Dir = "x"; return c }(), ok: true},
		{name: "no-dir", cfg: DefaultConfig()},
		{name: "tiny-file", cfg: Config{Dir: "x", MaxFileSizeBytes: 10}},
		{name: "negative-buffer", cfg: Config{Dir: "x", MaxFileSizeBytes: 1 << 20, WriteBufferBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
	_, err := Open(Config{})
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrCorrupt))
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, 1, 2, []byte("abc")))
	f.Add(AppendRecord(nil, 0, 0, nil))
	f.Add(make([]byte, 30))
	f.Add([]byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if n > len(b) || n != int(RecordSize(len(rec.Payload))) {
			t.Fatalf("bad size %d for %d bytes", n, len(b))
		}
		// A decoded record re-encodes to the same bytes.
		again := AppendRecord(nil, rec.LedgerID, rec.EntryID, rec.Payload)
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzScanner(f *testing.F) {
	var good []byte
	good = appendFileHeader(good)
	good = AppendRecord(good, 1, 0, []byte("first"))
	good = AppendRecord(good, 2, 5, []byte("second"))
	f.Add(good)
	f.Add(good[:20])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewScanner(bytes.NewReader(b), int64(len(b)))
		last := int64(-1)
		for s.Next() {
			if s.Offset() <= last || s.End() > int64(len(b)) {
				t.Fatalf("offsets not increasing or past end")
			}
			last = s.Offset()
			rec := s.Record()
			again := AppendRecord(nil, rec.LedgerID, rec.EntryID, rec.Payload)
			if !bytes.Equal(again, b[s.Offset():s.End()]) {
				t.Fatalf("scanned record differs from file bytes")
			}
		}
		if err := s.Err(); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
