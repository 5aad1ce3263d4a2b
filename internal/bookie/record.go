package bookie

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// Journal record types (the first byte of every record the bookie writes
// to its journal). See doc.go for the layouts.
const (
	recordAdd    byte = 1
	recordFence  byte = 2
	recordDelete byte = 3
)

// addFlagRecovery marks an add made with the recovery flag.
const addFlagRecovery byte = 1

// storedEntryVersion is the first byte of an entry as kept in the ledger
// store.
const storedEntryVersion byte = 1

// storedEntryHeader is version u8 | lac i64 | crc32c u32.
const storedEntryHeader = 1 + 8 + 4

// errBadRecord reports a journal record that does not decode. The journal
// checksums every record, so this is a bug or a format mismatch, never a
// torn write: replay stops and the bookie refuses to start.
var errBadRecord = errors.New("bookie: malformed journal record")

// record is a decoded journal record. Key and Stored alias the input.
type record struct {
	Type     byte
	LedgerID int64
	EntryID  int64 // add only
	Recovery bool  // add only
	Key      []byte
	// Stored is an add's entry in the ledger store's format (see
	// encodeStoredEntry): the tail of the record, handed to AddEntry as is.
	Stored []byte
}

// maxAddRecordOverhead bounds the bytes an add record holds beyond the
// payload: type, flags, ids, key length and key, stored-entry header.
const maxAddRecordOverhead = 1 + 1 + 8 + 8 + binary.MaxVarintLen64 + MaxMasterKeyBytes + storedEntryHeader

// appendAddRecord appends an add record for e to b.
func appendAddRecord(b []byte, e *bookiepb.Entry, key []byte, recovery bool) []byte {
	var flags byte
	if recovery {
		flags |= addFlagRecovery
	}
	b = append(b, recordAdd, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(e.LedgerId))
	b = binary.BigEndian.AppendUint64(b, uint64(e.EntryId))
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	return appendStoredEntry(b, e.Lac, e.Crc32C, e.Payload)
}

// appendFenceRecord appends a fence record to b.
func appendFenceRecord(b []byte, ledgerID int64, key []byte) []byte {
	b = append(b, recordFence)
	b = binary.BigEndian.AppendUint64(b, uint64(ledgerID))
	b = binary.AppendUvarint(b, uint64(len(key)))
	return append(b, key...)
}

// appendDeleteRecord appends a delete record to b.
func appendDeleteRecord(b []byte, ledgerID int64) []byte {
	b = append(b, recordDelete)
	return binary.BigEndian.AppendUint64(b, uint64(ledgerID))
}

// decodeRecord decodes one journal record. It accepts exactly what the
// append functions produce: non-negative ids, a minimal key length of at
// most MaxMasterKeyBytes, no trailing bytes after a fence or a delete, and a
// well-formed stored entry (whose checksum decodeRecord does not check).
func decodeRecord(b []byte) (record, error) {
	if len(b) == 0 {
		return record{}, fmt.Errorf("%w: empty", errBadRecord)
	}
	r := record{Type: b[0]}
	rest := b[1:]
	switch r.Type {
	case recordAdd:
		if len(rest) < 1+16 {
			return record{}, fmt.Errorf("%w: add of %d bytes", errBadRecord, len(b))
		}
		flags := rest[0]
		if flags&^addFlagRecovery != 0 {
			return record{}, fmt.Errorf("%w: add flags %#x", errBadRecord, flags)
		}
		r.Recovery = flags&addFlagRecovery != 0
		r.LedgerID = int64(binary.BigEndian.Uint64(rest[1:]))
		r.EntryID = int64(binary.BigEndian.Uint64(rest[9:]))
		if r.LedgerID < 0 || r.EntryID < 0 {
			return record{}, fmt.Errorf("%w: add ids %d:%d", errBadRecord, r.LedgerID, r.EntryID)
		}
		key, tail, err := decodeKey(rest[17:])
		if err != nil {
			return record{}, err
		}
		r.Key = key
		if _, _, _, err := decodeStoredEntry(tail); err != nil {
			return record{}, fmt.Errorf("%w: add %d:%d: %w", errBadRecord, r.LedgerID, r.EntryID, err)
		}
		r.Stored = tail
	case recordFence:
		if len(rest) < 8 {
			return record{}, fmt.Errorf("%w: fence of %d bytes", errBadRecord, len(b))
		}
		r.LedgerID = int64(binary.BigEndian.Uint64(rest))
		key, tail, err := decodeKey(rest[8:])
		if err != nil {
			return record{}, err
		}
		if len(tail) != 0 {
			return record{}, fmt.Errorf("%w: %d bytes after a fence", errBadRecord, len(tail))
		}
		r.Key = key
	case recordDelete:
		if len(rest) != 8 {
			return record{}, fmt.Errorf("%w: delete of %d bytes", errBadRecord, len(b))
		}
		r.LedgerID = int64(binary.BigEndian.Uint64(rest))
	default:
		return record{}, fmt.Errorf("%w: type %d", errBadRecord, r.Type)
	}
	if r.LedgerID < 0 {
		return record{}, fmt.Errorf("%w: ledger %d", errBadRecord, r.LedgerID)
	}
	return r, nil
}

// decodeKey reads uvarint length + key; the key is never nil (an empty key
// is a key).
func decodeKey(b []byte) (key, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || k != uvarintLen(n) || n > MaxMasterKeyBytes || uint64(len(b)-k) < n {
		return nil, nil, fmt.Errorf("%w: bad master key length", errBadRecord)
	}
	end := k + int(n)
	return b[k:end:end], b[end:], nil
}

func uvarintLen(n uint64) int {
	var buf [binary.MaxVarintLen64]byte
	return binary.PutUvarint(buf[:], n)
}

// appendStoredEntry appends an entry in the ledger store's format:
//
//	version u8 (1) | lac i64 | crc32c u32 | payload
//
// (big-endian). Ledger and entry ids are the store's keys; the checksum is
// the one the writer computed (bookiepb.EntryChecksum), kept end to end.
func appendStoredEntry(b []byte, lac int64, crc uint32, payload []byte) []byte {
	b = append(b, storedEntryVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(lac))
	b = binary.BigEndian.AppendUint32(b, crc)
	return append(b, payload...)
}

// decodeStoredEntry splits a stored entry. payload aliases b.
func decodeStoredEntry(b []byte) (lac int64, crc uint32, payload []byte, err error) {
	if len(b) < storedEntryHeader || b[0] != storedEntryVersion {
		return 0, 0, nil, errors.New("bad stored entry header")
	}
	lac = int64(binary.BigEndian.Uint64(b[1:]))
	if lac < -1 {
		return 0, 0, nil, fmt.Errorf("stored entry lac %d", lac)
	}
	return lac, binary.BigEndian.Uint32(b[9:]), b[storedEntryHeader:], nil
}

// entryFromStored rebuilds the wire entry of ledgerID:entryID from its
// stored form and verifies its checksum; ok is false when the bytes do not
// decode or do not match (corruption: never answered as data).
func entryFromStored(ledgerID, entryID int64, b []byte) (*bookiepb.Entry, bool) {
	lac, crc, payload, err := decodeStoredEntry(b)
	if err != nil {
		return nil, false
	}
	e := &bookiepb.Entry{LedgerId: ledgerID, EntryId: entryID, Lac: lac, Payload: payload, Crc32C: crc}
	if !e.Verify() {
		return nil, false
	}
	return e, true
}
