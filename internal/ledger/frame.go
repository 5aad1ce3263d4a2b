package ledger

import (
	"encoding/binary"
	"fmt"
)

// Entry formats, recorded per ledger in metadata.LedgerMetadata.EntryFormat
// (see the package documentation, "Entry format").
const (
	// formatRaw: the bookie entry's payload is the caller's payload. The
	// ledgers of releases before formatLength; recovery cannot learn their
	// length.
	formatRaw = 0
	// formatLength: an 8-byte big-endian cumulative length (the payload
	// bytes of every entry up to and including this one), then the
	// caller's payload. The entry checksum covers both.
	formatLength = 1

	// currentFormat is the format of the ledgers Create makes.
	currentFormat = formatLength
	// lengthHeaderSize is the size of formatLength's header.
	lengthHeaderSize = 8
)

// checkFormat rejects a ledger whose entries this client cannot decode.
func checkFormat(id int64, format int) error {
	if format != formatRaw && format != formatLength {
		return fmt.Errorf("ledger %d: %w: unknown entry format %d (written by a newer release?)", id, ErrInvalidArgument, format)
	}
	return nil
}

// frame returns the bookie entry payload of a caller's payload: for
// formatLength a fresh buffer holding the cumulative length through this
// entry, then the payload; for formatRaw the payload itself.
func frame(format int, cumLength int64, payload []byte) []byte {
	if format == formatRaw {
		return payload
	}
	b := make([]byte, lengthHeaderSize+len(payload))
	binary.BigEndian.PutUint64(b, uint64(cumLength))
	copy(b[lengthHeaderSize:], payload)
	return b
}

// unframe splits a stored entry payload into the caller's payload and the
// cumulative length through the entry (-1 for formatRaw). ok is false when
// the bytes cannot be an entry of the format (too short for the header, or
// a cumulative length smaller than the entry's own payload): such an answer
// is treated like one that fails its checksum.
func unframe(format int, b []byte) (payload []byte, cumLength int64, ok bool) {
	if format == formatRaw {
		return b, -1, true
	}
	if len(b) < lengthHeaderSize {
		return nil, 0, false
	}
	n := int64(binary.BigEndian.Uint64(b))
	payload = b[lengthHeaderSize:]
	if n < int64(len(payload)) {
		return nil, 0, false
	}
	return payload, n, true
}
