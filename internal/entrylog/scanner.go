package entrylog

import (
	"errors"
	"fmt"
	"io"
)

const scanChunk = 1 << 20

// Scanner iterates the records of one entry log file in order, stopping at
// the end of the file or at the first record that does not decode (a torn
// tail after a crash, or corruption). It is not safe for concurrent use.
//
//	s := NewScanner(f, size)
//	for s.Next() {
//		off, rec := s.Offset(), s.Record()
//	}
//	if err := s.Err(); err != nil { ... } // a *CorruptError, or an I/O error
type Scanner struct {
	r       io.ReaderAt
	size    int64
	logID   int64
	release func()

	buf    []byte // window of the file starting at bufOff
	bufOff int64
	pos    int64 // offset of the next record
	off    int64 // offset of the current record
	rec    Record
	err    error
	done   bool
	header bool
}

// NewScanner returns a scanner over the first size bytes of r, which must
// hold an entry log starting with its file header.
func NewScanner(r io.ReaderAt, size int64) *Scanner {
	return &Scanner{r: r, size: size, logID: -1}
}

// fill makes the window cover at least n bytes from pos, or as many as the
// file has. It returns the bytes available from pos.
func (s *Scanner) fill(n int) ([]byte, error) {
	start := s.pos - s.bufOff
	if start >= 0 && start+int64(n) <= int64(len(s.buf)) {
		return s.buf[start:], nil
	}
	if start < 0 || start > int64(len(s.buf)) {
		start = int64(len(s.buf))
	}
	want := max(n, scanChunk)
	if rest := s.size - s.pos; int64(want) > rest {
		want = int(max(rest, 0))
	}
	nb := make([]byte, want)
	copy(nb, s.buf[start:])
	have := len(s.buf) - int(start)
	if have < want {
		m, err := s.r.ReadAt(nb[have:], s.pos+int64(have))
		if m < want-have && err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("entrylog: read log %d at %d: %w", s.logID, s.pos+int64(have), err)
		}
		nb = nb[:have+m]
	}
	s.buf, s.bufOff = nb, s.pos
	return s.buf, nil
}

// Next advances to the next record and reports whether there is one.
func (s *Scanner) Next() bool {
	if s.done {
		return false
	}
	if !s.header {
		s.header = true
		b, err := s.fill(FileHeaderSize)
		if err != nil {
			return s.stop(err)
		}
		if len(b) == 0 && s.size == 0 {
			return s.stop(nil) // an empty file: created, never written
		}
		if err := checkFileHeader(b); err != nil {
			return s.stop(corruptAt(s.logID, 0, "file header: %v", err))
		}
		s.pos = FileHeaderSize
	}
	b, err := s.fill(RecordHeaderSize)
	if err != nil {
		return s.stop(err)
	}
	if len(b) == 0 {
		return s.stop(nil)
	}
	rec, n, err := DecodeRecord(b)
	if errors.Is(err, io.ErrUnexpectedEOF) && len(b) >= RecordHeaderSize {
		// The record is longer than the window: widen it.
		need := RecordSize(int(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])))
		if b, err = s.fill(int(need)); err != nil {
			return s.stop(err)
		}
		rec, n, err = DecodeRecord(b)
	}
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return s.stop(corruptAt(s.logID, s.pos, "%s", ce.Reason))
		}
		return s.stop(corruptAt(s.logID, s.pos, "file ends inside a record (%d bytes left)", len(b)))
	}
	s.rec, s.off = rec, s.pos
	s.pos += int64(n)
	return true
}

func (s *Scanner) stop(err error) bool {
	s.done, s.err, s.rec = true, err, Record{}
	return false
}

// Record returns the current record. Its Payload aliases the scanner's
// buffer and is valid only until the next call to Next.
func (s *Scanner) Record() Record { return s.rec }

// Offset returns the offset of the current record's header.
func (s *Scanner) Offset() int64 { return s.off }

// End returns the offset just past the last good record: where a clean
// scan ended, or where the bad record starts.
func (s *Scanner) End() int64 { return s.pos }

// Err returns nil if the scan reached the end of the file cleanly, the
// *CorruptError of the record it stopped at, or an I/O error.
func (s *Scanner) Err() error { return s.err }

// Close releases the log held by a scanner from Logs.Scanner. It does not
// close a reader passed to NewScanner.
func (s *Scanner) Close() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
}
