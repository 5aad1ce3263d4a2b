package journal

import (
	"encoding/binary"
	"hash/crc32"
)

// On-disk sizes; doc.go describes the layout byte by byte.
const (
	fileHeaderSize   = 32
	recordHeaderSize = 8
	fileFormatV1     = 1
)

// fileMagic opens every journal file.
var fileMagic = [8]byte{'d', 'l', 'o', 'g', 'j', 'r', 'n', 'l'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// recordStatus classifies the bytes at a record offset.
type recordStatus int

const (
	// recordOK: a complete record whose checksum matches.
	recordOK recordStatus = iota + 1
	// recordEnd: a zero length field, the end of written data.
	recordEnd
	// recordBad: a checksum mismatch, or a length that runs past the end
	// of the file (a torn or corrupt record).
	recordBad
)

func (s recordStatus) String() string {
	switch s {
	case recordOK:
		return "ok"
	case recordEnd:
		return "end"
	case recordBad:
		return "bad"
	}
	return "invalid"
}

// recordChecksum is the CRC32C over the 4-byte length field and the payload.
func recordChecksum(lenField []byte, payload []byte) uint32 {
	return crc32.Update(lengthChecksum(binary.LittleEndian.Uint32(lenField)), castagnoli, payload)
}

// lengthChecksum is the CRC32C of the 4-byte little-endian encoding of n,
// computed bytewise so that no slice of a stack array reaches crc32 (which
// would move it to the heap on every Append).
func lengthChecksum(n uint32) uint32 {
	crc := ^uint32(0)
	for range 4 {
		crc = castagnoli[byte(crc)^byte(n)] ^ crc>>8
		n >>= 8
	}
	return ^crc
}

// appendRecord appends the framed record to b.
func appendRecord(b []byte, payload []byte) []byte {
	var h [recordHeaderSize]byte
	putRecordHeader(h[:], payload)
	return append(append(b, h[:]...), payload...)
}

// decodeRecord decodes the record at the start of b, where b holds every
// byte from the record's offset to the end of the file (or at least the
// whole record). It returns the payload (aliasing b) and the framed size.
// A short b whose bytes are all zero is the end of data; a short b with a
// non-zero byte is a torn record.
func decodeRecord(b []byte) (payload []byte, size int, st recordStatus) {
	if len(b) < recordHeaderSize {
		if allZero(b) {
			return nil, 0, recordEnd
		}
		return nil, 0, recordBad
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n == 0 {
		return nil, 0, recordEnd
	}
	if uint64(n) > uint64(len(b)-recordHeaderSize) {
		return nil, 0, recordBad
	}
	size = recordHeaderSize + int(n)
	payload = b[recordHeaderSize:size]
	if binary.LittleEndian.Uint32(b[4:8]) != recordChecksum(b[0:4], payload) {
		return nil, 0, recordBad
	}
	return payload, size, recordOK
}

// fileHeader is the first fileHeaderSize bytes of a journal file.
type fileHeader struct {
	id   uint64 // this file's id; must match its name
	prev uint64 // id of the journal file written before this one; 0 if none
}

func (h fileHeader) encode() []byte {
	b := make([]byte, fileHeaderSize)
	copy(b[0:8], fileMagic[:])
	binary.LittleEndian.PutUint32(b[8:12], fileFormatV1)
	binary.LittleEndian.PutUint64(b[12:20], h.id)
	binary.LittleEndian.PutUint64(b[20:28], h.prev)
	binary.LittleEndian.PutUint32(b[28:32], crc32.Checksum(b[0:28], castagnoli))
	return b
}

// decodeFileHeader reports ok=false for anything but a well-formed
// version-1 header with a matching checksum.
func decodeFileHeader(b []byte) (h fileHeader, ok bool) {
	if len(b) < fileHeaderSize || [8]byte(b[0:8]) != fileMagic {
		return fileHeader{}, false
	}
	if binary.LittleEndian.Uint32(b[8:12]) != fileFormatV1 {
		return fileHeader{}, false
	}
	if binary.LittleEndian.Uint32(b[28:32]) != crc32.Checksum(b[0:28], castagnoli) {
		return fileHeader{}, false
	}
	return fileHeader{
		id:   binary.LittleEndian.Uint64(b[12:20]),
		prev: binary.LittleEndian.Uint64(b[20:28]),
	}, true
}

func allZero(b []byte) bool { return lastNonZero(b) == 0 }

// putRecordHeader writes the 8-byte header of payload into h.
func putRecordHeader(h []byte, payload []byte) {
	n := uint32(len(payload))
	binary.LittleEndian.PutUint32(h[0:4], n)
	binary.LittleEndian.PutUint32(h[4:8], crc32.Update(lengthChecksum(n), castagnoli, payload))
}
