package dlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DLSN is a record's position in a log: the log segment sequence number
// (lssn), the entry id inside the segment's ledger and the slot of the record
// inside that entry. DLSNs are totally ordered per log (Compare) and every
// record has exactly one.
//
// The text form is "lssn:entry:slot", e.g. "3:1042:7"; ParseDLSN reads it back.
// The binary form (MarshalBinary) is 25 bytes: a version byte (1) followed by
// the three fields as big-endian int64, so byte order equals DLSN order for
// valid (non-negative) DLSNs.
type DLSN struct {
	LSSN    int64 // segment sequence number, >= 1
	EntryID int64 // entry id inside the segment's ledger, >= 0
	SlotID  int64 // record slot inside the entry, >= 0
}

var (
	// InitialDLSN is the first possible position of any log.
	InitialDLSN = DLSN{LSSN: 1, EntryID: 0, SlotID: 0}
	// InvalidDLSN is the zero-value sentinel returned alongside errors.
	InvalidDLSN = DLSN{}
)

// ErrInvalidDLSN reports a DLSN that does not parse or is out of range.
var ErrInvalidDLSN = errors.New("dlog: invalid DLSN")

const dlsnBinaryVersion = 1

// DLSNBinarySize is the length of a DLSN's binary form.
const DLSNBinarySize = 25

// Compare returns -1, 0 or +1 as d is before, equal to or after o.
func (d DLSN) Compare(o DLSN) int {
	switch {
	case d.LSSN != o.LSSN:
		return cmp64(d.LSSN, o.LSSN)
	case d.EntryID != o.EntryID:
		return cmp64(d.EntryID, o.EntryID)
	default:
		return cmp64(d.SlotID, o.SlotID)
	}
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Less reports whether d comes strictly before o.
func (d DLSN) Less(o DLSN) bool { return d.Compare(o) < 0 }

// IsValid reports whether d can be the position of a record.
func (d DLSN) IsValid() bool { return d.LSSN >= 1 && d.EntryID >= 0 && d.SlotID >= 0 }

// Next returns the position of the next slot in the same entry.
func (d DLSN) Next() DLSN { return DLSN{d.LSSN, d.EntryID, d.SlotID + 1} }

// NextSegment returns the first position of the following segment.
func (d DLSN) NextSegment() DLSN { return DLSN{d.LSSN + 1, 0, 0} }

// String formats d as "lssn:entry:slot".
func (d DLSN) String() string {
	return strconv.FormatInt(d.LSSN, 10) + ":" + strconv.FormatInt(d.EntryID, 10) + ":" + strconv.FormatInt(d.SlotID, 10)
}

// ParseDLSN parses the text form "lssn:entry:slot". It returns an error
// wrapping ErrInvalidDLSN for anything that is not three decimal
// non-negative int64 fields with lssn >= 1.
func ParseDLSN(s string) (DLSN, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return InvalidDLSN, fmt.Errorf("%w: %q: want lssn:entry:slot", ErrInvalidDLSN, s)
	}
	var v [3]int64
	for i, p := range parts {
		// Reject signs, spaces and leading zeros so that the text form is
		// canonical: ParseDLSN(d.String()) == d and nothing else maps to d.
		if p == "" || (len(p) > 1 && p[0] == '0') || strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return InvalidDLSN, fmt.Errorf("%w: %q: field %d is not a decimal number", ErrInvalidDLSN, s, i+1)
		}
		n, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return InvalidDLSN, fmt.Errorf("%w: %q: %v", ErrInvalidDLSN, s, err)
		}
		v[i] = n
	}
	d := DLSN{v[0], v[1], v[2]}
	if !d.IsValid() {
		return InvalidDLSN, fmt.Errorf("%w: %q: lssn must be >= 1", ErrInvalidDLSN, s)
	}
	return d, nil
}

// MarshalBinary encodes d in its 25-byte binary form. It never fails (the
// error is nil; it is there for encoding.BinaryMarshaler).
func (d DLSN) MarshalBinary() ([]byte, error) {
	b := make([]byte, DLSNBinarySize)
	b[0] = dlsnBinaryVersion
	binary.BigEndian.PutUint64(b[1:], uint64(d.LSSN))
	binary.BigEndian.PutUint64(b[9:], uint64(d.EntryID))
	binary.BigEndian.PutUint64(b[17:], uint64(d.SlotID))
	return b, nil
}

// UnmarshalBinary decodes the 25-byte binary form. Errors: one wrapping
// ErrInvalidDLSN for a slice that is not DLSNBinarySize bytes with version
// 1 (d is then unchanged).
func (d *DLSN) UnmarshalBinary(b []byte) error {
	if len(b) != DLSNBinarySize || b[0] != dlsnBinaryVersion {
		return fmt.Errorf("%w: binary form must be %d bytes with version %d", ErrInvalidDLSN, DLSNBinarySize, dlsnBinaryVersion)
	}
	*d = DLSN{
		LSSN:    int64(binary.BigEndian.Uint64(b[1:])),
		EntryID: int64(binary.BigEndian.Uint64(b[9:])),
		SlotID:  int64(binary.BigEndian.Uint64(b[17:])),
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler (JSON uses the text form).
// It never fails.
func (d DLSN) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. Errors: those of
// ParseDLSN (wrapping ErrInvalidDLSN); d is then unchanged.
func (d *DLSN) UnmarshalText(b []byte) error {
	v, err := ParseDLSN(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
