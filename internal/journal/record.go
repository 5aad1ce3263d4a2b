package journal

import (
	"encoding/binary"
	"hash/crc32"
)

// On-disk sizes and versions; doc.go describes the layout byte by byte.
const (
	// fileHeaderSizeV1 is the header of a version-1 file (read only).
	fileHeaderSizeV1 = 32
	// fileHeaderSize is the header of a version-2 file, the one written.
	fileHeaderSize   = 40
	recordHeaderSize = 8
	fileFormatV1     = 1
	fileFormatV2     = 2
	// endMarkerBytes of zeros follow the last record of every group write
	// (see Journal.padToPage): a zero length field where the data ends.
	endMarkerBytes = recordHeaderSize
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
	// of the file (a torn or corrupt record, or in a recycled file a
	// record of an earlier life).
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

// fileSalt is what every record checksum of a file is masked with (XOR):
// 0 in version-1 files, the low 32 bits of the file id in version-2 files.
// A recycled file gets a new id, so the records of its earlier lives (whose
// ids differ from the new one by less than 2^32) never match in its new
// life: an old record's stored checksum is its CRC XOR the old salt, which
// differs from its CRC XOR the new salt.
func fileSalt(version uint32, id uint64) uint32 {
	if version == fileFormatV1 {
		return 0
	}
	return uint32(id)
}

// recordChecksum is the CRC32C over the 4-byte length field and the
// payload, unmasked.
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

// appendRecord appends the framed record to b, its checksum masked with
// salt.
func appendRecord(b []byte, payload []byte, salt uint32) []byte {
	var h [recordHeaderSize]byte
	putRecordHeader(h[:], payload)
	binary.LittleEndian.PutUint32(h[4:8], binary.LittleEndian.Uint32(h[4:8])^salt)
	return append(append(b, h[:]...), payload...)
}

// maskRecords XORs the checksum field of every framed record in b (records
// back to back, unmasked, as appenders queue them, and nothing else) with
// salt, in place.
func maskRecords(b []byte, salt uint32) {
	if salt == 0 {
		return
	}
	for off := 0; off+recordHeaderSize <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if n == 0 {
			return // not a record: b was cut wrong
		}
		c := b[off+4 : off+8]
		binary.LittleEndian.PutUint32(c, binary.LittleEndian.Uint32(c)^salt)
		off += recordHeaderSize + n
	}
}

// decodeRecord decodes the record at the start of b, where b holds every
// byte from the record's offset to the end of the file (or at least the
// whole record), checking its checksum against salt. It returns the
// payload (aliasing b) and the framed size. A short b whose bytes are all
// zero is the end of data; a short b with a non-zero byte is a torn record.
func decodeRecord(b []byte, salt uint32) (payload []byte, size int, st recordStatus) {
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
	if binary.LittleEndian.Uint32(b[4:8]) != recordChecksum(b[0:4], payload)^salt {
		return nil, 0, recordBad
	}
	return payload, size, recordOK
}

// fileHeader is the header of a journal file.
type fileHeader struct {
	version uint32 // fileFormatV1 (read only) or fileFormatV2
	id      uint64 // this life's file id; must match the file name
	prev    uint64 // id of the journal file written before this one; 0 if none
	// prevEnd is where the records of file prev end (its first byte after
	// the last record), 0 if unknown. Version 2 only.
	prevEnd int64
}

// size is the header's length on disk.
func (h fileHeader) size() int64 {
	if h.version == fileFormatV1 {
		return fileHeaderSizeV1
	}
	return fileHeaderSize
}

// salt is what the file's record checksums are masked with.
func (h fileHeader) salt() uint32 { return fileSalt(h.version, h.id) }

// encode returns the version-2 header (the only version written).
func (h fileHeader) encode() []byte {
	b := make([]byte, fileHeaderSize)
	copy(b[0:8], fileMagic[:])
	binary.LittleEndian.PutUint32(b[8:12], fileFormatV2)
	binary.LittleEndian.PutUint64(b[12:20], h.id)
	binary.LittleEndian.PutUint64(b[20:28], h.prev)
	binary.LittleEndian.PutUint64(b[28:36], uint64(h.prevEnd))
	binary.LittleEndian.PutUint32(b[36:40], crc32.Checksum(b[0:36], castagnoli))
	return b
}

// decodeFileHeader reports ok=false for anything but a well-formed
// version-1 or version-2 header with a matching checksum. b holds the
// file's first bytes (fileHeaderSize, or fewer if the file is shorter).
func decodeFileHeader(b []byte) (h fileHeader, ok bool) {
	if len(b) < fileHeaderSizeV1 || [8]byte(b[0:8]) != fileMagic {
		return fileHeader{}, false
	}
	switch binary.LittleEndian.Uint32(b[8:12]) {
	case fileFormatV1:
		if binary.LittleEndian.Uint32(b[28:32]) != crc32.Checksum(b[0:28], castagnoli) {
			return fileHeader{}, false
		}
		return fileHeader{
			version: fileFormatV1,
			id:      binary.LittleEndian.Uint64(b[12:20]),
			prev:    binary.LittleEndian.Uint64(b[20:28]),
		}, true
	case fileFormatV2:
		if len(b) < fileHeaderSize || binary.LittleEndian.Uint32(b[36:40]) != crc32.Checksum(b[0:36], castagnoli) {
			return fileHeader{}, false
		}
		end := binary.LittleEndian.Uint64(b[28:36])
		if end > 1<<62 {
			return fileHeader{}, false
		}
		return fileHeader{
			version: fileFormatV2,
			id:      binary.LittleEndian.Uint64(b[12:20]),
			prev:    binary.LittleEndian.Uint64(b[20:28]),
			prevEnd: int64(end),
		}, true
	}
	return fileHeader{}, false
}

func allZero(b []byte) bool { return lastNonZero(b) == 0 }

// putRecordHeader writes the 8-byte header of payload into h, its checksum
// unmasked.
func putRecordHeader(h []byte, payload []byte) {
	n := uint32(len(payload))
	binary.LittleEndian.PutUint32(h[0:4], n)
	binary.LittleEndian.PutUint32(h[4:8], crc32.Update(lengthChecksum(n), castagnoli, payload))
}
