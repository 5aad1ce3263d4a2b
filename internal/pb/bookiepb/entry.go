package bookiepb

import "hash/crc32"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EntryChecksum is the CRC32C an entry carries: over ledgerID, entryID and
// lac (each 8 bytes big-endian, two's complement) followed by payload.
func EntryChecksum(ledgerID, entryID, lac int64, payload []byte) uint32 {
	// The 24 header bytes go through the table byte by byte: handing a
	// stack array to crc32.Update makes it escape (one allocation per
	// checksum), which costs more than the table walk.
	c := ^uint32(0)
	for _, v := range [3]uint64{uint64(ledgerID), uint64(entryID), uint64(lac)} {
		for shift := 56; shift >= 0; shift -= 8 {
			c = castagnoli[byte(c)^byte(v>>shift)] ^ c>>8
		}
	}
	return crc32.Update(^c, castagnoli, payload)
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
