//go:build dlogbugs

package bookie

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

func withBug(t *testing.T, name string) {
	t.Helper()
	noErr(t, bugs.Set(name, true), "switch on %s", name)
	t.Cleanup(func() { _ = bugs.Set(name, false) })
}

// TestBugAckBeforeFsync: with the switch on, a crash that keeps only synced
// data loses acknowledged adds (for some seed among the first few); the
// same scenario without it never does (TestCrashLosesNothingAcknowledged).
func TestBugAckBeforeFsync(t *testing.T) { requireCrashLoses(t, bugs.AckBeforeFsync) }

// requireCrashLoses switches bug on and fails unless one of 20 seeded
// crashes loses an acknowledged add.
func requireCrashLoses(t *testing.T, bug string) {
	withBug(t, bug)
	for seed := range uint64(20) {
		lost := ackedLostInCrash(t, seed)
		t.Logf("seed %d: %d acknowledged adds lost", seed, lost)
		if lost > 0 {
			return
		}
	}
	t.Fatalf("%s lost no acknowledged add in 20 crashes", bug)
}

// TestBugJournalSkipFsync: a journal that never fsyncs loses
// acknowledged adds in a crash that keeps only synced data.
func TestBugJournalSkipFsync(t *testing.T) { requireCrashLoses(t, bugs.JournalSkipFsync) }

// ackedLostInCrash runs adders on a crashable FS, crashes (synced data
// only) once some adds are acknowledged, and counts the acknowledged adds a
// bookie on the clone cannot read.
func ackedLostInCrash(t *testing.T, seed uint64) int {
	rng := rand.New(rand.NewPCG(seed, 3))
	fs := vfs.NewCrashableMem()
	cfg := crashConfig("/bookie", testLogger(t))
	cfg.FS = fs
	b, err := Open(t.Context(), cfg)
	noErr(t, err, "open")
	c := newClient(t)
	var rec ackRecorder
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for a := range int64(4) {
		wg.Go(func() { crashAdder(c, b.ListenAddr(), seed, a, stop, &rec) })
	}
	target := 1 + rng.IntN(200)
	waitUntil(t, 60*time.Second, "acknowledged adds", func() bool { return rec.len() >= target })
	adds, _ := rec.snapshot()
	clone := fs.CrashClone(vfs.CrashCloneCfg{})
	close(stop)
	wg.Wait()
	_ = b.Close()
	cfg.FS = clone
	b2, err := Open(t.Context(), cfg)
	noErr(t, err, "reopen")
	defer b2.Close()
	lost := 0
	for _, a := range adds {
		_, err := c.Read(ctxTimeout(t, 30*time.Second), b2.ListenAddr(), &bookiepb.ReadRequest{LedgerId: a.l, EntryId: a.e})
		switch {
		case err == nil:
		case bookieclient.IsExplicitNegative(err):
			lost++
		default:
			t.Fatalf("read %d:%d: %v", a.l, a.e, err)
		}
	}
	return lost
}

// TestBugIOErrorAsNoEntry: with the switch on, a bit-flipped entry reads as
// NO_ENTRY (an explicit negative recovery would count as absent) instead of
// CORRUPT.
func TestBugIOErrorAsNoEntry(t *testing.T) {
	withBug(t, bugs.IOErrorAsNoEntry)
	fs := vfs.NewMem()
	b := start(t, memConfig(t, fs))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	big := make([]byte, 8<<10)
	noErr(t, c.Add(ctx, b.ListenAddr(), &bookiepb.AddRequest{Entry: bookiepb.NewEntry(2, 0, -1, big), MasterKey: testKey}), "add")
	noErr(t, b.Checkpoint(), "checkpoint")
	names, err := fs.List("/bookie/ledgers/logs")
	noErr(t, err, "list logs")
	for _, n := range names {
		data, err := fs.UnsafeGetFileDataBuffer("/bookie/ledgers/logs/" + n)
		noErr(t, err, "log data")
		if len(data) > len(big) {
			data[len(data)-len(big)/2] ^= 0x04
		}
	}
	_, err = c.Read(ctx, b.ListenAddr(), &bookiepb.ReadRequest{LedgerId: 2, EntryId: 0})
	if !errors.Is(err, bookieclient.ErrNoEntry) {
		t.Fatalf("read of a corrupt entry with the bug on: %v, want NO_ENTRY", err)
	}
}
