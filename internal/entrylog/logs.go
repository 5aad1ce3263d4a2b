package entrylog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Config configures a set of entry logs. Zero fields take DefaultConfig's
// values in Open, except Dir which is required.
type Config struct {
	// FS is the file system; nil means vfs.Default (the real one). Tests pass
	// a crashable or error-injecting vfs.
	FS vfs.FS
	// Dir is the directory holding the entry log files. Required. Created if
	// missing.
	Dir string
	// MaxFileSizeBytes is the size after which the current log is finished
	// (synced and closed) and a new one started. Default 512 MiB. Larger files
	// mean fewer files but coarser compaction (a log is rewritten whole).
	MaxFileSizeBytes int64
	// WriteBufferBytes is how much appended data is buffered in memory before
	// it is written to the file. Default 1 MiB. Data is always written out by
	// Sync; the buffer only batches system calls.
	WriteBufferBytes int
	// MinNextID is the smallest id a new log may take. The next id is always
	// above every log found in Dir; callers that remember ids elsewhere (an
	// index) pass the largest one they know plus one, so that an id is never
	// reused even when its file was removed.
	MinNextID int64
	// SlowSyncThreshold: a sync taking longer is logged at warn level.
	// Default 1 s.
	SlowSyncThreshold time.Duration
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults (Dir still has to be set).
func DefaultConfig() Config {
	return Config{
		FS:                vfs.Default,
		MaxFileSizeBytes:  512 << 20,
		WriteBufferBytes:  1 << 20,
		MinNextID:         1,
		SlowSyncThreshold: time.Second,
	}
}

// Validate reports a configuration error.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("entrylog: config: Dir is empty")
	case c.MaxFileSizeBytes < FileHeaderSize+RecordHeaderSize:
		return fmt.Errorf("entrylog: config: MaxFileSizeBytes %d too small", c.MaxFileSizeBytes)
	case c.WriteBufferBytes < 0:
		return fmt.Errorf("entrylog: config: WriteBufferBytes %d negative", c.WriteBufferBytes)
	case c.MinNextID < 0:
		return fmt.Errorf("entrylog: config: MinNextID %d negative", c.MinNextID)
	}
	return nil
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.FS == nil {
		c.FS = d.FS
	}
	if c.MaxFileSizeBytes == 0 {
		c.MaxFileSizeBytes = d.MaxFileSizeBytes
	}
	if c.WriteBufferBytes == 0 {
		c.WriteBufferBytes = d.WriteBufferBytes
	}
	if c.MinNextID == 0 {
		c.MinNextID = d.MinNextID
	}
	if c.SlowSyncThreshold == 0 {
		c.SlowSyncThreshold = d.SlowSyncThreshold
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Location is where a record lives: its log, the offset of its header and
// the length of its payload.
type Location struct {
	LogID  int64
	Offset int64
	Size   int32
}

// FileName returns the base name of the entry log with the given id.
func FileName(id int64) string { return fmt.Sprintf("%016x.log", uint64(id)) }

// ParseFileName parses an entry log file name; ok is false for other names.
func ParseFileName(name string) (id int64, ok bool) {
	hex, found := strings.CutSuffix(name, ".log")
	if !found || len(hex) != 16 {
		return 0, false
	}
	u, err := strconv.ParseUint(hex, 16, 64)
	if err != nil || int64(u) <= 0 {
		return 0, false
	}
	return int64(u), true
}

// Logs is the set of entry log files in one directory: one current log that
// appends go to, and finished logs that are only read (and eventually
// removed by the owner's compaction).
//
// Appends, Sync and Remove are safe for concurrent use; reads and scans never
// wait for a sync in progress.
type Logs struct {
	cfg Config
	fs  vfs.FS
	log *slog.Logger

	// mu guards the write side. Lock order: mu before filesMu.
	mu struct {
		sync.Mutex
		closed bool
		nextID int64
		cur    *writer // nil until the next Append creates a log
		// failed holds logs abandoned after a write or sync error: their
		// unsynced appends are lost, so a Sync naming them fails.
		failed map[int64]error
	}

	filesMu sync.RWMutex
	files   map[int64]*logFile // every log on disk, current one included
}

// writer appends to the current log. Guarded by Logs.mu.
type writer struct {
	id     int64
	f      vfs.File
	lf     *logFile
	buf    []byte
	size   int64 // bytes appended so far, header and buffered bytes included
	synced int64 // bytes known durable
}

// logFile is the read side of one log; it is shared by readers and kept
// alive by a reference count so that Remove never closes a handle in use.
type logFile struct {
	id   int64
	path string
	size atomic.Int64
	refs atomic.Int32 // one for membership in Logs.files, one per reader

	mu sync.Mutex
	rf vfs.File // read handle, opened on first use
}

func (lf *logFile) handle(fs vfs.FS) (vfs.File, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	if lf.rf == nil {
		f, err := fs.Open(lf.path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%w: %d", ErrLogNotFound, lf.id)
			}
			return nil, fmt.Errorf("entrylog: open log %d: %w", lf.id, err)
		}
		lf.rf = f
	}
	return lf.rf, nil
}

func (lf *logFile) release() {
	if lf.refs.Add(-1) == 0 {
		lf.mu.Lock()
		if lf.rf != nil {
			_ = lf.rf.Close()
			lf.rf = nil
		}
		lf.mu.Unlock()
	}
}

// Open opens (creating if needed) the entry logs in cfg.Dir. Existing logs
// are never appended to again: the first Append creates a new log, so a torn
// tail left by a crash stays behind the records before it.
func Open(cfg Config) (*Logs, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	l := &Logs{cfg: cfg, fs: cfg.FS, log: cfg.Logger, files: make(map[int64]*logFile)}
	l.mu.failed = make(map[int64]error)
	if err := l.fs.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("entrylog: create dir: %w", err)
	}
	if err := syncDir(l.fs, l.fs.PathDir(cfg.Dir)); err != nil {
		return nil, err
	}
	names, err := l.fs.List(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("entrylog: list dir: %w", err)
	}
	next := cfg.MinNextID
	for _, name := range names {
		id, ok := ParseFileName(name)
		if !ok {
			continue
		}
		path := l.fs.PathJoin(cfg.Dir, name)
		st, err := l.fs.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("entrylog: stat log %d: %w", id, err)
		}
		lf := &logFile{id: id, path: path}
		lf.size.Store(st.Size())
		lf.refs.Store(1)
		l.files[id] = lf
		next = max(next, id+1)
	}
	l.mu.nextID = next
	return l, nil
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("entrylog: open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("entrylog: sync dir %s: %w", dir, err)
	}
	return nil
}

// Append adds a record to the current log and returns its location. The
// record is readable through Read only after a Sync naming its log has
// succeeded (until then it may sit in a buffer). When the current log would
// pass MaxFileSizeBytes it is synced and closed first and a new log started.
//
// On a write error the current log is abandoned (a later Sync naming it
// fails) and the next Append starts a new log.
func (l *Logs) Append(ledgerID, entryID int64, payload []byte) (Location, error) {
	if len(payload) > MaxPayloadSize {
		return Location{}, ErrPayloadTooLarge
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return Location{}, ErrClosed
	}
	rs := RecordSize(len(payload))
	if w := l.mu.cur; w != nil && w.size > FileHeaderSize && w.size+rs > l.cfg.MaxFileSizeBytes {
		l.rollLocked()
	}
	if l.mu.cur == nil {
		if err := l.createLocked(); err != nil {
			return Location{}, err
		}
	}
	w := l.mu.cur
	loc := Location{LogID: w.id, Offset: w.size, Size: int32(len(payload))}
	w.buf = AppendRecord(w.buf, ledgerID, entryID, payload)
	w.size += rs
	if len(w.buf) >= l.cfg.WriteBufferBytes {
		if err := w.writeBuf(); err != nil {
			l.abandonLocked(w, err)
			return Location{}, err
		}
	}
	w.lf.size.Store(w.size)
	return loc, nil
}

func (w *writer) writeBuf() error {
	if len(w.buf) == 0 {
		return nil
	}
	// vfs.File.Write may scribble on its argument (pebble's MemFS does under
	// -race); w.buf is ours and reset right after, so that is harmless.
	if _, err := w.f.Write(w.buf); err != nil {
		return fmt.Errorf("entrylog: write log %d: %w", w.id, err)
	}
	w.buf = w.buf[:0]
	return nil
}

func (l *Logs) syncWriter(w *writer) error {
	if err := w.writeBuf(); err != nil {
		return err
	}
	if w.synced == w.size {
		return nil
	}
	start := time.Now()
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("entrylog: sync log %d: %w", w.id, err)
	}
	if took := time.Since(start); took > l.cfg.SlowSyncThreshold {
		l.log.Warn("slow entry log sync", "log-id", w.id, "bytes", w.size-w.synced, "took", took)
	}
	w.synced = w.size
	return nil
}

// rollLocked finishes the current log: sync and close. A failure is
// remembered so that Sync naming the log reports it.
func (l *Logs) rollLocked() {
	w := l.mu.cur
	if err := l.syncWriter(w); err != nil {
		l.abandonLocked(w, err)
		return
	}
	l.mu.cur = nil
	if err := w.f.Close(); err != nil {
		l.log.Warn("close entry log", "log-id", w.id, "err", err)
	}
}

func (l *Logs) abandonLocked(w *writer, err error) {
	l.log.Error("entry log abandoned", "log-id", w.id, "err", err)
	l.mu.failed[w.id] = err
	if l.mu.cur == w {
		l.mu.cur = nil
	}
	_ = w.f.Close()
}

func (l *Logs) createLocked() error {
	id := l.mu.nextID
	path := l.fs.PathJoin(l.cfg.Dir, FileName(id))
	f, err := l.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("entrylog: create log %d: %w", id, err)
	}
	// The id is used up even if what follows fails.
	l.mu.nextID++
	// The directory entry must be durable before any index can point into
	// the file.
	if err := syncDir(l.fs, l.cfg.Dir); err != nil {
		_ = f.Close()
		_ = l.fs.Remove(path)
		return err
	}
	lf := &logFile{id: id, path: path}
	lf.refs.Store(1)
	lf.size.Store(FileHeaderSize)
	w := &writer{id: id, f: f, lf: lf, size: FileHeaderSize}
	w.buf = appendFileHeader(make([]byte, 0, l.cfg.WriteBufferBytes+RecordHeaderSize))
	l.filesMu.Lock()
	l.files[id] = lf
	l.filesMu.Unlock()
	l.mu.cur = w
	return nil
}

// Sync makes every record appended so far to the named logs durable. It
// fails if any of them was abandoned after an error (its unsynced records
// are lost). Ids of finished, healthy logs are accepted and cost nothing.
// After a failed sync the current log is abandoned; the next Append starts
// a new one (fsync is never retried on the same file).
func (l *Logs) Sync(ids ...int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	for _, id := range ids {
		if err, ok := l.mu.failed[id]; ok {
			return fmt.Errorf("entrylog: log %d was abandoned: %w", id, err)
		}
	}
	w := l.mu.cur
	if w == nil || !slices.Contains(ids, w.id) {
		return nil
	}
	if err := l.syncWriter(w); err != nil {
		l.abandonLocked(w, err)
		return err
	}
	return nil
}

// CurrentID returns the id of the log appends go to now, or the id the next
// log will take when there is none. Every log with a smaller id is finished:
// nothing will be appended to it again.
func (l *Logs) CurrentID() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.cur != nil {
		return l.mu.cur.id
	}
	return l.mu.nextID
}

// Roll finishes the current log (syncing it) so that the next Append starts
// a new one. Compaction only rewrites finished logs; tests use Roll to make
// one.
func (l *Logs) Roll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	if w := l.mu.cur; w != nil {
		l.rollLocked()
		if err, ok := l.mu.failed[w.id]; ok {
			return err
		}
	}
	return nil
}

// IDs returns the ids of all logs, sorted.
func (l *Logs) IDs() []int64 {
	l.filesMu.RLock()
	defer l.filesMu.RUnlock()
	ids := make([]int64, 0, len(l.files))
	for id := range l.files {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Size returns the size of a log in bytes (appended bytes for the current
// log, buffered ones included).
func (l *Logs) Size(id int64) (int64, error) {
	l.filesMu.RLock()
	defer l.filesMu.RUnlock()
	lf, ok := l.files[id]
	if !ok {
		return 0, fmt.Errorf("%w: %d", ErrLogNotFound, id)
	}
	return lf.size.Load(), nil
}

// TotalBytes returns the sum of all logs' sizes.
func (l *Logs) TotalBytes() int64 {
	l.filesMu.RLock()
	defer l.filesMu.RUnlock()
	var n int64
	for _, lf := range l.files {
		n += lf.size.Load()
	}
	return n
}

func (l *Logs) acquire(id int64) *logFile {
	l.filesMu.RLock()
	defer l.filesMu.RUnlock()
	lf, ok := l.files[id]
	if !ok {
		return nil
	}
	lf.refs.Add(1)
	return lf
}

// Read returns the payload of the record at loc, after checking its
// checksum and that its header names (ledgerID, entryID) with loc.Size bytes
// of payload. The returned slice is newly allocated and owned by the caller.
//
// Errors: ErrLogNotFound (wrapped) if the log does not exist (look the index
// up again: compaction may have moved the record), a *CorruptError on any
// mismatch or a file that ends inside the record, or a wrapped I/O error.
func (l *Logs) Read(loc Location, ledgerID, entryID int64) ([]byte, error) {
	if loc.Size < 0 || loc.Size > MaxPayloadSize || loc.Offset < FileHeaderSize {
		return nil, corruptAt(loc.LogID, loc.Offset, "bad location (size %d)", loc.Size)
	}
	lf := l.acquire(loc.LogID)
	if lf == nil {
		return nil, fmt.Errorf("%w: %d", ErrLogNotFound, loc.LogID)
	}
	defer lf.release()
	f, err := lf.handle(l.fs)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, RecordHeaderSize+int(loc.Size))
	n, err := f.ReadAt(buf, loc.Offset)
	if n < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			return nil, corruptAt(loc.LogID, loc.Offset, "file ends inside the record (%d of %d bytes)", n, len(buf))
		}
		return nil, fmt.Errorf("entrylog: read log %d at %d: %w", loc.LogID, loc.Offset, err)
	}
	rec, _, err := DecodeRecord(buf)
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return nil, corruptAt(loc.LogID, loc.Offset, "%s", ce.Reason)
		}
		// The length field is larger than the index says.
		return nil, corruptAt(loc.LogID, loc.Offset, "record length does not match index size %d", loc.Size)
	}
	if len(rec.Payload) != int(loc.Size) {
		return nil, corruptAt(loc.LogID, loc.Offset, "record length %d does not match index size %d", len(rec.Payload), loc.Size)
	}
	if rec.LedgerID != ledgerID || rec.EntryID != entryID {
		return nil, corruptAt(loc.LogID, loc.Offset, "record is ledger %d entry %d, want ledger %d entry %d",
			rec.LedgerID, rec.EntryID, ledgerID, entryID)
	}
	return rec.Payload, nil
}

// Scanner returns a scanner over the records of log id as it is on disk now.
// The log stays readable until the scanner is closed, even if it is removed
// meanwhile. Scanning the current log only sees what was written out.
func (l *Logs) Scanner(id int64) (*Scanner, error) {
	lf := l.acquire(id)
	if lf == nil {
		return nil, fmt.Errorf("%w: %d", ErrLogNotFound, id)
	}
	f, err := lf.handle(l.fs)
	if err != nil {
		lf.release()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		lf.release()
		return nil, fmt.Errorf("entrylog: stat log %d: %w", id, err)
	}
	s := NewScanner(f, st.Size())
	s.logID = id
	s.release = lf.release
	return s, nil
}

// Remove deletes a finished log. Reads that already hold it finish
// normally; later ones get ErrLogNotFound. The directory is not synced: a
// removed log may come back after a crash, which is harmless to a caller
// whose index no longer points into it.
func (l *Logs) Remove(id int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return ErrClosed
	}
	if l.mu.cur != nil && l.mu.cur.id == id {
		return fmt.Errorf("entrylog: cannot remove current log %d", id)
	}
	l.filesMu.Lock()
	lf, ok := l.files[id]
	delete(l.files, id)
	l.filesMu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %d", ErrLogNotFound, id)
	}
	delete(l.mu.failed, id)
	lf.release()
	if err := l.fs.Remove(lf.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("entrylog: remove log %d: %w", id, err)
	}
	return nil
}

// Close writes out buffered data of the current log (without syncing: the
// owner's index never points at unsynced records) and closes every file.
// Reads and scanners still open keep their handle until they finish.
func (l *Logs) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.closed {
		return nil
	}
	l.mu.closed = true
	var err error
	if w := l.mu.cur; w != nil {
		err = w.writeBuf()
		err = errors.Join(err, w.f.Close())
		l.mu.cur = nil
	}
	l.filesMu.Lock()
	files := l.files
	l.files = make(map[int64]*logFile)
	l.filesMu.Unlock()
	for _, lf := range files {
		lf.release()
	}
	return err
}
