package ledgerstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dlog-io/dlog/internal/entrylog"
)

// Key prefixes of the pebble index; see doc.go for the layout.
const (
	prefixMeta   byte = 0x00
	prefixIndex  byte = 0x01
	prefixLedger byte = 0x02
	prefixUsage  byte = 0x03
)

var (
	metaVersionKey = []byte{prefixMeta, 'v'}
	metaMarkKey    = []byte{prefixMeta, 'm'}
)

// formatVersion is stored under metaVersionKey.
const formatVersion = 1

var errBadKey = errors.New("ledgerstore: malformed key")
var errBadValue = errors.New("ledgerstore: malformed value")

func appendID(dst []byte, id int64) []byte { return binary.BigEndian.AppendUint64(dst, uint64(id)) }

// indexKey is 0x01 | ledger | entry: a ledger's entries are contiguous and
// in entry order because ids are non-negative and big-endian.
func indexKey(ledgerID, entryID int64) []byte {
	k := make([]byte, 0, 17)
	k = append(k, prefixIndex)
	k = appendID(k, ledgerID)
	return appendID(k, entryID)
}

// ledgerIndexBounds returns [lower, upper) covering every index key of a
// ledger.
func ledgerIndexBounds(ledgerID int64) (lower, upper []byte) {
	lower = appendID([]byte{prefixIndex}, ledgerID)
	return lower, prefixSuccessor(lower)
}

// prefixSuccessor returns the smallest key greater than every key starting
// with p.
func prefixSuccessor(p []byte) []byte {
	s := append([]byte(nil), p...)
	for i := len(s) - 1; i >= 0; i-- {
		s[i]++
		if s[i] != 0 {
			return s[:i+1]
		}
	}
	return nil // p was all 0xff: no upper bound
}

func decodeIndexKey(k []byte) (ledgerID, entryID int64, err error) {
	if len(k) != 17 || k[0] != prefixIndex {
		return 0, 0, errBadKey
	}
	ledgerID = int64(binary.BigEndian.Uint64(k[1:]))
	entryID = int64(binary.BigEndian.Uint64(k[9:]))
	if ledgerID < 0 || entryID < 0 {
		return 0, 0, errBadKey
	}
	return ledgerID, entryID, nil
}

// indexValue is log id | offset | payload size: 8+8+4 bytes.
func indexValue(loc entrylog.Location) []byte {
	v := make([]byte, 0, 20)
	v = appendID(v, loc.LogID)
	v = appendID(v, loc.Offset)
	return binary.BigEndian.AppendUint32(v, uint32(loc.Size))
}

func decodeIndexValue(v []byte) (entrylog.Location, error) {
	if len(v) != 20 {
		return entrylog.Location{}, errBadValue
	}
	loc := entrylog.Location{
		LogID:  int64(binary.BigEndian.Uint64(v[0:])),
		Offset: int64(binary.BigEndian.Uint64(v[8:])),
		Size:   int32(binary.BigEndian.Uint32(v[16:])),
	}
	if loc.LogID <= 0 || loc.Offset < entrylog.FileHeaderSize || loc.Size < 0 || loc.Size > entrylog.MaxPayloadSize {
		return entrylog.Location{}, errBadValue
	}
	return loc, nil
}

func ledgerKey(ledgerID int64) []byte { return appendID([]byte{prefixLedger}, ledgerID) }

func decodeLedgerKey(k []byte) (int64, error) {
	if len(k) != 9 || k[0] != prefixLedger {
		return 0, errBadKey
	}
	id := int64(binary.BigEndian.Uint64(k[1:]))
	if id < 0 {
		return 0, errBadKey
	}
	return id, nil
}

// ledgerMeta is the persisted per-ledger state.
type ledgerMeta struct {
	deleted   bool // a tombstone: the ledger was deleted; refuse to recreate it
	fenced    bool
	lac       int64  // -1: none known
	masterKey []byte // nil: not recorded yet
	// deleting is in memory only: a DeleteLedger is in progress, so a
	// missing index entry may be its doing.
	deleting bool
}

const (
	flagFenced    = 1 << 0
	flagMasterKey = 1 << 1
	flagDeleted   = 1 << 2
	flagsKnown    = flagFenced | flagMasterKey | flagDeleted

	ledgerValueVersion = 1
	maxMasterKeyBytes  = 1 << 10
)

// ledgerValue is version u8 | flags u8 | lac i64 | [uvarint len | key] (the
// key only when flagMasterKey is set).
func ledgerValue(m ledgerMeta) []byte {
	v := make([]byte, 0, 10+binary.MaxVarintLen64+len(m.masterKey))
	var flags byte
	if m.fenced {
		flags |= flagFenced
	}
	if m.masterKey != nil {
		flags |= flagMasterKey
	}
	if m.deleted {
		flags |= flagDeleted
	}
	v = append(v, ledgerValueVersion, flags)
	v = appendID(v, m.lac)
	if m.masterKey != nil {
		v = binary.AppendUvarint(v, uint64(len(m.masterKey)))
		v = append(v, m.masterKey...)
	}
	return v
}

func decodeLedgerValue(v []byte) (ledgerMeta, error) {
	if len(v) < 10 || v[0] != ledgerValueVersion || v[1]&^flagsKnown != 0 {
		return ledgerMeta{}, errBadValue
	}
	flags := v[1]
	m := ledgerMeta{
		fenced:  flags&flagFenced != 0,
		deleted: flags&flagDeleted != 0,
		lac:     int64(binary.BigEndian.Uint64(v[2:])),
	}
	if m.lac < -1 {
		return ledgerMeta{}, errBadValue
	}
	rest := v[10:]
	if flags&flagMasterKey != 0 {
		n, k := binary.Uvarint(rest)
		// Only the minimal varint encoding is accepted, so that a value has
		// exactly one encoding.
		if k <= 0 || k != len(binary.AppendUvarint(nil, n)) || n > maxMasterKeyBytes || uint64(len(rest)-k) != n {
			return ledgerMeta{}, errBadValue
		}
		m.masterKey = append([]byte{}, rest[k:]...)
		rest = nil
	}
	if len(rest) != 0 {
		return ledgerMeta{}, errBadValue
	}
	return m, nil
}

// usageKey is 0x03 | log | ledger; its value is the u64 number of record
// bytes (headers included) of that ledger indexed into that log.
func usageKey(logID, ledgerID int64) []byte {
	k := make([]byte, 0, 17)
	k = append(k, prefixUsage)
	k = appendID(k, logID)
	return appendID(k, ledgerID)
}

func logUsageBounds(logID int64) (lower, upper []byte) {
	lower = appendID([]byte{prefixUsage}, logID)
	return lower, prefixSuccessor(lower)
}

func decodeUsageKey(k []byte) (logID, ledgerID int64, err error) {
	if len(k) != 17 || k[0] != prefixUsage {
		return 0, 0, errBadKey
	}
	logID = int64(binary.BigEndian.Uint64(k[1:]))
	ledgerID = int64(binary.BigEndian.Uint64(k[9:]))
	if logID <= 0 || ledgerID < 0 {
		return 0, 0, errBadKey
	}
	return logID, ledgerID, nil
}

func usageValue(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func decodeUsageValue(v []byte) (int64, error) {
	if len(v) != 8 {
		return 0, errBadValue
	}
	n := int64(binary.BigEndian.Uint64(v))
	if n < 0 {
		return 0, errBadValue
	}
	return n, nil
}

func versionValue() []byte { return binary.BigEndian.AppendUint32(nil, formatVersion) }

func decodeVersionValue(v []byte) (uint32, error) {
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: version", errBadValue)
	}
	return binary.BigEndian.Uint32(v), nil
}
