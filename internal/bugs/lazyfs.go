package bugs

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// LazyFS is a vfs.FS that keeps every write in memory until the file is
// fsynced (Sync, SyncData or SyncTo): the kernel's page cache with the
// power cut. Killing the process then loses exactly what was written and
// not synced, as a power loss or an OS crash would, whereas a plain
// SIGKILL keeps it (the kernel writes the page cache back). Reads, through
// any handle of the path, see the unsynced writes, as they would in a page
// cache. Directory operations (create, rename, remove) pass through at
// once and are not lost: the model covers file data only.
//
// Unsynced data of a closed file stays in memory (a closed file is not a
// synced one): it is lost at the next exit too.
type LazyFS struct {
	vfs.FS
	mu      sync.Mutex
	files   map[string]*lazyData // by path: unsynced writes
	pending atomic.Int64         // bytes held unsynced, over all files
	flushed atomic.Int64         // bytes written through by fsyncs
}

// LoseUnsyncedFS wraps fs (see LazyFS).
func LoseUnsyncedFS(fs vfs.FS) *LazyFS {
	return &LazyFS{FS: fs, files: make(map[string]*lazyData)}
}

// Unwrap returns the wrapped file system.
func (l *LazyFS) Unwrap() vfs.FS { return l.FS }

// Pending returns how many written bytes are not synced yet.
func (l *LazyFS) Pending() int64 { return l.pending.Load() }

// Flushed returns how many bytes fsyncs wrote through so far.
func (l *LazyFS) Flushed() int64 { return l.flushed.Load() }

// lazyData is one path's unsynced writes, in the order they were made.
type lazyData struct {
	mu     sync.Mutex
	writes []lazyWrite
	size   int64 // the file's size including the unsynced writes; -1: unknown
}

type lazyWrite struct {
	off  int64
	data []byte
}

// data returns the path's state, creating it; reset drops what it held
// (a file created anew).
func (l *LazyFS) data(name string, reset bool) *lazyData {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.files[name]
	if d == nil || reset {
		if d != nil {
			l.pending.Add(-d.bytes())
		}
		d = &lazyData{size: -1}
		l.files[name] = d
	}
	return d
}

func (d *lazyData) bytes() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, w := range d.writes {
		n += int64(len(w.data))
	}
	return n
}

func (l *LazyFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	return &lazyFile{f: f, fs: l, d: l.data(name, false)}, nil
}

// Create implements vfs.FS.
func (l *LazyFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := l.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	l.data(name, true)
	return l.wrap(name, f, nil)
}

// Open implements vfs.FS.
func (l *LazyFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := l.FS.Open(name, opts...)
	return l.wrap(name, f, err)
}

// OpenReadWrite implements vfs.FS.
func (l *LazyFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := l.FS.OpenReadWrite(name, category, opts...)
	return l.wrap(name, f, err)
}

// ReuseForWrite implements vfs.FS: the old file's unsynced writes move
// with it.
func (l *LazyFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := l.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return nil, err
	}
	l.move(oldname, newname)
	return l.wrap(newname, f, nil)
}

// Rename implements vfs.FS.
func (l *LazyFS) Rename(oldname, newname string) error {
	if err := l.FS.Rename(oldname, newname); err != nil {
		return err
	}
	l.move(oldname, newname)
	return nil
}

// Remove implements vfs.FS.
func (l *LazyFS) Remove(name string) error {
	if err := l.FS.Remove(name); err != nil {
		return err
	}
	l.drop(name)
	return nil
}

// RemoveAll implements vfs.FS.
func (l *LazyFS) RemoveAll(name string) error {
	if err := l.FS.RemoveAll(name); err != nil {
		return err
	}
	l.mu.Lock()
	var gone []string
	for p := range l.files {
		if p == name || (len(p) > len(name) && p[:len(name)] == name && os.IsPathSeparator(p[len(name)])) {
			gone = append(gone, p)
		}
	}
	l.mu.Unlock()
	for _, p := range gone {
		l.drop(p)
	}
	return nil
}

// Stat implements vfs.FS: the size includes unsynced writes.
func (l *LazyFS) Stat(name string) (vfs.FileInfo, error) {
	fi, err := l.FS.Stat(name)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	d := l.files[name]
	l.mu.Unlock()
	if d == nil {
		return fi, nil
	}
	return lazyInfo{FileInfo: fi, size: d.sizeWith(fi.Size())}, nil
}

func (l *LazyFS) move(oldname, newname string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d := l.files[newname]; d != nil {
		l.pending.Add(-d.bytes())
		delete(l.files, newname)
	}
	if d := l.files[oldname]; d != nil {
		l.files[newname] = d
		delete(l.files, oldname)
	}
}

func (l *LazyFS) drop(name string) {
	l.mu.Lock()
	d := l.files[name]
	delete(l.files, name)
	l.mu.Unlock()
	if d != nil {
		l.pending.Add(-d.bytes())
	}
}

// sizeWith returns the file's size given the size on disk.
func (d *lazyData) sizeWith(disk int64) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return max(disk, d.size)
}

type lazyInfo struct {
	vfs.FileInfo
	size int64
}

func (i lazyInfo) Size() int64 { return i.size }

// lazyFile is a handle of a LazyFS path.
type lazyFile struct {
	f   vfs.File
	fs  *LazyFS
	d   *lazyData
	pos int64 // of Read and Write
}

// WriteAt keeps the write in memory.
func (f *lazyFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("bugs: lazy write at %d", off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	d := f.d
	d.mu.Lock()
	if d.size < 0 {
		fi, err := f.f.Stat()
		if err != nil {
			d.mu.Unlock()
			return 0, err
		}
		d.size = fi.Size()
	}
	d.writes = append(d.writes, lazyWrite{off: off, data: append([]byte(nil), p...)})
	d.size = max(d.size, off+int64(len(p)))
	d.mu.Unlock()
	f.fs.pending.Add(int64(len(p)))
	return len(p), nil
}

func (f *lazyFile) Write(p []byte) (int, error) {
	n, err := f.WriteAt(p, f.pos)
	f.pos += int64(n)
	return n, err
}

// ReadAt reads the file on disk with the unsynced writes laid over it.
func (f *lazyFile) ReadAt(p []byte, off int64) (int, error) {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.writes) == 0 {
		return f.f.ReadAt(p, off)
	}
	n, err := f.f.ReadAt(p, off)
	if err != nil && err != io.EOF {
		return n, err
	}
	clear(p[n:])
	end := off + int64(len(p))
	for _, w := range d.writes {
		wEnd := w.off + int64(len(w.data))
		if wEnd <= off || w.off >= end {
			continue
		}
		lo, hi := max(w.off, off), min(wEnd, end)
		copy(p[lo-off:hi-off], w.data[lo-w.off:hi-w.off])
		n = max(n, int(hi-off))
	}
	if size := max(d.size, off+int64(n)); off+int64(len(p)) > size {
		n = int(max(size-off, 0))
		return n, io.EOF
	}
	return len(p), nil
}

func (f *lazyFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.pos)
	f.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// flush writes the unsynced writes through, in order.
func (f *lazyFile) flush() error {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for i, w := range d.writes {
		if _, err := f.f.WriteAt(w.data, w.off); err != nil {
			d.writes = d.writes[i:]
			f.fs.pending.Add(-n)
			f.fs.flushed.Add(n)
			return err
		}
		n += int64(len(w.data))
	}
	d.writes = nil
	f.fs.pending.Add(-n)
	f.fs.flushed.Add(n)
	return nil
}

func (f *lazyFile) Sync() error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *lazyFile) SyncData() error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.f.SyncData()
}

func (f *lazyFile) SyncTo(length int64) (bool, error) {
	if err := f.flush(); err != nil {
		return false, err
	}
	return true, f.f.SyncData()
}

func (f *lazyFile) Stat() (vfs.FileInfo, error) {
	fi, err := f.f.Stat()
	if err != nil {
		return nil, err
	}
	return lazyInfo{FileInfo: fi, size: f.d.sizeWith(fi.Size())}, nil
}

func (f *lazyFile) Preallocate(offset, length int64) error { return f.f.Preallocate(offset, length) }
func (f *lazyFile) Prefetch(offset, length int64) error    { return f.f.Prefetch(offset, length) }

// Fd hides the descriptor: a write through it would bypass the model.
func (f *lazyFile) Fd() uintptr  { return vfs.InvalidFd }
func (f *lazyFile) Close() error { return f.f.Close() }
