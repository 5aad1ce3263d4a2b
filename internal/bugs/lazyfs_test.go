package bugs_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dlog-io/dlog/internal/bugs"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestLazyFSLosesOnlyUnsynced: on a real directory, writes are visible to
// every handle before they are synced but reach the disk only with a
// sync; a fresh LazyFS over the directory (the process after a power
// loss) sees exactly the synced data. Renames carry unsynced data along.
func TestLazyFSLosesOnlyUnsynced(t *testing.T) {
	dir := t.TempDir()
	fs := bugs.LoseUnsyncedFS(vfs.Default)
	path := filepath.Join(dir, "f")
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	must(t, err)
	_, err = f.Write([]byte("synced-"))
	must(t, err)
	must(t, f.SyncData())
	_, err = f.Write([]byte("lost"))
	must(t, err)
	_, err = f.WriteAt([]byte("L"), 7) // over the unsynced write
	must(t, err)

	// Every handle and Stat see the page cache.
	r, err := fs.Open(path)
	must(t, err)
	got, err := io.ReadAll(r)
	must(t, err)
	if string(got) != "synced-Lost" {
		t.Fatalf("read through another handle: %q", got)
	}
	r.Close()
	if fi, err := fs.Stat(path); err != nil || fi.Size() != int64(len("synced-Lost")) {
		t.Fatalf("stat: %v %v", fi, err)
	}
	buf := make([]byte, 8)
	if n, err := f.ReadAt(buf, 5); n != 6 || err != io.EOF || string(buf[:n]) != "d-Lost" {
		t.Fatalf("read at 5: %d %v %q", n, err, buf[:n])
	}
	if fs.Pending() != 5 {
		t.Fatalf("pending %d, want 5", fs.Pending())
	}
	// The disk has only the synced part.
	if b, _ := os.ReadFile(path); string(b) != "synced-" {
		t.Fatalf("on disk before the second sync: %q", b)
	}
	// A rename keeps the unsynced writes with the file.
	moved := filepath.Join(dir, "g")
	must(t, fs.Rename(path, moved))
	r, err = fs.Open(moved)
	must(t, err)
	got, _ = io.ReadAll(r)
	r.Close()
	if string(got) != "synced-Lost" {
		t.Fatalf("after rename: %q", got)
	}
	must(t, f.Close())

	// Power loss: the process and its memory are gone.
	after := bugs.LoseUnsyncedFS(vfs.Default)
	r, err = after.Open(moved)
	must(t, err)
	got, _ = io.ReadAll(r)
	r.Close()
	if string(got) != "synced-" {
		t.Fatalf("after the power loss: %q, want only the synced bytes", got)
	}

	// A sync writes everything through, in order.
	f, err = fs.OpenReadWrite(moved, vfs.WriteCategoryUnspecified)
	must(t, err)
	_, err = f.WriteAt([]byte("!"), 11)
	must(t, err)
	if _, err := f.SyncTo(12); err != nil {
		t.Fatal(err)
	}
	must(t, f.Close())
	if b, _ := os.ReadFile(moved); string(b) != "synced-Lost!" {
		t.Fatalf("on disk after sync: %q", b)
	}
	if fs.Pending() != 0 || fs.Flushed() != 13 {
		t.Fatalf("pending %d flushed %d", fs.Pending(), fs.Flushed())
	}
	if fd := f.Fd(); fd != vfs.InvalidFd {
		t.Fatalf("fd %d exposed: writes through it would bypass the model", fd)
	}
}

// TestLazyFSCreateRemove: Create starts a file afresh and Remove forgets
// its unsynced data, so a later file at the path does not inherit it.
func TestLazyFSCreateRemove(t *testing.T) {
	dir := t.TempDir()
	fs := bugs.LoseUnsyncedFS(vfs.Default)
	path := filepath.Join(dir, "f")
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	must(t, err)
	_, err = f.Write(bytes.Repeat([]byte{'x'}, 100))
	must(t, err)
	must(t, f.Close())
	must(t, fs.Remove(path))
	if fs.Pending() != 0 {
		t.Fatalf("pending %d after remove", fs.Pending())
	}
	f, err = fs.Create(path, vfs.WriteCategoryUnspecified)
	must(t, err)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || fi.Size() != 0 {
		t.Fatalf("new file: %v %v", fi, err)
	}
	must(t, fs.MkdirAll(filepath.Join(dir, "sub"), 0o755))
	g, err := fs.Create(filepath.Join(dir, "sub", "h"), vfs.WriteCategoryUnspecified)
	must(t, err)
	_, err = g.Write([]byte("abc"))
	must(t, err)
	must(t, g.Close())
	must(t, fs.RemoveAll(filepath.Join(dir, "sub")))
	if fs.Pending() != 0 {
		t.Fatalf("pending %d after remove all", fs.Pending())
	}
}
