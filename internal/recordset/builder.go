package recordset

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Config sizes a Builder.
type Config struct {
	// MaxRecordBytes bounds one record's payload. A larger record fails
	// with ErrRecordTooLarge (a definite error for the application).
	// Default 1 MiB. At most MaxSetBytes − RecordOverhead.
	MaxRecordBytes int
	// MaxSetBytes bounds the uncompressed body: records with their
	// RecordOverhead-byte headers. An Append that would exceed it fails with
	// ErrSetFull. Larger sets amortise per-entry costs; smaller ones bound
	// latency and the memory of readers. Default 2 MiB; at most
	// MaxBodyBytes.
	MaxSetBytes int
	// FlushBytes is when Full starts reporting true: the writer's cue to
	// transmit. Default 256 KiB; 0 means MaxSetBytes.
	FlushBytes int
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{MaxRecordBytes: 1 << 20, MaxSetBytes: 2 << 20, FlushBytes: 256 << 10}
}

// Validate checks the bounds documented on Config; errors wrap
// ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.MaxSetBytes < RecordOverhead+1 || c.MaxSetBytes > MaxBodyBytes:
		return fmt.Errorf("%w: MaxSetBytes %d outside [%d, %d]", ErrInvalidConfig, c.MaxSetBytes, RecordOverhead+1, MaxBodyBytes)
	case c.MaxRecordBytes < 1 || c.MaxRecordBytes > c.MaxSetBytes-RecordOverhead:
		return fmt.Errorf("%w: MaxRecordBytes %d outside [1, MaxSetBytes−%d = %d]", ErrInvalidConfig, c.MaxRecordBytes, RecordOverhead, c.MaxSetBytes-RecordOverhead)
	case c.FlushBytes < 0 || c.FlushBytes > c.MaxSetBytes:
		return fmt.Errorf("%w: FlushBytes %d outside [0, MaxSetBytes = %d]", ErrInvalidConfig, c.FlushBytes, c.MaxSetBytes)
	}
	return nil
}

// Builder accumulates records into one set. It is not safe for
// concurrent use; reuse it with Reset.
type Builder struct {
	cfg          Config
	body         []byte
	count        int
	userRecords  int
	tagged       int
	basePosition int64
}

// NewBuilder returns an empty builder whose first user record will have
// position 0 (see Reset). Errors: those of Config.Validate
// (ErrInvalidConfig).
func NewBuilder(cfg Config) (*Builder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.FlushBytes == 0 {
		cfg.FlushBytes = cfg.MaxSetBytes
	}
	return &Builder{cfg: cfg}, nil
}

// Reset empties the builder, keeping its buffer, and sets the position of
// the next set's first user record: the number of user records the segment
// held before this set. It panics if basePosition < 0.
func (b *Builder) Reset(basePosition int64) {
	if basePosition < 0 {
		panic(fmt.Sprintf("recordset: negative base position %d", basePosition))
	}
	b.body = b.body[:0]
	b.count, b.userRecords, b.tagged, b.basePosition = 0, 0, 0, basePosition
}

// Append adds a copy of the record, with its tag when r.ProducerID is
// set. Errors: ErrInvalidRecord (flags, including FlagTagged set by the
// caller; a tag that is too long, has a negative sequence, or is on a
// control record), ErrRecordTooLarge (payload over MaxRecordBytes: never
// fits), ErrSetFull (fits only in an emptier set). On error the builder is
// unchanged.
func (b *Builder) Append(r Record) error {
	if !r.Flags.Valid() || r.Flags.IsTagged() {
		return fmt.Errorf("%w: flags %#x", ErrInvalidRecord, uint8(r.Flags))
	}
	switch {
	case r.ProducerID == "" && r.Sequence != 0:
		return fmt.Errorf("%w: sequence %d without a producer id", ErrInvalidRecord, r.Sequence)
	case r.ProducerID != "" && (len(r.ProducerID) > MaxProducerIDBytes || r.Sequence < 0 || r.Flags.IsControl()):
		return fmt.Errorf("%w: tag %q/%d (at most %d bytes, sequence >= 0, user records only)", ErrInvalidRecord, r.ProducerID, r.Sequence, MaxProducerIDBytes)
	}
	if len(r.Payload) > b.cfg.MaxRecordBytes {
		return fmt.Errorf("%w: payload of %d bytes, at most %d", ErrRecordTooLarge, len(r.Payload), b.cfg.MaxRecordBytes)
	}
	tag := TagSize(r.ProducerID)
	if len(b.body)+RecordOverhead+len(r.Payload)+tag > b.cfg.MaxSetBytes {
		return fmt.Errorf("%w: %d + %d bytes exceed %d", ErrSetFull, len(b.body), RecordOverhead+len(r.Payload)+tag, b.cfg.MaxSetBytes)
	}
	if !r.Flags.IsControl() && b.userRecords > 0 && b.basePosition > math.MaxInt64-int64(b.userRecords) {
		return fmt.Errorf("%w: position overflow", ErrInvalidRecord)
	}
	flags := r.Flags
	if tag > 0 {
		flags |= FlagTagged
	}
	b.body = append(b.body, byte(flags))
	b.body = binary.BigEndian.AppendUint64(b.body, uint64(r.TxID))
	b.body = binary.BigEndian.AppendUint32(b.body, uint32(len(r.Payload)))
	b.body = append(b.body, r.Payload...)
	if tag > 0 {
		b.body = append(b.body, byte(len(r.ProducerID)))
		b.body = append(b.body, r.ProducerID...)
		b.body = binary.BigEndian.AppendUint64(b.body, uint64(r.Sequence))
		b.tagged++
	}
	b.count++
	if !r.Flags.IsControl() {
		b.userRecords++
	}
	return nil
}

// Len returns the number of records.
func (b *Builder) Len() int { return b.count }

// UserRecords returns the number of records without FlagControl.
func (b *Builder) UserRecords() int { return b.userRecords }

// Size returns the uncompressed body size in bytes.
func (b *Builder) Size() int { return len(b.body) }

// Full reports whether the body reached FlushBytes.
func (b *Builder) Full() bool { return len(b.body) >= b.cfg.FlushBytes }

// Build encodes the set into a new slice the caller owns. Errors: those
// of AppendTo.
func (b *Builder) Build(codec Codec) ([]byte, error) { return b.AppendTo(nil, codec) }

// AppendTo appends the encoded set to dst. The body is compressed with
// codec, and stored uncompressed (CodecNone) when compression does not
// make it smaller. Errors: ErrEmpty, ErrInvalidConfig (unknown codec). The
// builder is unchanged, so a set can be built again (for another codec).
func (b *Builder) AppendTo(dst []byte, codec Codec) ([]byte, error) {
	if !codec.Valid() {
		return dst, fmt.Errorf("%w: codec %v", ErrInvalidConfig, codec)
	}
	if b.count == 0 {
		return dst, ErrEmpty
	}
	start := len(dst)
	dst = appendHeader(dst, Header{Version: Version, Codec: CodecNone, Count: uint32(b.count),
		BasePosition: b.basePosition, UncompressedSize: uint32(len(b.body))})
	stored := CodecNone
	switch codec {
	case CodecLZ4:
		dst, stored = appendLZ4(dst, b.body)
	case CodecZstd:
		dst, stored = appendZstd(dst, b.body)
	}
	if stored == CodecNone {
		dst = append(dst[:start+HeaderSize], b.body...)
	}
	dst[start+1] = byte(stored)
	if b.tagged > 0 {
		dst[start+1] |= codecTagged
	}
	binary.BigEndian.PutUint32(dst[start+18:], uint32(len(dst)-start-HeaderSize))
	return dst, nil
}

func appendHeader(dst []byte, h Header) []byte {
	codec := byte(h.Codec)
	if h.Tagged {
		codec |= codecTagged
	}
	dst = append(dst, h.Version, codec)
	dst = binary.BigEndian.AppendUint32(dst, h.Count)
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.BasePosition))
	dst = binary.BigEndian.AppendUint32(dst, h.UncompressedSize)
	return binary.BigEndian.AppendUint32(dst, h.StoredSize)
}
