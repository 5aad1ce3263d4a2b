package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// File names in the journal directory; doc.go documents them.
const (
	fileSuffix       = ".journal"
	quarantineSuffix = ".journal.cut"
	freeSuffix       = ".journal.free"
	spareFileName    = "next.journal.tmp"
	lockFileName     = "LOCK"
	fileIDDigits     = 16
)

// zeroChunkBytes is the size of each write when filling files with zeros;
// every zeroWritebackBytes the filler asks for asynchronous writeback.
const (
	zeroChunkBytes     = 128 << 10
	zeroWritebackBytes = 128 << 10
)

// readWindowBytes is how much replay reads at a time.
const readWindowBytes = 1 << 20

func fileName(id uint64) string {
	return fmt.Sprintf("%016x%s", id, fileSuffix)
}

func quarantineName(id uint64) string {
	return fmt.Sprintf("%016x%s", id, quarantineSuffix)
}

func freeName(id uint64) string {
	return fmt.Sprintf("%016x%s", id, freeSuffix)
}

// fileKind tells journal files from the other files named after an id.
type fileKind int

const (
	kindJournal     fileKind = iota + 1 // <id>.journal
	kindQuarantined                     // <id>.journal.cut
	kindFree                            // <id>.journal.free
)

// parseFileName returns the id and kind of a file named after an id;
// ok=false for any other name.
func parseFileName(name string) (id uint64, kind fileKind, ok bool) {
	var stem string
	switch {
	case strings.HasSuffix(name, quarantineSuffix):
		stem, kind = strings.TrimSuffix(name, quarantineSuffix), kindQuarantined
	case strings.HasSuffix(name, freeSuffix):
		stem, kind = strings.TrimSuffix(name, freeSuffix), kindFree
	case strings.HasSuffix(name, fileSuffix):
		stem, kind = strings.TrimSuffix(name, fileSuffix), kindJournal
	default:
		return 0, 0, false
	}
	if len(stem) != fileIDDigits || strings.ToLower(stem) != stem {
		return 0, 0, false
	}
	id, err := strconv.ParseUint(stem, 16, 64)
	if err != nil || id == 0 {
		return 0, 0, false
	}
	return id, kind, true
}

// dirListing is what a journal directory holds.
type dirListing struct {
	files       []uint64 // journal file ids, ascending
	quarantined []uint64 // quarantined file ids, ascending
	free        []uint64 // released files kept for recycling, ascending
	spare       bool     // a leftover spare file exists
}

// maxID is the largest id in use, journal, quarantined or free; 0 if none.
func (l dirListing) maxID() uint64 {
	var m uint64
	for _, ids := range [][]uint64{l.files, l.quarantined, l.free} {
		if n := len(ids); n > 0 {
			m = max(m, ids[n-1])
		}
	}
	return m
}

func listDir(fs vfs.FS, dir string) (dirListing, error) {
	names, err := fs.List(dir)
	if err != nil {
		return dirListing{}, fmt.Errorf("journal: list %s: %w", dir, err)
	}
	var l dirListing
	for _, name := range names {
		if name == spareFileName {
			l.spare = true
			continue
		}
		id, kind, ok := parseFileName(name)
		switch {
		case !ok:
		case kind == kindQuarantined:
			l.quarantined = append(l.quarantined, id)
		case kind == kindFree:
			l.free = append(l.free, id)
		default:
			l.files = append(l.files, id)
		}
	}
	slices.Sort(l.files)
	slices.Sort(l.quarantined)
	slices.Sort(l.free)
	return l, nil
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// errStopped aborts a spare preparation because the journal is closing.
var errStopped = errors.New("journal: stopped")

// errRecyclable aborts a spare preparation because a released file can be
// recycled instead.
var errRecyclable = errors.New("journal: a released file can be recycled")

// writeZeros writes zeros over [from, to) of f with WriteAt. Before each
// chunk it calls pace (if not nil) with the bytes written so far; an error
// from pace (errStopped when closing) aborts the fill.
func writeZeros(f vfs.File, from, to int64, pace func(done int64) error) error {
	zeros := make([]byte, min(zeroChunkBytes, max(to-from, 0)))
	for off := from; off < to; {
		if pace != nil {
			if err := pace(off - from); err != nil {
				return err
			}
		}
		n := min(int64(len(zeros)), to-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
		if (off-from)%zeroWritebackBytes == 0 {
			// Start writeback of what is written so far (and wait for the
			// previous batch), so that dirty zeros never pile up into one
			// burst that the journal's own fdatasyncs would queue behind.
			if _, err := f.SyncTo(off); err != nil {
				return err
			}
		}
	}
	return nil
}

// pageBytes is the alignment of O_DIRECT writes (4096 suits devices with
// 512- or 4096-byte blocks), and the page size the writer pads to.
const pageBytes = 4096

// zeroFill writes zeros over [0, size) of a new file, paced by pace (see
// writeZeros). Where it can, it writes the page-aligned bulk with O_DIRECT,
// which costs no copy into the page cache, leaves no dirty pages to flush
// in a burst, and does not push useful pages out of the cache. (Writes into
// those uncached pages then would have to read the page first; the writer
// avoids that by padding every group to a page boundary, see commit.)
func zeroFill(f vfs.File, size int64, pace func(done int64) error) error {
	var direct int64
	if restore, ok := enableDirectIO(f); ok {
		direct = size / pageBytes * pageBytes
		err := writeZerosAligned(f, direct, pace)
		if rerr := restore(); err == nil {
			err = rerr
		}
		switch {
		case err == nil:
		case errors.Is(err, syscall.EINVAL): // O_DIRECT accepted but unusable
			direct = 0
		default:
			return err
		}
	}
	return writeZeros(f, direct, size, pace)
}

// writeZerosAligned is writeZeros over [0, to) from a page-aligned buffer,
// as O_DIRECT requires; to must be a multiple of pageBytes.
func writeZerosAligned(f vfs.File, to int64, pace func(done int64) error) error {
	raw := make([]byte, zeroChunkBytes+pageBytes)
	misalign := int(uintptr(unsafe.Pointer(unsafe.SliceData(raw))) % pageBytes)
	zeros := raw[(pageBytes-misalign)%pageBytes:][:zeroChunkBytes]
	for off := int64(0); off < to; {
		if pace != nil {
			if err := pace(off); err != nil {
				return err
			}
		}
		n := min(int64(len(zeros)), to-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// createPreallocated creates the spare file, fills it with sizeBytes zeros
// (paced by pace, see writeZeros) and fsyncs it. The caller renames it into
// place and syncs the directory.
func createPreallocated(fs vfs.FS, dir string, sizeBytes int64, pace func(done int64) error) (vfs.File, error) {
	name := fs.PathJoin(dir, spareFileName)
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	if err := zeroFill(f, sizeBytes, pace); err != nil {
		_ = f.Close()
		_ = fs.Remove(name)
		if errors.Is(err, errStopped) || errors.Is(err, errRecyclable) {
			return nil, err
		}
		return nil, fmt.Errorf("preallocate %s: %w", name, err)
	}
	// A full fsync: the size changed.
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = fs.Remove(name)
		return nil, fmt.Errorf("sync %s: %w", name, err)
	}
	return f, nil
}

// fileReader reads a journal file through a window, so that a replay of
// many small records makes few read calls.
type fileReader struct {
	r      io.ReaderAt
	size   int64
	win    []byte
	winOff int64
}

func newFileReader(r io.ReaderAt, size int64) *fileReader {
	return &fileReader{r: r, size: size}
}

// bytes returns the n bytes at off (n is clipped to the end of the file).
// The result aliases the window and is valid until the next call.
func (fr *fileReader) bytes(off int64, n int) ([]byte, error) {
	n = int(min(int64(n), fr.size-off))
	if n <= 0 {
		return nil, nil
	}
	if off >= fr.winOff && off+int64(n) <= fr.winOff+int64(len(fr.win)) {
		return fr.win[off-fr.winOff : off-fr.winOff+int64(n)], nil
	}
	m := int(min(int64(max(n, readWindowBytes)), fr.size-off))
	if cap(fr.win) < m {
		fr.win = make([]byte, m)
	}
	fr.win = fr.win[:m]
	got, err := fr.r.ReadAt(fr.win, off)
	if got < m {
		fr.win = fr.win[:0]
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read at %d: %w", off, err)
	}
	fr.winOff = off
	return fr.win[:n], nil
}

// record reads the record at off, checking its checksum against salt.
func (fr *fileReader) record(off int64, salt uint32) (payload []byte, next int64, st recordStatus, err error) {
	h, err := fr.bytes(off, recordHeaderSize)
	if err != nil {
		return nil, 0, 0, err
	}
	n := recordHeaderSize
	if len(h) == recordHeaderSize {
		n += int(min(int64(binary.LittleEndian.Uint32(h[0:4])), fr.size-off-recordHeaderSize))
	}
	b, err := fr.bytes(off, n)
	if err != nil {
		return nil, 0, 0, err
	}
	payload, size, st := decodeRecord(b, salt)
	return payload, off + int64(size), st, nil
}

// dataEnd returns the offset just past the last non-zero byte in
// [from, to), or from if that range is all zeros. to is clipped to the
// file's size.
func (fr *fileReader) dataEnd(from, to int64) (int64, error) {
	end := from
	to = min(to, fr.size)
	for off := from; off < to; {
		b, err := fr.bytes(off, int(min(readWindowBytes, to-off)))
		if err != nil {
			return 0, err
		}
		if i := lastNonZero(b); i > 0 {
			end = off + int64(i)
		}
		off += int64(len(b))
	}
	return end, nil
}

// lastNonZero returns one plus the index of the last non-zero byte of b,
// or 0 if b is all zeros.
func lastNonZero(b []byte) int {
	i := len(b)
	for ; i >= 8; i -= 8 {
		if binary.LittleEndian.Uint64(b[i-8:i]) != 0 {
			break
		}
	}
	for ; i > 0; i-- {
		if b[i-1] != 0 {
			return i
		}
	}
	return 0
}
