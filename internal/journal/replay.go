package journal

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

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
// ReleaseBefore), and the damaged bytes are overwritten with zeros (or, if
// the file is unusable from its first byte, it is renamed aside too), so
// that no later Replay can get past the cut. The cut is logged as a warning
// and reported by Stats. Replay then fdatasyncs the file where the records
// end (what it read may have been written but not synced by a process that
// died), and new appends go into a new file (see doc.go, "Recycling").
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
	var files []uint64
	for _, id := range listing.files {
		if id >= from.File {
			files = append(files, id)
		}
	}
	heads := make([]head, len(files))
	for i, id := range files {
		if heads[i], err = j.readHead(id); err != nil {
			return err
		}
	}
	res := replayResult{quarantineFrom: math.MaxUint64}
	for i := range files {
		stop, err := j.replayFile(i, files, heads, from, listing, fn, &res)
		if err != nil {
			return err
		}
		if stop {
			break
		}
	}
	if res.reason != "" {
		res.suspect = res.followed || laterContent(files, heads, res)
		if !res.suspect && res.cutAt.Offset == 0 {
			// The cut file is unusable from its first byte: a torn first
			// write, unless good records of its life follow the header.
			if res.suspect, err = j.firstRecordGood(res.cutAt.File); err != nil {
				return err
			}
		}
		if j.cfg.BeforeCut != nil {
			if err := j.cfg.BeforeCut(Cut{At: res.cutAt, Reason: res.reason, Suspect: res.suspect}); err != nil {
				return fmt.Errorf("journal: replay: before cut at %v: %w", res.cutAt, err)
			}
		}
	}
	if err := j.cut(listing, res); err != nil {
		return err
	}
	if err := j.syncEnd(res); err != nil {
		return err
	}
	if err := j.setupWriter(listing, files, from, res); err != nil {
		return err
	}
	j.maybeRequestSpare()
	j.mu.Lock()
	j.mu.replayed = true
	j.mu.Unlock()
	return nil
}

// headKind classifies a journal file by its header.
type headKind int

const (
	// headOK: a valid header naming the file's own id.
	headOK headKind = iota + 1
	// headEmpty: nothing of this file's life was written durably: an
	// all-zero header (a new file), or a valid header naming a smaller id
	// (a recycled file's previous life).
	headEmpty
	// headBad: anything else.
	headBad
)

// head is what a journal file's first bytes say.
type head struct {
	kind    headKind
	h       fileHeader // when kind is headOK
	problem string     // when kind is headBad
	size    int64      // the file's size
}

func (j *Journal) readHead(id uint64) (head, error) {
	name := j.fs.PathJoin(j.cfg.Dir, fileName(id))
	f, err := j.fs.Open(name)
	if err != nil {
		return head{}, fmt.Errorf("journal: replay: open %s: %w", name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return head{}, fmt.Errorf("journal: replay: stat %s: %w", name, err)
	}
	hb, err := newFileReader(f, info.Size()).bytes(0, fileHeaderSize)
	if err != nil {
		return head{}, fmt.Errorf("journal: replay %s: %w", name, err)
	}
	hd := head{size: info.Size()}
	h, ok := decodeFileHeader(hb)
	switch {
	case !ok && allZero(hb):
		hd.kind = headEmpty
	case !ok:
		hd.kind, hd.problem = headBad, "bad file header"
	case h.id < id:
		hd.kind = headEmpty
	case h.id > id:
		hd.kind, hd.problem = headBad, fmt.Sprintf("file header names file %016x", h.id)
	default:
		hd.kind, hd.h = headOK, h
	}
	return hd, nil
}

// fileEnd is where the records of a replayed file end.
type fileEnd struct {
	id      uint64
	end     int64
	version uint32
}

// replayResult is where a replay ended and what it must cut.
type replayResult struct {
	// last is the last file whose records were replayed (or whose damage
	// the replay stopped at), and where its records end; valid if ok.
	last   fileEnd
	lastOK bool
	// lastIndex is last's index in the replayed files.
	lastIndex int

	reason         string   // why the replay stopped early; "" for a clean end
	quarantineFrom uint64   // journal files from this id on are renamed aside
	cutAt          Position // the first byte not replayed, for reporting
	// zeroFrom, zeroTo: bytes of last's file to overwrite with zeros.
	zeroFrom, zeroTo int64
	// followed: the bad record at cutAt is followed, where its length
	// field says it ends, by a good record of the same life.
	followed bool
	// suspect: the cut may remove records that were synced (see Cut).
	suspect bool
}

// laterContent reports whether a file renamed aside by the cut holds
// anything of its own life (a valid header, or a header that is neither
// zero nor an earlier life's). The writer starts a file only after every
// group of the previous one was fdatasynced, so such a file proves that
// the records where the replay stopped had been synced. The cut file
// itself, when unusable from its first byte, does not count: a torn first
// write of the newest file looks the same.
func laterContent(files []uint64, heads []head, res replayResult) bool {
	for k, id := range files {
		if id < res.quarantineFrom || heads[k].kind == headEmpty {
			continue
		}
		if id == res.cutAt.File && res.cutAt.Offset == 0 && heads[k].kind == headBad {
			continue
		}
		return true
	}
	return false
}

// firstRecordGood reports whether file id holds a good version-2 record
// of its own life just after the header.
func (j *Journal) firstRecordGood(id uint64) (bool, error) {
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
	_, _, st, err := newFileReader(f, info.Size()).record(fileHeaderSize, fileSalt(fileFormatV2, id))
	if err != nil {
		return false, fmt.Errorf("journal: replay %s: %w", name, err)
	}
	return st == recordOK, nil
}

// followedByRecord reports whether the bad record at off, if its length
// field is plausible, is followed where it says it ends by a good record
// of the same life: then the bad record was complete and later damaged,
// not torn by a crash in the middle of its group's write (conservatively:
// a crash can also persist a group's pages out of order).
func followedByRecord(fr *fileReader, off int64, salt uint32) (bool, error) {
	h, err := fr.bytes(off, recordHeaderSize)
	if err != nil || len(h) < recordHeaderSize {
		return false, err
	}
	n := int64(binary.LittleEndian.Uint32(h[0:4]))
	next := off + recordHeaderSize + n
	if n == 0 || next+recordHeaderSize > fr.size {
		return false, nil
	}
	_, _, st, err := fr.record(next, salt)
	return err == nil && st == recordOK, err
}

// replayFile replays files[i] and reports whether the replay must stop
// there (damage).
func (j *Journal) replayFile(i int, files []uint64, heads []head, from Position, listing dirListing,
	fn func(pos, next Position, rec []byte) error, res *replayResult,
) (stop bool, err error) {
	id, hd := files[i], heads[i]
	// Damage before from in from's own file is skipped: everything before
	// from is durable elsewhere. (from.Offset at or before the first record
	// says nothing about the file's contents.)
	trusted := id == from.File && from.Offset > fileHeaderSizeV1
	problem := hd.problem
	if hd.kind == headOK {
		problem = chainProblem(id, hd.h, res, from, listing)
	}
	if !trusted {
		switch {
		case problem != "":
			res.reason, res.quarantineFrom, res.cutAt = problem, id, Position{File: id}
			return true, nil
		case hd.kind == headEmpty:
			return false, nil // nothing of this life: the chain goes on past it
		}
	}
	name := j.fs.PathJoin(j.cfg.Dir, fileName(id))
	f, err := j.fs.Open(name)
	if err != nil {
		return false, fmt.Errorf("journal: replay: open %s: %w", name, err)
	}
	defer f.Close()
	fr := newFileReader(f, hd.size)

	h := hd.h
	off := h.size()
	if trusted && (hd.kind != headOK || problem != "") {
		if problem == "" {
			problem = "no header of this life"
		}
		j.log.Warn("journal: damage before the replay position skipped", "file-id", id, "offset", 0, "reason", problem, "from", from.String())
		// The header cannot say which format the records are in: the
		// record at from can (a version-1 record never matches a
		// version-2 salt, and the reverse).
		h = fileHeader{version: fileFormatV2, id: id}
		if _, _, st, err := fr.record(from.Offset, h.salt()); err == nil && st != recordOK {
			if _, _, st1, err := fr.record(from.Offset, 0); err == nil && st1 == recordOK {
				h.version = fileFormatV1
			}
		}
		off = from.Offset
	}
	salt := h.salt()
	// The next file that holds anything of its life, if it names this one
	// as its predecessor, says where this file's records end.
	limit := int64(-1)
	for k := i + 1; k < len(files); k++ {
		if heads[k].kind == headEmpty {
			continue
		}
		if n := heads[k].h; heads[k].kind == headOK && n.version == fileFormatV2 && n.prev == id && n.prevEnd > 0 {
			limit = n.prevEnd
		}
		break
	}
	res.last, res.lastOK, res.lastIndex = fileEnd{id: id, version: h.version}, true, i
	// damage ends the replay at off, and the cut makes off a clean end.
	damage := func(reason string) (bool, error) {
		tail, err := j.dirtyEnd(fr, h.version, off)
		if err != nil {
			return false, fmt.Errorf("journal: replay %s: %w", name, err)
		}
		followed, err := followedByRecord(fr, off, salt)
		if err != nil {
			return false, fmt.Errorf("journal: replay %s: %w", name, err)
		}
		res.last.end = off
		res.reason, res.quarantineFrom, res.cutAt = reason, id+1, Position{File: id, Offset: off}
		res.zeroFrom, res.zeroTo = off, tail
		res.followed = followed
		return true, nil
	}
	for {
		switch {
		case limit >= 0 && off > limit: // the header, or a trusted from, is past it
			return damage(fmt.Sprintf("the next file says this one ends at %d", limit))
		case limit >= 0 && off == limit:
			res.last.end = off
			return false, nil
		case off >= fr.size && limit >= 0:
			return damage(fmt.Sprintf("the file ends before %d, where the next file says its records end", limit))
		case off >= fr.size:
			res.last.end = off
			return false, nil
		}
		rec, next, st, err := fr.record(off, salt)
		if err != nil {
			return false, fmt.Errorf("journal: replay %s: %w", name, err)
		}
		if st == recordOK && (limit < 0 || next <= limit) {
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
		if trusted && off < from.Offset && st != recordOK {
			if st == recordBad {
				j.log.Warn("journal: damage before the replay position skipped", "file-id", id, "offset", off, "reason", "bad record", "from", from.String())
			}
			off = from.Offset
			continue
		}
		// The records end at off.
		switch {
		case limit >= 0:
			return damage(fmt.Sprintf("records end before %d, where the next file says they end", limit))
		case st == recordBad:
			return damage("torn or corrupt record")
		}
		if tail, err := j.dirtyEnd(fr, h.version, off); err != nil {
			return false, fmt.Errorf("journal: replay %s: %w", name, err)
		} else if tail > off {
			return damage("non-zero bytes after the end of data")
		}
		res.last.end = off
		return false, nil
	}
}

// chainProblem checks that file id, with a valid header h, follows the
// file replayed before it: the chain of previous-file ids must not skip a
// file that is missing, or present but empty.
func chainProblem(id uint64, h fileHeader, res *replayResult, from Position, listing dirListing) string {
	if res.lastOK {
		if h.prev != res.last.id {
			return fmt.Sprintf("file %016x follows %016x, not %016x: a file is missing", id, h.prev, res.last.id)
		}
		return ""
	}
	// The first file with records at or after from: its predecessor must
	// lie before from (or be gone, when replaying everything).
	if h.prev != 0 && h.prev >= from.File && (from.File != 0 || slices.Contains(listing.files, h.prev)) {
		return fmt.Sprintf("file %016x follows %016x, which is missing or empty", id, h.prev)
	}
	return ""
}

// dirtyEnd returns the end of what a cut at off must zero so that the
// records end cleanly at off: past every non-zero byte from off to the end
// of a version-1 file (whose unwritten bytes are zeros); in a version-2
// file, which may be recycled and hold an earlier life's bytes further on,
// past the non-zero bytes of the end marker the writer leaves after every
// group (zeros from the end of the last record to endMarkerBytes past it,
// rounded up to a page, or the end of the file). It is off if those bytes
// are all zero.
func (j *Journal) dirtyEnd(fr *fileReader, version uint32, off int64) (int64, error) {
	to := fr.size
	if version != fileFormatV1 {
		to = min(fr.size, (off+endMarkerBytes+pageBytes-1)/pageBytes*pageBytes)
	}
	return fr.dataEnd(off, to)
}

// cut makes the end of the replay durable: files after it are renamed
// aside first (and the directory synced), then the damaged bytes are
// zeroed and synced. That order keeps a crash in between from leaving a
// clean-looking end followed by later files.
func (j *Journal) cut(listing dirListing, res replayResult) error {
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
	if res.lastOK && res.zeroTo > res.zeroFrom {
		name := j.fs.PathJoin(j.cfg.Dir, fileName(res.last.id))
		f, err := j.fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
		if err != nil {
			return fmt.Errorf("journal: cut: open %s: %w", name, err)
		}
		err = writeZeros(f, res.zeroFrom, res.zeroTo, nil)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("journal: cut: zero %s: %w", name, err)
		}
		cutBytes += res.zeroTo - res.zeroFrom
	}
	if cutBytes > 0 || quarantined > 0 {
		j.log.Warn("journal: cut the journal at the first torn or bad record",
			"file-id", res.cutAt.File, "offset", res.cutAt.Offset, "reason", res.reason,
			"bytes-cut", cutBytes, "files-quarantined", quarantined)
		cutAt := res.cutAt
		j.stats.cutPos.Store(&cutAt)
		j.stats.cutBytes.Store(cutBytes)
		j.stats.quarantined.Store(quarantined)
		j.stats.cutSuspect.Store(res.suspect)
	}
	return nil
}

// syncEnd fdatasyncs the file where the replayed records end (unless the
// cut just synced it): a process that died may have written records there
// that it never synced, and the caller is about to act on them.
func (j *Journal) syncEnd(res replayResult) error {
	if !res.lastOK || res.zeroTo > res.zeroFrom {
		return nil
	}
	name := j.fs.PathJoin(j.cfg.Dir, fileName(res.last.id))
	f, err := j.fs.OpenReadWrite(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("journal: replay: open %s: %w", name, err)
	}
	err = f.SyncData()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("journal: replay: sync %s: %w", name, err)
	}
	return nil
}

// setupWriter decides where appends go. It is always a new life, with an
// id above every id in use and above from.File: the file where the replay
// ended may hold, after its last good record, records of the same life
// (same salt) that a crash left behind, which appends there could later run
// into. The file itself is made by the first group (see Journal.roll), so
// that a replay that appends nothing changes nothing: an empty file left
// after the replay's end (a new file whose first write was lost) renamed,
// else a released file renamed, else a new zero-filled one.
func (j *Journal) setupWriter(listing dirListing, files []uint64, from Position, res replayResult) error {
	id := max(listing.maxID(), from.File) + 1
	prev, prevEnd := res.last.id, res.last.end
	if !res.lastOK {
		// Nothing at or after from: chain to the last file before it.
		prev, prevEnd = j.lastBefore(listing, from.File), 0
	}
	// Empty files after the end hold nothing durable of their life: keep
	// one to rename into the new file, remove the others.
	reuse := ""
	for k, fid := range files {
		if fid >= res.quarantineFrom {
			break
		}
		if res.lastOK && k <= res.lastIndex {
			continue
		}
		path := j.fs.PathJoin(j.cfg.Dir, fileName(fid))
		if info, err := j.fs.Stat(path); reuse == "" && err == nil && info.Size() == j.cfg.FileSizeBytes {
			reuse = path
			continue
		}
		if err := j.fs.Remove(path); err != nil {
			return fmt.Errorf("journal: remove empty file %s: %w", path, err)
		}
	}
	j.w = writer{id: id, prev: prev, prevEnd: prevEnd, maxID: id, reuse: reuse, timer: j.w.timer}
	j.activeID.Store(id)
	return nil
}

// lastBefore returns the last journal file before id with a valid header
// of its own, 0 if none.
func (j *Journal) lastBefore(listing dirListing, id uint64) uint64 {
	for k := len(listing.files) - 1; k >= 0; k-- {
		fid := listing.files[k]
		if fid >= id {
			continue
		}
		if hd, err := j.readHead(fid); err == nil && hd.kind == headOK {
			return fid
		}
	}
	return 0
}
