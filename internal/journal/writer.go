package journal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dlog-io/dlog/internal/bugs"
)

// batch is a run of framed records queued for one group commit. Appenders
// frame their records straight into buf, so the writer hands the disk one
// contiguous buffer per group.
type batch struct {
	buf  []byte
	recs []queued
}

type queued struct {
	end  int // offset in buf just past this record
	done func(end Position, err error)
}

// fail reports err to the callbacks of recs[from:], in order.
func (b *batch) fail(from int, err error) {
	for _, r := range b.recs[from:] {
		r.done(Position{}, err)
	}
}

// maxRecycledBatchBytes: a batch buffer grown beyond this (by a burst of
// large records) is dropped rather than kept for reuse.
const maxRecycledBatchBytes = 4 << 20

// writer is the state of the file being written. Replay sets it up; after
// that only the writer goroutine touches it (Close reads it once the
// goroutine has exited).
type writer struct {
	file          vfs.File
	id            uint64 // id of file; its records are masked with uint32(id)
	prev          uint64 // id of the file before it, for its header
	prevEnd       int64  // where prev's records end, for the header; 0 if unknown
	off           int64  // next write offset in file
	capacity      int64  // file size: no write goes past it
	headerPending bool   // off == 0 and the header is not written yet
	maxID         uint64 // largest file id ever used in the directory

	// reuse, before the first file after Replay exists (file is nil), is
	// an empty file to rename into it; "" if none.
	reuse string

	spareRequested bool     // a request to the preparer is outstanding
	spareGen       uint64   // number of the last request to the preparer
	ready          vfs.File // a prepared spare taken from the preparer, not yet used
	recent         [2]int   // record counts of the last two groups
	free           *batch   // a spent batch kept for reuse
	scratch        []byte   // assembles the writes that need a copy (file header, split group)
	timer          *time.Timer
}

// Append queues rec for the next group commit. If it returns nil, done will
// be called exactly once, with the position just after the record and a nil
// error once an fdatasync covering the record has returned, or with an
// error (ErrClosed, or one matching ErrFailed) otherwise. Callbacks run in
// append order on the journal's writer goroutine (except for records that
// Close fails with ErrClosed: those run on the goroutine calling Close).
// They must be quick: the next group waits for them. They may call Append
// but must not call Close or AppendSync.
//
// If Append returns an error (ErrEmptyRecord, ErrRecordTooLarge,
// ErrOverloaded, ErrNotReplayed, ErrClosed or the sticky failure), the
// record was not queued and done is never called. The journal does not
// keep rec: it is copied before Append returns.
func (j *Journal) Append(rec []byte, done func(end Position, err error)) error {
	_, err := j.enqueue(rec, done)
	return err
}

// AppendSync appends rec and waits until it is durable. It waits for queue
// room rather than failing with ErrOverloaded. If ctx ends before the record
// was queued it returns ctx's error and the record is not written; if ctx
// ends after, it returns an error wrapping ctx's error and the outcome is
// unknown (the record may still become durable and be replayed).
func (j *Journal) AppendSync(ctx context.Context, rec []byte) (Position, error) {
	type result struct {
		end Position
		err error
	}
	resc := make(chan result, 1)
	done := func(end Position, err error) { resc <- result{end, err} }
	for {
		if err := ctx.Err(); err != nil {
			return Position{}, context.Cause(ctx)
		}
		spacec, err := j.enqueue(rec, done)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrOverloaded) {
			return Position{}, err
		}
		select {
		case <-spacec:
		case <-ctx.Done():
			return Position{}, context.Cause(ctx)
		}
	}
	select {
	case r := <-resc:
		return r.end, r.err
	case <-ctx.Done():
		return Position{}, fmt.Errorf("journal: append outcome unknown: %w", context.Cause(ctx))
	}
}

// enqueue frames rec into the current batch. On ErrOverloaded it returns a
// channel that is closed when room may have freed.
func (j *Journal) enqueue(rec []byte, done func(Position, error)) (<-chan struct{}, error) {
	switch {
	case len(rec) == 0:
		return nil, ErrEmptyRecord
	case len(rec) > j.cfg.MaxRecordBytes:
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, len(rec), j.cfg.MaxRecordBytes)
	case done == nil:
		return nil, errors.New("journal: append with nil callback")
	}
	// Checksum outside the lock: appenders do it in parallel.
	var h [recordHeaderSize]byte
	putRecordHeader(h[:], rec)
	framed := recordHeaderSize + len(rec)

	j.mu.Lock()
	switch {
	case j.mu.closed:
		j.mu.Unlock()
		return nil, ErrClosed
	case j.mu.failed != nil:
		err := j.mu.failed
		j.mu.Unlock()
		return nil, err
	case !j.mu.replayed:
		j.mu.Unlock()
		return nil, ErrNotReplayed
	case j.mu.queuedBytes > 0 && j.mu.queuedBytes+framed > j.cfg.MaxQueueBytes:
		if j.mu.spacec == nil {
			j.mu.spacec = make(chan struct{})
		}
		c := j.mu.spacec
		// A full queue is a full group: do not let the writer keep waiting.
		signal := j.mu.wakeAt > 0
		j.mu.wakeAt = 0
		j.mu.Unlock()
		if signal {
			j.wake()
		}
		return c, ErrOverloaded
	}
	b := j.mu.cur
	b.buf = append(append(b.buf, h[:]...), rec...)
	b.recs = append(b.recs, queued{end: len(b.buf), done: done})
	j.mu.queuedBytes += framed
	signal := false
	if w := j.mu.wakeAt; w > 0 && (len(b.recs) >= w || j.mu.queuedBytes >= j.groupFullBytes) {
		j.mu.wakeAt = 0
		signal = true
	}
	j.mu.Unlock()
	if signal {
		j.wake()
	}
	return nil, nil
}

// wake signals the writer; signals coalesce.
func (j *Journal) wake() {
	select {
	case j.wakec <- struct{}{}:
	default:
	}
}

// runWriter is the writer goroutine: it takes queued records a group at a
// time, writes and fdatasyncs them, then runs their callbacks. It exits
// when stopc is closed (checked between groups: a group it has taken is
// always finished).
func (j *Journal) runWriter() {
	for {
		b, failed := j.nextGroup()
		if b == nil {
			return
		}
		if failed != nil {
			b.fail(0, failed)
		} else {
			j.commit(b)
		}
		j.recycle(b)
	}
}

// nextGroup blocks until records are queued and returns them as the next
// group, or returns nil once the journal is stopping. When recent groups
// showed concurrency it first waits, up to MaxGroupWait, for about as many
// records as they held (or MaxGroupBytes); a lone appender never waits.
//
// While it blocks, mu.wakeAt tells appenders how many queued records
// should wake it, so that it is woken once per group rather than once per
// record; while it writes, nobody signals it.
func (j *Journal) nextGroup() (*batch, error) {
	waiting, timedOut := false, false
	var waitStart time.Time
	defer func() {
		if waiting {
			j.w.timer.Stop()
			j.stats.groupWaitNanos.Add(int64(time.Since(waitStart)))
		}
	}()
	j.mu.Lock()
	for {
		select {
		case <-j.stopc:
			j.mu.wakeAt = 0
			j.mu.Unlock()
			return nil, nil
		default:
		}
		wakeAt := 1
		if n := len(j.mu.cur.recs); n > 0 {
			// Queued records imply Replay has set up j.w (ordered by mu).
			target := max(j.w.recent[0], j.w.recent[1])
			if timedOut || j.mu.failed != nil || j.cfg.MaxGroupWait == 0 || target <= 1 ||
				n >= target || j.mu.queuedBytes >= j.groupFullBytes {
				return j.takeLocked()
			}
			if !waiting {
				waiting = true
				j.w.timer.Reset(j.cfg.MaxGroupWait)
				j.stats.groupWaits.Add(1)
				waitStart = time.Now()
			}
			wakeAt = target
		}
		j.mu.wakeAt = wakeAt
		j.mu.Unlock()
		var timerc <-chan time.Time
		if waiting {
			timerc = j.w.timer.C
		}
		select {
		case <-j.stopc:
		case <-j.wakec: // may be stale: the loop re-checks
		case <-timerc:
			timedOut = true
			j.stats.groupWaitTimeouts.Add(1)
		}
		j.mu.Lock()
		j.mu.wakeAt = 0
	}
}

// takeLocked swaps the queued batch for an empty one, unlocks mu and
// returns the batch with the sticky failure, if any.
func (j *Journal) takeLocked() (*batch, error) {
	b := j.mu.cur
	next := j.w.free
	j.w.free = nil
	if next == nil {
		next = &batch{}
	}
	j.mu.cur = next
	j.mu.queuedBytes = 0
	if j.mu.spacec != nil {
		close(j.mu.spacec)
		j.mu.spacec = nil
	}
	failed := j.mu.failed
	j.mu.Unlock()
	return b, failed
}

func (j *Journal) recycle(b *batch) {
	if cap(b.buf) > maxRecycledBatchBytes {
		return
	}
	b.buf = b.buf[:0]
	clear(b.recs)
	b.recs = b.recs[:0]
	j.w.free = b
}

// commit writes b, rolling to new files as needed, fdatasyncs, and runs the
// callbacks, then Config.OnGroupDone. A group that does not fit in the
// current file is split at a record boundary; each part gets its own write
// and fdatasync, and its callbacks run as soon as its sync returned.
func (j *Journal) commit(b *batch) {
	j.stats.groups.Add(1)
	j.met.groupRecords.Observe(float64(len(b.recs)))
	j.w.recent[1], j.w.recent[0] = j.w.recent[0], len(b.recs)
	start, bufStart := 0, 0
	for start < len(b.recs) {
		room := j.w.capacity - j.w.off
		if j.w.headerPending {
			room -= fileHeaderSize
		}
		k := start
		for k < len(b.recs) && int64(b.recs[k].end-bufStart) <= room {
			k++
		}
		if k == start {
			if err := j.roll(); err != nil {
				j.failGroup(b, start, "roll", err)
				return
			}
			continue
		}
		used := b.recs[k-1].end - bufStart
		// Appenders framed the records unmasked: they could not know
		// which file each would land in.
		maskRecords(b.buf[bufStart:bufStart+used], fileSalt(fileFormatV2, j.w.id))
		data, at := j.segment(b, bufStart, used)
		base, op, err := j.writeAndSync(data, at, used)
		if err != nil {
			j.failGroup(b, start, op, err)
			return
		}
		// Count before the callbacks, so that Stats covers every ack.
		j.stats.records.Add(uint64(k - start))
		j.stats.bytes.Add(uint64(used))
		j.met.records.Add(float64(k - start))
		j.met.bytes.Add(float64(used))
		for i := start; i < k; i++ {
			b.recs[i].done(Position{File: j.w.id, Offset: base + int64(b.recs[i].end-bufStart)}, nil)
		}
		if j.cfg.OnGroupDone != nil {
			j.cfg.OnGroupDone(Position{File: j.w.id, Offset: j.w.off})
		}
		bufStart, start = b.recs[k-1].end, k
	}
}

// padBytes is how many zeros follow records that end at file offset end:
// at least endMarkerBytes (a zero length field where the records end, so
// that a recycled file's earlier life never reads as their continuation),
// then up to the next page boundary, so that the next write, which starts
// in this page, never has to read a page first (files are zero-filled with
// O_DIRECT, and recycled files' pages may have left the cache). Never past
// the end of the file.
func (j *Journal) padBytes(end int64) int64 {
	pad := (pageBytes - end%pageBytes) % pageBytes
	if pad < endMarkerBytes {
		pad += pageBytes
	}
	return min(pad, j.w.capacity-end)
}

// segment returns one write: the file header if it is pending, the used
// bytes of b.buf from bufStart (framed records), and padBytes of zeros;
// and the file offset to write it at. The zeros are appended to b.buf in
// place when the records are its tail and no header is pending (the common
// case); otherwise (a file's first write, or the first part of a group
// split by a roll) the write is assembled in the scratch buffer.
func (j *Journal) segment(b *batch, bufStart, used int) (data []byte, at int64) {
	recs := b.buf[bufStart : bufStart+used]
	if !j.w.headerPending && bufStart+used == len(b.buf) {
		pad := j.padBytes(j.w.off + int64(used))
		b.buf = append(b.buf, make([]byte, pad)...)
		return b.buf[bufStart:], j.w.off
	}
	at, end := j.w.off, j.w.off+int64(used)
	buf := j.w.scratch[:0]
	if j.w.headerPending {
		at, end = 0, fileHeaderSize+int64(used)
		buf = append(buf, fileHeader{id: j.w.id, prev: j.w.prev, prevEnd: j.w.prevEnd}.encode()...)
	}
	buf = append(buf, recs...)
	buf = append(buf, make([]byte, j.padBytes(end))...)
	if cap(buf) <= maxRecycledBatchBytes {
		j.w.scratch = buf
	} else {
		j.w.scratch = nil
	}
	return buf, at
}

// writeAndSync writes data at file offset at and fdatasyncs. data is the
// pending file header (when at is 0 and one is pending), then used bytes of
// records, then zero padding that the next write overwrites. It returns
// the offset the records were written at, or the failing operation and its
// error.
func (j *Journal) writeAndSync(data []byte, at int64, used int) (base int64, op string, err error) {
	f := j.w.file
	base = at
	if j.w.headerPending {
		base = fileHeaderSize
	}
	if _, err := f.WriteAt(data, at); err != nil {
		return 0, "write", err
	}
	start := time.Now()
	if !bugs.On(bugs.JournalSkipFsync) {
		err = f.SyncData()
	}
	took := time.Since(start)
	j.stats.syncs.Add(1)
	j.stats.syncNanos.Add(int64(took))
	for {
		m := j.stats.syncMaxNanos.Load()
		if int64(took) <= m || j.stats.syncMaxNanos.CompareAndSwap(m, int64(took)) {
			break
		}
	}
	j.met.syncSeconds.Observe(took.Seconds())
	if took > j.cfg.SlowSyncThreshold {
		j.log.Warn("journal: slow fdatasync", "file-id", j.w.id, "bytes", len(data), "took", took)
	}
	if err != nil {
		return 0, "sync", err
	}
	j.w.headerPending = false
	j.w.off = base + int64(used)
	j.reportProgress()
	return base, "", nil
}

// failGroup makes the failure sticky and fails b.recs[from:] and every
// queued record. A roll interrupted by Close is not a failure: those
// records get ErrClosed.
func (j *Journal) failGroup(b *batch, from int, op string, err error) {
	if errors.Is(err, errStopped) {
		b.fail(from, ErrClosed)
		return
	}
	ferr := &FailureError{Op: op, FileID: j.w.id, Err: err}
	j.mu.Lock()
	if j.mu.failed == nil {
		j.mu.failed = ferr
	}
	failed := j.mu.failed
	pending := j.mu.cur
	j.mu.cur = &batch{}
	j.mu.queuedBytes = 0
	if j.mu.spacec != nil {
		close(j.mu.spacec)
		j.mu.spacec = nil
	}
	j.mu.Unlock()
	j.met.failed.Set(1)
	j.log.Error("journal: failed; no further appends will be acknowledged",
		"op", op, "file-id", j.w.id, "offset", j.w.off, "err", err)
	b.fail(from, failed)
	pending.fail(0, failed)
}

// roll switches to a new file: a released one recycled, or a preallocated
// one. The current file needs no sync: every group was fdatasynced, and its
// size never changed. The new file's header, written with its first group,
// names this file and where its records end. The first roll after Replay
// makes the file Replay planned (file is nil until then).
func (j *Journal) roll() error {
	id, prev, prevEnd := j.w.maxID+1, j.w.id, j.w.off
	if j.w.file == nil {
		id, prev, prevEnd = j.w.id, j.w.prev, j.w.prevEnd
	}
	f, err := j.nextFile(id)
	if err != nil {
		return err
	}
	old := j.w.file
	j.w = writer{
		file: f, id: id, prev: prev, prevEnd: prevEnd, capacity: j.cfg.FileSizeBytes, headerPending: true, maxID: id,
		spareRequested: j.w.spareRequested, spareGen: j.w.spareGen, ready: j.w.ready,
		recent: j.w.recent, free: j.w.free, scratch: j.w.scratch, timer: j.w.timer,
	}
	j.activeID.Store(id)
	if old != nil {
		j.stats.rolls.Add(1)
		if err := old.Close(); err != nil {
			j.log.Warn("journal: close rolled file", "file-id", prev, "err", err)
		}
	}
	j.maybeRequestSpare()
	return nil
}

// nextFile returns the file to roll to, named for id: the empty file
// Replay found, or a released file, recycled (no zero-fill), else the spare
// the preparer made, else one made now.
func (j *Journal) nextFile(id uint64) (vfs.File, error) {
	if path := j.w.reuse; path != "" {
		j.w.reuse = ""
		j.stats.recycled.Add(1)
		return j.renameInto(path, id)
	}
	if f, err := j.recycleFile(id); f != nil || err != nil {
		return f, err
	}
	spare := j.w.ready
	j.w.ready = nil
	if spare == nil {
		var err error
		spare, err = j.takeSpare()
		if errors.Is(err, errRecyclable) {
			// The preparer gave up because a file was released meanwhile.
			if f, err := j.recycleFile(id); f != nil || err != nil {
				return f, err
			}
			spare, err = createPreallocated(j.fs, j.cfg.Dir, j.cfg.FileSizeBytes, j.stopping)
		}
		if err != nil {
			return nil, err
		}
	}
	return j.installSpare(spare, id)
}

// installSpare renames the prepared spare file (whose handle is spare) to
// the journal file id, makes the name durable, and reopens it under its
// name. It closes spare in every case.
func (j *Journal) installSpare(spare vfs.File, id uint64) (vfs.File, error) {
	err := spare.Close()
	if err != nil {
		return nil, fmt.Errorf("close spare: %w", err)
	}
	return j.renameInto(j.fs.PathJoin(j.cfg.Dir, spareFileName), id)
}

// renameInto renames the file at path to journal file id, makes the name
// durable (so that no synced write into it can end up under the old name)
// and opens it for writing.
func (j *Journal) renameInto(path string, id uint64) (vfs.File, error) {
	to := j.fs.PathJoin(j.cfg.Dir, fileName(id))
	if err := j.fs.Rename(path, to); err != nil {
		return nil, fmt.Errorf("rename %s to %s: %w", path, to, err)
	}
	if err := syncDir(j.fs, j.cfg.Dir); err != nil {
		return nil, err
	}
	f, err := j.fs.OpenReadWrite(to, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", to, err)
	}
	return f, nil
}
