package bugs_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/journal"
)

func TestParseFailpoints(t *testing.T) {
	fp, err := bugs.ParseFailpoints("")
	if err != nil || fp.Any() {
		t.Fatalf("empty: %+v %v", fp, err)
	}
	fp, err = bugs.ParseFailpoints(" journal-fsync-eio-after=7 ,")
	if err != nil || fp.JournalFsyncEIOAfter != 7 || !fp.Any() {
		t.Fatalf("after=7: %+v %v", fp, err)
	}
	fp, err = bugs.ParseFailpoints("lose-unsynced,journal-fsync-eio-after=3")
	if err != nil || !fp.LoseUnsynced || fp.JournalFsyncEIOAfter != 3 {
		t.Fatalf("both: %+v %v", fp, err)
	}
	for _, bad := range []string{"lose-unsynced=1", "journal-fsync-eio-after=-1", "journal-fsync-eio-after=x", "journal-fsync-eio", "nope=1"} {
		if _, err := bugs.ParseFailpoints(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestInJournalDir(t *testing.T) {
	for path, want := range map[string]bool{
		"/d/bookie-0/journal/00000001.log": true,
		"/d/bookie-0/journal":              true,
		"journal/x":                        true,
		"/d/bookie-0/ledgers/000001.log":   false,
		"/d/journal.log":                   false,
		"":                                 false,
	} {
		if got := bugs.InJournalDir(path); got != want {
			t.Errorf("InJournalDir(%q) = %v", path, got)
		}
	}
}

// TestFsyncEIOFS: after N fsyncs of journal files every further one fails
// with EIO (all three sync calls), other files are untouched, and the
// fired line is written once.
func TestFsyncEIOFS(t *testing.T) {
	var notify bytes.Buffer
	mem := vfs.NewMem()
	fs := bugs.FsyncEIOFS(mem, 2, nil, &notify)
	for _, d := range []string{"/b/journal", "/b/ledgers"} {
		if err := fs.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	j, err := fs.Create("/b/journal/1.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	other, err := fs.Create("/b/ledgers/1.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := j.Sync(); err != nil {
		t.Fatalf("sync 1: %v", err)
	}
	if err := j.SyncData(); err != nil {
		t.Fatalf("sync 2: %v", err)
	}
	if notify.Len() != 0 {
		t.Fatalf("fired early: %q", notify.String())
	}
	if err := j.SyncData(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync 3: %v, want EIO", err)
	}
	if _, err := j.SyncTo(10); !errors.Is(err, syscall.EIO) {
		t.Fatalf("SyncTo: %v, want EIO", err)
	}
	if err := j.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v, want EIO", err)
	}
	dir, err := fs.OpenDir("/b/journal")
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("dir sync: %v, want EIO", err)
	}
	dir.Close()
	for i := range 5 {
		if err := other.SyncData(); err != nil {
			t.Fatalf("other file sync %d: %v", i, err)
		}
	}
	if got := fs.Failed(); got != 4 {
		t.Fatalf("Failed = %d, want 4", got)
	}
	if n := strings.Count(notify.String(), bugs.FailpointFiredMarker); n != 1 {
		t.Fatalf("fired lines: %d in %q", n, notify.String())
	}
}

// TestFsyncEIOFSFailsTheJournal runs the real journal on the wrapped file
// system: appends succeed until the failpoint fires, then the journal
// fails for good (sticky ErrFailed carrying EIO), so a bookie on it can
// never acknowledge an unsynced entry.
func TestFsyncEIOFSFailsTheJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	fs := bugs.FsyncEIOFS(vfs.Default, 20, nil, nil)
	cfg := journal.DefaultConfig(dir)
	cfg.FS = fs
	j, err := journal.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := j.Replay(journal.Position{}, func(_, _ journal.Position, _ []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ok int
	for i := range 1000 {
		_, err = j.AppendSync(ctx, []byte("record"))
		if err != nil {
			break
		}
		ok = i + 1
	}
	if err == nil {
		t.Fatal("1000 appends succeeded: the failpoint never fired")
	}
	if !errors.Is(err, journal.ErrFailed) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("append error %v: want journal.ErrFailed wrapping EIO", err)
	}
	if ok == 0 {
		t.Fatal("no append succeeded before the failpoint")
	}
	if _, err := j.AppendSync(ctx, []byte("again")); !errors.Is(err, journal.ErrFailed) {
		t.Fatalf("append after failure: %v, want sticky ErrFailed", err)
	}
	if fs.Failed() == 0 {
		t.Fatal("no fsync failed")
	}
}

// TestWrapFS: without DLOG_FAILPOINTS (or without the dlogbugs tag) the
// file system is returned unchanged.
func TestWrapFS(t *testing.T) {
	if got := bugs.WrapFS(vfs.Default); got != vfs.Default {
		t.Fatalf("WrapFS wrapped the default file system without failpoints: %T", got)
	}
}
