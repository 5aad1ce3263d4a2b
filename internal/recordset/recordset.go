package recordset

import (
	"errors"
	"fmt"

	"github.com/dlog-io/dlog"
)

// Format constants; doc.go has the byte layout.
const (
	// Version is the only format version this package writes and reads.
	Version = 1
	// HeaderSize is the size of the set header.
	HeaderSize = 22
	// RecordOverhead is the size of a record's header in the body; it is
	// also the smallest possible record (empty payload).
	RecordOverhead = 13
	// MaxBodyBytes bounds the uncompressed body of any set. Decoding never
	// allocates more than this for a body whatever an entry declares, and
	// the shared zstd decoder is capped at it. It leaves room under the
	// bookie protocol's 16 MiB message limit.
	MaxBodyBytes = 8 << 20
)

// sentinel is an error that also matches a dlog-wide error, so the log
// core can pass it up and callers can classify it with dlog.IsDefinite.
type sentinel struct {
	msg  string
	base error
}

func (e *sentinel) Error() string { return e.msg }
func (e *sentinel) Unwrap() error { return e.base }

// Errors, returned wrapped with detail; match with errors.Is.
var (
	// ErrCorrupt: the bytes are not a valid record set (or declare more
	// than the caller's limit). Matches dlog.ErrCorrupt. Never retried.
	ErrCorrupt error = &sentinel{"recordset: corrupt record set", dlog.ErrCorrupt}
	// ErrRecordTooLarge: one record's payload exceeds Config.MaxRecordBytes;
	// it can never be appended. Matches dlog.ErrRecordTooLarge (definite).
	ErrRecordTooLarge error = &sentinel{"recordset: record too large", dlog.ErrRecordTooLarge}
	// ErrInvalidRecord: undefined flag bits, or end-of-stream without
	// control. Matches dlog.ErrInvalidArgument (definite).
	ErrInvalidRecord error = &sentinel{"recordset: invalid record", dlog.ErrInvalidArgument}
	// ErrSetFull: the record fits an empty set but not this one: build and
	// send the set, Reset, then append it again.
	ErrSetFull = errors.New("recordset: record set full")
	// ErrEmpty: Build on a set without records.
	ErrEmpty = errors.New("recordset: empty record set")
	// ErrInvalidConfig: a Config that Validate rejects, or an unknown codec.
	ErrInvalidConfig = errors.New("recordset: invalid configuration")
)

// Codec names how the body is stored. Values are the header's codec byte.
type Codec uint8

const (
	// CodecNone stores the body as is.
	CodecNone Codec = 1
	// CodecLZ4 stores one LZ4 block (github.com/pierrec/lz4/v4 block API).
	CodecLZ4 Codec = 2
	// CodecZstd stores one zstd frame with its content size.
	CodecZstd Codec = 3
)

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// Valid reports whether c is a defined codec.
func (c Codec) Valid() bool { return c >= CodecNone && c <= CodecZstd }

// ParseCodec maps "none", "lz4" and "zstd" (configuration and flag values)
// to a Codec; other strings give an error wrapping ErrInvalidConfig.
func ParseCodec(s string) (Codec, error) {
	for c := CodecNone; c <= CodecZstd; c++ {
		if c.String() == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown codec %q (want none, lz4 or zstd)", ErrInvalidConfig, s)
}

// Flags mark records the log writer adds for itself.
type Flags uint8

const (
	// FlagControl marks a control record: never delivered to applications.
	FlagControl Flags = 0x1
	// FlagEndOfStream marks the end-of-stream record; it is a control
	// record too, so it must be set together with FlagControl.
	FlagEndOfStream Flags = 0x2
	// FlagTagged marks a user record that carries an idempotency tag
	// (producer id and sequence) after its payload. Builder.Append sets it
	// from Record.ProducerID; callers never set it themselves.
	FlagTagged Flags = 0x4

	flagsDefined = FlagControl | FlagEndOfStream | FlagTagged
)

// Valid reports whether f uses only defined bits, end-of-stream only with
// control, and a tag only on a user record.
func (f Flags) Valid() bool {
	return f&^flagsDefined == 0 && (f&FlagEndOfStream == 0 || f&FlagControl != 0) && (f&FlagTagged == 0 || f&FlagControl == 0)
}

// IsTagged reports whether the record carries an idempotency tag.
func (f Flags) IsTagged() bool { return f&FlagTagged != 0 }

// MaxProducerIDBytes bounds a tag's producer id (dlog.MaxProducerIDLength).
const MaxProducerIDBytes = dlog.MaxProducerIDLength

// codecTagged is the bit of the header's codec byte that says some record
// of the set carries a tag.
const codecTagged = 0x80

// TagSize is the body bytes a record's tag takes after its payload: 0
// without a producer id, else 1 (id length) + the id + 8 (sequence).
func TagSize(producerID string) int {
	if producerID == "" {
		return 0
	}
	return 1 + len(producerID) + 8
}

// HasTags reports, from the header alone, whether a well-formed entry
// holds tagged records (so readers that want tags decode only those).
func HasTags(entry []byte) bool { return len(entry) >= HeaderSize && entry[1]&codecTagged != 0 }

// IsControl reports whether the record is a control record.
func (f Flags) IsControl() bool { return f&FlagControl != 0 }

// IsEndOfStream reports whether the record marks the end of the stream.
func (f Flags) IsEndOfStream() bool { return f&FlagEndOfStream != 0 }

// Record is one record of a set.
type Record struct {
	Flags Flags
	TxID  int64
	// Payload: on Append the builder copies it; from Decode it aliases the
	// entry (CodecNone) or the set's decompressed buffer.
	Payload []byte
	// Position is set by Decode: for a user record, its 0-based position
	// among the user records of its segment (the set's BasePosition plus
	// the user records before it in the set); −1 for a control record.
	// Append ignores it.
	Position int64
	// ProducerID and Sequence are the record's idempotency tag: Append
	// stores them (with FlagTagged) when ProducerID is set — 1 to
	// MaxProducerIDBytes bytes, Sequence >= 0, user records only — and
	// Decode returns them.
	ProducerID string
	Sequence   int64
}

// Header is the fixed-size start of an encoded set.
type Header struct {
	Version uint8
	Codec   Codec
	// Tagged is bit 7 of the codec byte: some record carries a tag.
	Tagged           bool
	Count            uint32 // records in the set, at least 1
	BasePosition     int64  // position of the set's first user record
	UncompressedSize uint32 // body size before compression
	StoredSize       uint32 // body size as stored after the header
}
