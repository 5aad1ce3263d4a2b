package bugs

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Failpoints are faults injected into a process's own I/O rather than
// re-introduced bugs: a correct system must survive them. A dlogbugs
// binary reads them from the DLOG_FAILPOINTS environment variable (a
// comma-separated list of name=value) when WrapFS is called; a normal
// build ignores the variable and WrapFS returns its argument.
//
//	journal-fsync-eio-after=N   every fsync (Sync, SyncData, SyncTo) of a
//	                            file under a directory named "journal"
//	                            fails with EIO once N of them succeeded
//	                            (N >= 0); the syncs of other files work
//	lose-unsynced               every file write stays in memory until the
//	                            file is fsynced (LazyFS): a kill then loses
//	                            what a power loss would
const (
	// FailpointsEnv names the environment variable of the failpoints.
	FailpointsEnv = "DLOG_FAILPOINTS"
	// JournalFsyncEIO is the failpoint of injected journal fsync errors.
	JournalFsyncEIO = "journal-fsync-eio"
	// LoseUnsynced is the failpoint of the power-loss model (LazyFS).
	LoseUnsynced = "lose-unsynced"
)

// Markers of the lines WrapFS writes to its notify writer (the process's
// stderr), so that a fault scenario can prove the failpoint is wired into
// the process and did fire, rather than silently testing nothing.
const (
	FailpointArmedMarker = "dlog failpoint armed:"
	FailpointFiredMarker = "dlog failpoint fired:"
)

// Failpoints is a parsed DLOG_FAILPOINTS value.
type Failpoints struct {
	// JournalFsyncEIOAfter is the number of journal fsyncs that succeed
	// before every further one fails with EIO; negative: off.
	JournalFsyncEIOAfter int64
	// LoseUnsynced keeps writes in memory until fsynced (LazyFS).
	LoseUnsynced bool
}

// Any reports whether some failpoint is set.
func (f Failpoints) Any() bool { return f.JournalFsyncEIOAfter >= 0 || f.LoseUnsynced }

// ParseFailpoints parses a DLOG_FAILPOINTS value; "" sets nothing.
func ParseFailpoints(s string) (Failpoints, error) {
	fp := Failpoints{JournalFsyncEIOAfter: -1}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		name, val, ok := strings.Cut(kv, "=")
		switch {
		case ok && name == JournalFsyncEIO+"-after":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 {
				return fp, fmt.Errorf("bugs: failpoint %q: want a count >= 0", kv)
			}
			fp.JournalFsyncEIOAfter = n
		case kv == LoseUnsynced:
			fp.LoseUnsynced = true
		default:
			return fp, fmt.Errorf("bugs: unknown failpoint %q (known: %s-after=N, %s)", kv, JournalFsyncEIO, LoseUnsynced)
		}
	}
	return fp, nil
}

// FsyncEIOFS wraps fs so that, once after fsyncs of matching files have
// succeeded, every further fsync of a matching file fails with EIO
// (wrapped in an error naming the failpoint). match gets the path the file
// was opened with; nil matches paths with a "journal" directory element.
// notify, if not nil, gets one line with FailpointFiredMarker when the
// first fsync fails. Everything else passes through.
func FsyncEIOFS(fs vfs.FS, after int64, match func(path string) bool, notify io.Writer) *FailFS {
	if match == nil {
		match = InJournalDir
	}
	return &FailFS{FS: fs, after: after, match: match, notify: notify}
}

// InJournalDir reports whether path has a directory element named
// "journal" (the bookie's default journal directory, <dir>/journal).
func InJournalDir(path string) bool {
	elems := strings.FieldsFunc(path, func(r rune) bool { return r == '/' || r == '\\' })
	for _, e := range elems[:max(len(elems)-1, 0)] {
		if e == "journal" {
			return true
		}
	}
	// A directory opened for syncing is itself the journal directory.
	return len(elems) > 0 && elems[len(elems)-1] == "journal"
}

// FailFS is a vfs.FS whose matching files' fsyncs fail after a count.
type FailFS struct {
	vfs.FS
	after  int64
	match  func(string) bool
	notify io.Writer
	syncs  atomic.Int64 // fsyncs of matching files attempted
	failed atomic.Int64 // of which failed
}

// Failed returns how many fsyncs failed so far.
func (f *FailFS) Failed() int64 { return f.failed.Load() }

// Unwrap returns the wrapped file system.
func (f *FailFS) Unwrap() vfs.FS { return f.FS }

// errSync is the injected error; errors.Is(err, syscall.EIO) holds.
type errSync struct{ path string }

func (e errSync) Error() string {
	return fmt.Sprintf("fsync %s: %v (failpoint %s)", e.path, syscall.EIO, JournalFsyncEIO)
}
func (e errSync) Unwrap() error { return syscall.EIO }

// sync counts one fsync of path and reports the injected error, if any.
func (f *FailFS) sync(path string) error {
	if f.syncs.Add(1) <= f.after {
		return nil
	}
	if f.failed.Add(1) == 1 && f.notify != nil {
		fmt.Fprintf(f.notify, "%s %s-after=%d: fsync %s fails with EIO\n", FailpointFiredMarker, JournalFsyncEIO, f.after, path)
	}
	return errSync{path: path}
}

func (f *FailFS) wrap(name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil || !f.match(name) {
		return file, err
	}
	return &failFile{File: file, fs: f, path: name}, nil
}

// Create implements vfs.FS.
func (f *FailFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.Create(name, category)
	return f.wrap(name, file, err)
}

// Open implements vfs.FS.
func (f *FailFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.FS.Open(name, opts...)
	return f.wrap(name, file, err)
}

// OpenReadWrite implements vfs.FS.
func (f *FailFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	file, err := f.FS.OpenReadWrite(name, category, opts...)
	return f.wrap(name, file, err)
}

// OpenDir implements vfs.FS.
func (f *FailFS) OpenDir(name string) (vfs.File, error) {
	file, err := f.FS.OpenDir(name)
	return f.wrap(name, file, err)
}

// ReuseForWrite implements vfs.FS.
func (f *FailFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.ReuseForWrite(oldname, newname, category)
	return f.wrap(newname, file, err)
}

// failFile is a file of a FailFS whose fsyncs are counted.
type failFile struct {
	vfs.File
	fs   *FailFS
	path string
}

func (f *failFile) Sync() error {
	if err := f.fs.sync(f.path); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *failFile) SyncData() error {
	if err := f.fs.sync(f.path); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *failFile) SyncTo(length int64) (bool, error) {
	if err := f.fs.sync(f.path); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}
