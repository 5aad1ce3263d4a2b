package entrylog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Byte layout constants; see doc.go for the full format.
const (
	// FileHeaderSize is the size of the header at the start of every entry
	// log file. The first record starts at this offset.
	FileHeaderSize = 16
	// RecordHeaderSize is the size of a record's header; the payload follows.
	RecordHeaderSize = 24
	// MaxPayloadSize bounds a record's payload so that a corrupt length can
	// never make a reader allocate or read gigabytes.
	MaxPayloadSize = 64 << 20

	fileMagic   = "DLOGELOG"
	fileVersion = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one decoded entry log record.
type Record struct {
	LedgerID int64
	EntryID  int64
	// Payload aliases the buffer it was decoded from (see DecodeRecord and
	// Scanner.Record for how long it stays valid).
	Payload []byte
}

// recordChecksum is the CRC32C over the length field, ledger id, entry id and
// payload: everything in the record but the checksum field itself.
func recordChecksum(hdr []byte, payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, hdr[0:4])
	c = crc32.Update(c, castagnoli, hdr[8:RecordHeaderSize])
	return crc32.Update(c, castagnoli, payload)
}

// AppendRecord appends the encoded record to dst and returns the extended
// slice. It panics if payload is longer than MaxPayloadSize (callers check).
func AppendRecord(dst []byte, ledgerID, entryID int64, payload []byte) []byte {
	if len(payload) > MaxPayloadSize {
		panic("entrylog: payload too large")
	}
	var hdr [RecordHeaderSize]byte
	binary.BigEndian.PutUint32(hdr[0:], uint32(len(payload)))
	binary.BigEndian.PutUint64(hdr[8:], uint64(ledgerID))
	binary.BigEndian.PutUint64(hdr[16:], uint64(entryID))
	binary.BigEndian.PutUint32(hdr[4:], recordChecksum(hdr[:], payload))
	dst = append(dst, hdr[:]...)
	return append(dst, payload...)
}

// RecordSize is the number of bytes a record with a payload of n bytes
// occupies in a file.
func RecordSize(n int) int64 { return RecordHeaderSize + int64(n) }

// DecodeRecord decodes the record at the start of b. It returns the record
// (whose Payload aliases b), the number of bytes it occupies, and an error:
// io.ErrUnexpectedEOF when b ends before the record does (a torn tail, or
// more bytes are needed), or a *CorruptError (matching ErrCorrupt) when the
// length is out of range or the checksum does not match.
func DecodeRecord(b []byte) (Record, int, error) {
	if len(b) < RecordHeaderSize {
		return Record{}, 0, io.ErrUnexpectedEOF
	}
	n := binary.BigEndian.Uint32(b[0:])
	if n > MaxPayloadSize {
		return Record{}, 0, &CorruptError{LogID: -1, Offset: -1, Reason: fmt.Sprintf("payload length %d over limit", n)}
	}
	total := RecordHeaderSize + int(n)
	if len(b) < total {
		return Record{}, 0, io.ErrUnexpectedEOF
	}
	payload := b[RecordHeaderSize:total:total]
	if got, want := recordChecksum(b, payload), binary.BigEndian.Uint32(b[4:]); got != want {
		return Record{}, 0, &CorruptError{LogID: -1, Offset: -1, Reason: fmt.Sprintf("checksum %08x, want %08x", got, want)}
	}
	return Record{
		LedgerID: int64(binary.BigEndian.Uint64(b[8:])),
		EntryID:  int64(binary.BigEndian.Uint64(b[16:])),
		Payload:  payload,
	}, total, nil
}

// appendFileHeader appends the 16-byte file header.
func appendFileHeader(dst []byte) []byte {
	var h [FileHeaderSize]byte
	copy(h[:8], fileMagic)
	binary.BigEndian.PutUint32(h[8:], fileVersion)
	binary.BigEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	return append(dst, h[:]...)
}

// checkFileHeader verifies a file header.
func checkFileHeader(h []byte) error {
	if len(h) < FileHeaderSize {
		return errShortHeader
	}
	if string(h[:8]) != fileMagic {
		return errors.New("bad magic")
	}
	if crc32.Checksum(h[:12], castagnoli) != binary.BigEndian.Uint32(h[12:]) {
		return errors.New("header checksum mismatch")
	}
	if v := binary.BigEndian.Uint32(h[8:]); v != fileVersion {
		return fmt.Errorf("unsupported version %d", v)
	}
	return nil
}

var errShortHeader = errors.New("short header")
