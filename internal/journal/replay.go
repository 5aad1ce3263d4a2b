package journal

import (
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Replay calls fn for every record at or after from, in append order, and
// then prepares the journal for appending. It must succeed once before the
// first Append; a second call fails with ErrReplayed.
//
// from is normally the end position of the last record the caller has made
// durable elsewhere (its checkpoint mark); the zero Position replays
// everything. from must be a position the journal handed out (a record
// boundary): if it falls inside a record Replay returns ErrBadPosition and
// changes nothing. Damage found before from in from's file is skipped
// (everything before from is durable elsewhere) and logged.
//
// fn receives each record's position, the position just after it, and the
// payload; rec is only valid during the call (copy it to keep it). A nil fn
// only scans. If fn returns an error Replay stops and returns it, and the
// journal stays unreplayed.
//
// Every record's checksum is verified. Replay stops at the first torn or
// bad record (or bad file header, or a missing file in the chain) and never
// yields anything after it. It then cuts the journal there, durably: later
// journal files are renamed aside (<id>.journal.cut, removed by a later
// ReleaseBefore), and the rest of the damaged file is overwritten with
// zeros (or, if it is unusable from its first byte, it is renamed aside
// too), so that no later Replay can get past the cut. The cut is logged as
// a warning and reported by Stats. New appends go after the cut, or into a
// fresh file when the cut lies before from or damage was skipped.
//
// A later Replay from a position before from may stop at damage that this
// one skipped, and cut there; replay from the newest durable mark.
//
// A read error is returned as is; nothing is cut.
func (j *Journal) Replay(from Position, fn func(pos, next Position, rec []byte) error) error {
	j.replayMu.Lock()
	defer j.replayMu.Unlock()
	j.mu.Lock()
	closed, replayed := j.mu.closed, j.mu.replayed
	j.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case replayed:
		return ErrReplayed
	case from.Offset < 0:
		return fmt.Errorf("journal: replay from %v: negative offset", from)
	}
	listing, err := listDir(j.fs, j.cfg.Dir)
	if err != nil {
		return err
	}
	var res, prev scanResult
	prevID := uint64(0)
	for i, id := range listing.files {
		if id < from.File {
			continue
		}
		stop, err := j.scanFile(id, from, prevID, i == 0 || listing.files[i-1] < from.File, fn, &res)
		if err != nil {
			return err
		}
		if stop {
			if res.end.Offset == 0 && res.dirtyEnd > 0 {
				// Unusable from its first byte (bad header, or it follows a
				// missing file): rename the whole file aside rather than
				// zero it, and end at the previous file's clean end.
				bad, reason := res.end.File, res.reason
				res = prev
				res.quarantineFrom, res.cutAt, res.reason = bad, Position{File: bad}, reason
			}
			break
		}
		prevID, prev = id, res
	}
	switch {
	case res.quarantineFrom != 0:
	case res.found:
		res.quarantineFrom, res.cutAt = res.end.File+1, res.end
	default: // nothing at or after from: nothing to cut
		res.quarantineFrom = math.MaxUint64
	}
	if err := j.cut(listing, res); err != nil {
		return err
	}
	if err := j.setupWriter(listing, from, res); err != nil {
		return err
	}
	j.requestSpare()
	j.mu.Lock()
	j.mu.replayed = true
	j.mu.Unlock()
	return nil
}

// scanResult is where a replay ended.
type scanResult struct {
	found    bool     // at least one file at or after from was scanned
	end      Position // first position not replayed: end of data or damage
	dirtyEnd int64    // just past the last non-zero byte at or after end.Offset in end.File
	reason   string   // why the replay stopped early; "" for a clean end
	headerOK bool     // end.File has a valid header
	jumped   bool     // damage before from was skipped in end.File

	quarantineFrom uint64   // files from this id on are renamed aside
	cutAt          Position // the first byte not replayed, for reporting
}

// scanFile replays one file. first is true for the first file at or after
// from; prevID is the file replayed before it (0 if first). It returns
// stop=true when the replay must not continue into later files.
func (j *Journal) scanFile(id uint64, from Position, prevID uint64, first bool,
	fn func(pos, next Position, rec []byte) error, res *scanResult,
) (stop bool, err error) {
	name := j.fs.PathJoin(j.cfg.Dir, fileName(id))
	f, err := j.fs.Open(name)
	if err != nil {
		return false, fmt.Errorf("journal: replay: open %s: %w", name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("journal: replay: stat %s: %w", name, err)
	}
	fr := newFileReader(f, info.Size())
	// Damage before from in from's own file is skipped: everything before
	// from is durable elsewhere. (from.Offset at or before the first record
	// says nothing about the file's contents.)
	trusted := id == from.File && from.Offset > fileHeaderSize
	*res = scanResult{found: true}

	hb, err := fr.bytes(0, fileHeaderSize)
	if err != nil {
		return false, fmt.Errorf("journal: replay %s: %w", name, err)
	}
	h, ok := decodeFileHeader(hb)
	var problem string
	switch {
	case !ok && allZero(hb):
		problem = "empty" // created, nothing written yet
	case !ok:
		problem = "bad file header"
	case h.id != id:
		problem = fmt.Sprintf("file header names file %016x", h.id)
	case !first && h.prev != prevID:
		problem = fmt.Sprintf("file %016x follows %016x, not %016x: a file is missing", id, h.prev, prevID)
	case first && from.File != 0 && id > from.File && h.prev >= from.File:
		problem = fmt.Sprintf("file %016x follows %016x, which is missing", id, h.prev)
	}
	res.headerOK = problem == ""
	off := int64(fileHeaderSize)
	if problem != "" {
		if !trusted {
			if problem == "empty" {
				problem = ""
			}
			return j.endAt(fr, id, 0, problem, res)
		}
		if problem != "empty" {
			j.log.Warn("journal: damage before the replay position skipped", "file-id", id, "offset", 0, "reason", problem, "from", from.String())
		}
		off, res.jumped = from.Offset, true
	}
	for {
		if off >= fr.size {
			return j.endAt(fr, id, fr.size, "", res)
		}
		rec, next, st, err := fr.record(off)
		if err != nil {
			return false, fmt.Errorf("journal: replay %s: %w", name, err)
		}
		if st == recordOK {
			if trusted && off < from.Offset && next > from.Offset {
				return false, fmt.Errorf("%w: %v is inside the record at %v", ErrBadPosition, from, Position{File: id, Offset: off})
			}
			if (!trusted || off >= from.Offset) && fn != nil {
				if err := fn(Position{File: id, Offset: off}, Position{File: id, Offset: next}, rec); err != nil {
					return false, err
				}
			}
			off = next
			continue
		}
		if trusted && off < from.Offset {
			if st == recordBad {
				j.log.Warn("journal: damage before the replay position skipped", "file-id", id, "offset", off, "reason", "bad record", "from", from.String())
			}
			off, res.jumped = from.Offset, true
			continue
		}
		reason := ""
		if st == recordBad {
			reason = "torn or corrupt record"
		}
		return j.endAt(fr, id, off, reason, res)
	}
}

// endAt records that file id's data ends at off and reports whether the
// replay must stop here: because of damage, or because non-zero bytes lie
// after the end (a torn write, or a zeroed length field).
func (j *Journal) endAt(fr *fileReader, id uint64, off int64, reason string, res *scanResult) (bool, error) {
	dirty, err := fr.dataEnd(off)
	if err != nil {
		return false, fmt.Errorf("journal: replay %s: %w", fileName(id), err)
	}
	if reason == "" && dirty > off {
		reason = "non-zero bytes after the end of data"
	}
	res.end = Position{File: id, Offset: off}
	res.dirtyEnd = dirty
	res.reason = reason
	return reason != "", nil
}

// cut makes the end of the replay durable: files after it are renamed
// aside first (and the directory synced), then the damaged bytes are
// zeroed and synced. That order keeps a crash in between from leaving a
// clean-looking end followed by later files.
func (j *Journal) cut(listing dirListing, res scanResult) error {
	var cutBytes, quarantined int64
	for _, id := range listing.files {
		if id < res.quarantineFrom {
			continue
		}
		from := j.fs.PathJoin(j.cfg.Dir, fileName(id))
		if info, err := j.fs.Stat(from); err == nil {
			cutBytes += info.Size()
		}
		if err := j.fs.Rename(from, j.fs.PathJoin(j.cfg.Dir, quarantineName(id))); err != nil {
			return fmt.Errorf("journal: cut: quarantine %s: %w", from, err)
		}
		quarantined++
	}
	if quarantined > 0 {
		if err := syncDir(j.fs, j.cfg.Dir); err != nil {
			return fmt.Errorf("journal: cut: %w", err)
		}
	}
	if res.found && res.dirtyEnd > res.end.Offset {
		name := j.fs.PathJoin(j.cfg.Dir, fileName(res.end.File))
		f, err := j.fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
		if err != nil {
			return fmt.Errorf("journal: cut: open %s: %w", name, err)
		}
		err = writeZeros(f, res.end.Offset, res.dirtyEnd, nil)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("journal: cut: zero %s: %w", name, err)
		}
		cutBytes += res.dirtyEnd - res.end.Offset
	}
	if cutBytes > 0 || quarantined > 0 {
		j.log.Warn("journal: cut the journal at the first torn or bad record",
			"file-id", res.cutAt.File, "offset", res.cutAt.Offset, "reason", res.reason,
			"bytes-cut", cutBytes, "files-quarantined", quarantined)
		cutAt := res.cutAt
		j.stats.cutPos.Store(&cutAt)
		j.stats.cutBytes.Store(cutBytes)
		j.stats.quarantined.Store(quarantined)
	}
	return nil
}

// setupWriter decides where appends go. They continue in the file where the
// replay ended when that keeps every new position at or after from and
// the file is sound; otherwise they go into a fresh file whose id is above
// every id in use and above from.File.
func (j *Journal) setupWriter(listing dirListing, from Position, res scanResult) error {
	maxID := max(listing.maxID(), from.File)
	end := res.end
	if res.found && end.Compare(from) >= 0 && !res.jumped && (end.Offset == 0 || res.headerOK) {
		name := j.fs.PathJoin(j.cfg.Dir, fileName(end.File))
		f, err := j.fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
		if err != nil {
			return fmt.Errorf("journal: open %s: %w", name, err)
		}
		info, err := f.Stat()
		if err == nil && info.Size() < j.cfg.FileSizeBytes {
			// Shorter than preallocated (truncated, or made with a smaller
			// FileSizeBytes): extend it with zeros now, so that appends never
			// change its size.
			if err = writeZeros(f, info.Size(), j.cfg.FileSizeBytes, nil); err == nil {
				err = f.Sync()
			}
		}
		if err != nil {
			_ = f.Close()
			return fmt.Errorf("journal: prepare %s: %w", name, err)
		}
		var prev uint64
		for _, id := range listing.files {
			if id < end.File {
				prev = id
			}
		}
		j.w = writer{
			file: f, id: end.File, prev: prev, off: end.Offset,
			capacity: max(info.Size(), j.cfg.FileSizeBytes), headerPending: end.Offset == 0,
			maxID: maxID, timer: j.w.timer,
		}
		j.activeID.Store(end.File)
		return nil
	}
	// The previous file in the chain: where the replay ended, or else the
	// last file before from (files at or after from are absent or were
	// renamed aside).
	var prev uint64
	if res.found {
		prev = end.File
	} else {
		for _, id := range listing.files {
			if id < from.File {
				prev = id
			}
		}
	}
	f, err := createPreallocated(j.fs, j.cfg.Dir, j.cfg.FileSizeBytes, nil)
	if err == nil {
		f, err = j.installSpare(f, maxID+1)
	}
	if err != nil {
		return fmt.Errorf("journal: create file: %w", err)
	}
	j.w = writer{
		file: f, id: maxID + 1, prev: prev, capacity: j.cfg.FileSizeBytes, headerPending: true,
		maxID: maxID + 1, timer: j.w.timer,
	}
	j.activeID.Store(maxID + 1)
	return nil
}
