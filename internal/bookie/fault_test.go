package bookie

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// memConfig is a bookie on fs at /bookie that never checkpoints on its own
// (everything stays in the journal until Close).
func memConfig(t testing.TB, fs vfs.FS) Config {
	cfg := testConfig(t, "/bookie")
	cfg.FS = fs
	cfg.FlushInterval = time.Hour
	cfg.DiskCheckInterval = time.Hour
	return cfg
}

// journalDataEnd walks the journal file's records (format: package
// journal) and returns the offsets of the last record and of the end of
// written data.
func journalDataEnd(t *testing.T, data []byte) (last, end int) {
	t.Helper()
	off, last := 40, -1 // after the version-2 file header
	for off+8 <= len(data) {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if n == 0 {
			break
		}
		last = off
		off += 8 + n
	}
	if last < 0 {
		t.Fatal("journal holds no record")
	}
	return last, off
}

func onlyJournalFile(t *testing.T, fs vfs.FS) string {
	t.Helper()
	names, err := fs.List("/bookie/journal")
	noErr(t, err, "list journal")
	var files []string
	for _, n := range names {
		if strings.HasSuffix(n, ".journal") {
			files = append(files, "/bookie/journal/"+n)
		}
	}
	if len(files) != 1 {
		t.Fatalf("journal files %v, want one", files)
	}
	return files[0]
}

// TestJournalTailDamage: a torn record after the acknowledged ones, or a
// corrupt last record, is cut at restart; every acknowledged entry before
// the cut reads back, and the bookie takes new adds after it.
func TestJournalTailDamage(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(data []byte, last, end int)
		survives int64 // entries 0..survives-1 must read back
	}{
		{"torn record after the last", func(data []byte, _, end int) {
			binary.LittleEndian.PutUint32(data[end:], 300) // a length, then garbage
			for i := end + 4; i < end+60; i++ {
				data[i] = byte(i)
			}
		}, 20},
		{"bit flip in the last record", func(data []byte, last, end int) {
			data[last+8+(end-last-8)/2] ^= 0x10
		}, 19},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			b := start(t, memConfig(t, fs))
			c := newClient(t)
			ctx := ctxTimeout(t, 30*time.Second)
			for e := range int64(20) {
				noErr(t, c.Add(ctx, b.ListenAddr(), addReq(1, e, e-1)), "add %d", e)
			}
			crashed := fs.CrashClone(vfs.CrashCloneCfg{})
			noErr(t, b.Close(), "close")
			path := onlyJournalFile(t, crashed)
			data, err := crashed.UnsafeGetFileDataBuffer(path)
			noErr(t, err, "journal data")
			last, end := journalDataEnd(t, data)
			tt.damage(data, last, end)

			b2 := start(t, memConfig(t, crashed))
			if tt.survives < 20 && b2.journal.Stats().ReplayCut.IsZero() {
				t.Fatal("replay did not report a cut")
			}
			// Damage at the very end, with nothing after it, looks like a
			// torn write: no limbo, and what is gone is NO_ENTRY.
			if l := b2.Limbo(); l != "" {
				t.Fatalf("bookie in limbo after a tail cut: %s", l)
			}
			_, err = c.Read(ctx, b2.ListenAddr(), &bookiepb.ReadRequest{LedgerId: 1, EntryId: tt.survives})
			wantErr(t, err, bookieclient.ErrNoEntry, "read of the cut entry")
			for e := range tt.survives {
				readEntry(t, c, b2.ListenAddr(), 1, e, payloadOf(1, e))
			}
			noErr(t, c.Add(ctx, b2.ListenAddr(), addReq(1, 20, 18)), "add after the cut")
			crashed2 := crashed.CrashClone(vfs.CrashCloneCfg{})
			noErr(t, b2.Close(), "close")
			b3 := start(t, memConfig(t, crashed2))
			for e := range tt.survives {
				readEntry(t, c, b3.ListenAddr(), 1, e, payloadOf(1, e))
			}
			readEntry(t, c, b3.ListenAddr(), 1, 20, payloadOf(1, 20))
		})
	}
}

// TestEntryLogBitFlip: a flipped bit in a flushed entry makes its read
// answer CORRUPT: never other bytes, never NO_ENTRY.
func TestEntryLogBitFlip(t *testing.T) {
	fs := vfs.NewMem()
	b := start(t, memConfig(t, fs))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	big := make([]byte, 8<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	noErr(t, c.Add(ctx, addr, addReq(2, 0, -1)), "add 0")
	noErr(t, c.Add(ctx, addr, &bookiepb.AddRequest{Entry: bookiepb.NewEntry(2, 1, 0, big), MasterKey: testKey}), "add 1")
	noErr(t, b.Checkpoint(), "checkpoint")
	names, err := fs.List("/bookie/ledgers/logs")
	noErr(t, err, "list logs")
	flipped := false
	for _, n := range names {
		data, err := fs.UnsafeGetFileDataBuffer("/bookie/ledgers/logs/" + n)
		noErr(t, err, "log data")
		if len(data) > len(big) {
			data[len(data)-len(big)/2] ^= 0x04 // inside entry 1's payload
			flipped = true
		}
	}
	if !flipped {
		t.Fatalf("no entry log holds the entry: %v", names)
	}
	for _, e := range []int64{1, -1} {
		_, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 2, EntryId: e})
		wantErr(t, err, bookieclient.ErrCorrupt, "read %d", e)
		if bookieclient.IsExplicitNegative(err) {
			t.Fatalf("corruption answered as an explicit negative: %v", err)
		}
	}
	readEntry(t, c, addr, 2, 0, payloadOf(2, 0))
}

// TestJournalFsyncEIO: once a journal fsync fails the bookie acknowledges
// no add again (the failing group gets IO_ERROR, later ones READ_ONLY), is
// read-only with the reason and not ready, and still serves reads.
func TestJournalFsyncEIO(t *testing.T) {
	var toggle errorfs.Toggle
	toggle.Injector = errorfs.InjectorFunc(func(op errorfs.Op) error {
		if (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) && strings.Contains(op.Path, "/journal/") {
			return syscall.EIO
		}
		return nil
	})
	fs := errorfs.Wrap(vfs.NewMem(), &toggle)
	b := start(t, memConfig(t, fs))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	for e := range int64(5) {
		noErr(t, c.Add(ctx, addr, addReq(3, e, e-1)), "add %d", e)
	}
	toggle.On()
	var (
		wg   sync.WaitGroup
		acks atomic.Int64
	)
	for e := int64(5); e < 50; e++ {
		wg.Add(1)
		c.AddAsync(ctx, addr, addReq(3, e, 4), func(err error) {
			defer wg.Done()
			switch {
			case err == nil:
				acks.Add(1)
			case !errors.Is(err, bookieclient.ErrIO) && !errors.Is(err, bookieclient.ErrReadOnly):
				t.Errorf("add %d: %v", e, err)
			}
		})
	}
	wg.Wait()
	if n := acks.Load(); n != 0 {
		t.Fatalf("%d adds acknowledged after the fsync failure", n)
	}
	toggle.Off() // the bookie must not retry even if the disk recovers
	wantErr(t, c.Add(ctx, addr, addReq(3, 50, 4)), bookieclient.ErrReadOnly, "add after the failure")
	info, err := c.Info(ctx, addr)
	noErr(t, err, "info")
	if info.State != bookiepb.BookieState_BOOKIE_STATE_READ_ONLY || !strings.Contains(info.ReadOnlyReason, "journal failed") {
		t.Fatalf("info after the failure: %v", info)
	}
	wantErr(t, b.Ready(ctx), ErrReadOnly, "ready")
	for e := range int64(5) {
		readEntry(t, c, addr, 3, e, payloadOf(3, e))
	}
	_, err = c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 3, EntryId: -1, Fence: true, MasterKey: testKey})
	wantErr(t, err, bookieclient.ErrReadOnly, "fence after the failure")
}

func TestFencePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	b := start(t, testConfig(t, dir))
	noErr(t, c.Add(ctx, b.ListenAddr(), addReq(4, 0, -1)), "add")
	_, err := c.Read(ctx, b.ListenAddr(), &bookiepb.ReadRequest{LedgerId: 4, EntryId: -1, Fence: true, MasterKey: testKey})
	noErr(t, err, "fence")
	_, err = c.Read(ctx, b.ListenAddr(), &bookiepb.ReadRequest{LedgerId: 40, EntryId: -1, Fence: true, MasterKey: testKey})
	noErr(t, err, "fence unknown ledger")
	noErr(t, b.Close(), "close")
	b = start(t, testConfig(t, dir))
	for _, l := range []int64{4, 40} {
		wantErr(t, c.Add(ctx, b.ListenAddr(), addReq(l, 1, 0)), bookieclient.ErrFenced, "add to ledger %d after restart", l)
	}
	readEntry(t, c, b.ListenAddr(), 4, 0, payloadOf(4, 0))
}

// TestReadOnlyOnQuota drives the disk check by hand with an injected usage
// function (the bytes of live entries the test added): at the high-water
// mark adds are refused and reads served, the registration says read-only,
// and deleting a ledger makes the bookie writable again.
func TestReadOnlyOnQuota(t *testing.T) {
	md, err := metadata.Open(t.Context(), "memory:", metadata.Options{})
	noErr(t, err, "metadata")
	t.Cleanup(func() { _ = md.Close() })
	var mu sync.Mutex
	live := map[int64]int64{}
	cfg := testConfig(t, t.TempDir())
	cfg.Metadata = md
	cfg.SessionTTL = 2 * time.Second
	cfg.DiskCheckInterval = time.Hour
	cfg.DiskQuotaBytes = 10_000
	cfg.DiskUsage = func() (DiskStats, error) {
		mu.Lock()
		defer mu.Unlock()
		var used int64
		for _, n := range live {
			used += n
		}
		return DiskStats{UsedBytes: used, FreeBytes: 1 << 40, TotalBytes: 1 << 41}, nil
	}
	b := start(t, cfg)
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	state := func() metadata.BookieState {
		bs, _, err := md.ListBookies(ctx)
		noErr(t, err, "list bookies")
		if len(bs) != 1 {
			return 0
		}
		return bs[0].State
	}
	waitUntil(t, 10*time.Second, "registration", func() bool { return state() == metadata.BookieWritable })
	add := func(l, e int64) error {
		req := &bookiepb.AddRequest{Entry: bookiepb.NewEntry(l, e, e-1, make([]byte, 1000)), MasterKey: testKey}
		err := c.Add(ctx, addr, req)
		if err == nil {
			mu.Lock()
			live[l] += 1000
			mu.Unlock()
		}
		return err
	}
	for e := range int64(5) {
		noErr(t, add(1, e), "add 1:%d", e)
		noErr(t, add(2, e), "add 2:%d", e)
	}
	b.CheckDisk() // 10000 of 10000: over 95%
	wantErr(t, add(2, 5), bookieclient.ErrReadOnly, "add when full")
	info, err := c.Info(ctx, addr)
	noErr(t, err, "info")
	if info.State != bookiepb.BookieState_BOOKIE_STATE_READ_ONLY || !strings.Contains(info.ReadOnlyReason, "quota") {
		t.Fatalf("info when full: %v", info)
	}
	noErr(t, b.Ready(ctx), "a full bookie is still ready (it serves reads)")
	waitUntil(t, 10*time.Second, "read-only registration", func() bool { return state() == metadata.BookieReadOnly })
	readEntry(t, c, addr, 1, 4, make([]byte, 1000))
	noErr(t, c.Delete(ctx, addr, 1), "delete while read-only")
	mu.Lock()
	delete(live, 1)
	mu.Unlock()
	b.CheckDisk() // 5000 of 10000: below 90%
	noErr(t, add(2, 5), "add after space was freed")
	waitUntil(t, 10*time.Second, "writable registration", func() bool { return state() == metadata.BookieWritable })
	noErr(t, b.Close(), "close")
	waitUntil(t, 10*time.Second, "deregistration", func() bool { return state() == 0 })
}

// TestDiskFullReason covers the thresholds and their hysteresis.
func TestDiskFullReason(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DiskQuotaBytes = 1000
	cfg.MinFreeBytes = 100
	tests := []struct {
		name    string
		d       DiskStats
		wasFull bool
		full    bool
	}{
		{"below high water", DiskStats{UsedBytes: 940, FreeBytes: 1000, TotalBytes: 2000}, false, false},
		{"at high water", DiskStats{UsedBytes: 950, FreeBytes: 1000, TotalBytes: 2000}, false, true},
		{"between the marks stays full", DiskStats{UsedBytes: 920, FreeBytes: 1000, TotalBytes: 2000}, true, true},
		{"below low water resumes", DiskStats{UsedBytes: 899, FreeBytes: 1000, TotalBytes: 2000}, true, false},
		{"little free space", DiskStats{UsedBytes: 10, FreeBytes: 99, TotalBytes: 2000}, false, true},
		{"free space not yet twice the minimum", DiskStats{UsedBytes: 10, FreeBytes: 150, TotalBytes: 2000}, true, true},
		{"free space unknown", DiskStats{UsedBytes: 10}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := diskFullReason(cfg, tt.d, tt.wasFull); (got != "") != tt.full {
				t.Fatalf("diskFullReason = %q, want full=%v", got, tt.full)
			}
		})
	}
}

// TestIdentity covers the cookie rules.
func TestIdentity(t *testing.T) {
	t.Run("wiped directory with metadata", func(t *testing.T) {
		md, err := metadata.Open(t.Context(), "memory:", metadata.Options{})
		noErr(t, err, "metadata")
		defer md.Close()
		dir := t.TempDir()
		cfg := testConfig(t, dir)
		cfg.Metadata = md
		b, err := Open(t.Context(), cfg)
		noErr(t, err, "first start")
		instance := b.InstanceID()
		noErr(t, b.Close(), "close")
		b, err = Open(t.Context(), cfg)
		noErr(t, err, "restart")
		noErr(t, b.Close(), "close")
		noErr(t, os.RemoveAll(dir), "wipe")
		_, err = Open(t.Context(), cfg)
		wantErr(t, err, ErrIdentity, "start on a wiped directory")
		if !strings.Contains(err.Error(), "wiped") || !strings.Contains(err.Error(), instance) {
			t.Fatalf("error does not explain: %v", err)
		}
	})
	t.Run("swapped journal directory", func(t *testing.T) {
		dirA, dirB := t.TempDir(), t.TempDir()
		jA, jB := filepath.Join(t.TempDir(), "j"), filepath.Join(t.TempDir(), "j")
		for _, d := range [][2]string{{dirA, jA}, {dirB, jB}} {
			cfg := testConfig(t, d[0])
			cfg.JournalDir = d[1]
			b, err := Open(t.Context(), cfg)
			noErr(t, err, "first start")
			noErr(t, b.Close(), "close")
		}
		cfg := testConfig(t, dirA)
		cfg.JournalDir = jB
		_, err := Open(t.Context(), cfg)
		wantErr(t, err, ErrIdentity, "start with another instance's journal")
		cfg.JournalDir = filepath.Join(t.TempDir(), "empty")
		_, err = Open(t.Context(), cfg)
		wantErr(t, err, ErrIdentity, "start with an empty journal directory")
		cfg.JournalDir = jA
		b, err := Open(t.Context(), cfg)
		noErr(t, err, "start with the right journal")
		noErr(t, b.Close(), "close")
	})
	t.Run("directory of another bookie", func(t *testing.T) {
		dir := t.TempDir()
		b, err := Open(t.Context(), testConfig(t, dir))
		noErr(t, err, "first start")
		noErr(t, b.Close(), "close")
		cfg := testConfig(t, dir)
		cfg.ID = "bookie-2"
		_, err = Open(t.Context(), cfg)
		wantErr(t, err, ErrIdentity, "start as another id")
	})
	t.Run("half-written first start completes", func(t *testing.T) {
		fs := vfs.NewMem()
		cfg := memConfig(t, fs)
		c := cookie{Version: cookieVersion, BookieID: cfg.ID, InstanceID: newInstanceID(), Dir: "/bookie", JournalDir: "/bookie/journal"}
		noErr(t, writeCookie(fs, "/bookie/journal", c), "journal cookie")
		b, err := Open(t.Context(), cfg)
		noErr(t, err, "start")
		if b.InstanceID() != c.InstanceID {
			t.Fatalf("instance %s, want %s", b.InstanceID(), c.InstanceID)
		}
		noErr(t, b.Close(), "close")
	})
}
