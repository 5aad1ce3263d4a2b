package journal

import (
	"cmp"
	"encoding/binary"
	"fmt"
)

// Position is a place in the journal: a byte offset in a journal file.
// Positions are totally ordered by (File, Offset), in the order records
// were appended. The zero Position is before every record.
//
// A record has two positions: where it starts (given to Replay's callback
// as pos) and where it ends (given to Append's callback and to Replay's
// callback as next). A caller that has persisted every record up to and
// including one elsewhere stores that record's end position and later
// replays from it, and may release the journal before it.
type Position struct {
	// File is the journal file id (files are named after it).
	File uint64
	// Offset is the byte offset in that file.
	Offset int64
}

// positionSize is the length of a Position's binary form.
const positionSize = 16

// Compare returns -1, 0 or +1 as p is before, equal to or after q.
func (p Position) Compare(q Position) int {
	if c := cmp.Compare(p.File, q.File); c != 0 {
		return c
	}
	return cmp.Compare(p.Offset, q.Offset)
}

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p == Position{} }

// String formats p as "<file id in 16 hex digits>:<decimal offset>".
func (p Position) String() string { return fmt.Sprintf("%016x:%d", p.File, p.Offset) }

// MarshalBinary encodes p in 16 bytes: File then Offset, both big-endian
// uint64, so that encoded positions sort like positions.
func (p Position) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, positionSize))
}

// AppendBinary appends the 16-byte encoding of p to b.
func (p Position) AppendBinary(b []byte) ([]byte, error) {
	if p.Offset < 0 {
		return nil, fmt.Errorf("journal: encode position %v: negative offset", p)
	}
	b = binary.BigEndian.AppendUint64(b, p.File)
	return binary.BigEndian.AppendUint64(b, uint64(p.Offset)), nil
}

// UnmarshalBinary decodes the form written by MarshalBinary.
func (p *Position) UnmarshalBinary(b []byte) error {
	if len(b) != positionSize {
		return fmt.Errorf("journal: decode position: %d bytes, want %d", len(b), positionSize)
	}
	off := binary.BigEndian.Uint64(b[8:])
	if off > 1<<63-1 {
		return fmt.Errorf("journal: decode position: offset %d out of range", off)
	}
	*p = Position{File: binary.BigEndian.Uint64(b), Offset: int64(off)}
	return nil
}
