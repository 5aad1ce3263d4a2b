package bookiepb

import (
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EntryChecksum is the CRC32C an entry carries: over ledgerID, entryID and
// lac (each 8 bytes big-endian, two's complement) followed by payload.
func EntryChecksum(ledgerID, entryID, lac int64, payload []byte) uint32 {
	var hdr [24]byte
	binary.BigEndian.PutUint64(hdr[0:], uint64(ledgerID))
	binary.BigEndian.PutUint64(hdr[8:], uint64(entryID))
	binary.BigEndian.PutUint64(hdr[16:], uint64(lac))
	c := crc32.Update(0, castagnoli, hdr[:])
	return crc32.Update(c, castagnoli, payload)
}

// NewEntry frames payload as entry entryID of ledgerID with its checksum.
func NewEntry(ledgerID, entryID, lac int64, payload []byte) *Entry {
	return &Entry{
		LedgerId: ledgerID,
		EntryId:  entryID,
		Lac:      lac,
		Payload:  payload,
		Crc32C:   EntryChecksum(ledgerID, entryID, lac, payload),
	}
}

// Verify reports whether the entry's checksum matches its contents.
func (e *Entry) Verify() bool {
	return e != nil && e.Crc32C == EntryChecksum(e.LedgerId, e.EntryId, e.Lac, e.Payload)
}
