package recordset

import (
	"encoding/binary"
	"fmt"
)

// Set is a decoded record set.
type Set struct {
	Header
	// Records in slot order (a record's slot id in its DLSN is its index).
	Records []Record
}

// ParseHeader reads and checks the header only: version, codec, count ≥ 1,
// BasePosition ≥ 0, and that exactly StoredSize bytes follow it. It does
// not look at the body or apply size limits (Decode does). Errors wrap
// ErrCorrupt.
func ParseHeader(entry []byte) (Header, error) {
	if len(entry) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(entry), HeaderSize)
	}
	h := Header{
		Version:          entry[0],
		Codec:            Codec(entry[1] &^ codecTagged),
		Tagged:           entry[1]&codecTagged != 0,
		Count:            binary.BigEndian.Uint32(entry[2:]),
		BasePosition:     int64(binary.BigEndian.Uint64(entry[6:])),
		UncompressedSize: binary.BigEndian.Uint32(entry[14:]),
		StoredSize:       binary.BigEndian.Uint32(entry[18:]),
	}
	switch {
	case h.Version != Version:
		return h, fmt.Errorf("%w: unknown version %d", ErrCorrupt, h.Version)
	case !h.Codec.Valid():
		return h, fmt.Errorf("%w: unknown codec %d", ErrCorrupt, uint8(h.Codec))
	case h.Count == 0:
		return h, fmt.Errorf("%w: no records", ErrCorrupt)
	case h.BasePosition < 0:
		return h, fmt.Errorf("%w: negative base position %d", ErrCorrupt, h.BasePosition)
	case uint64(h.StoredSize) != uint64(len(entry)-HeaderSize):
		return h, fmt.Errorf("%w: header says %d body bytes, entry has %d", ErrCorrupt, h.StoredSize, len(entry)-HeaderSize)
	}
	return h, nil
}

// Decode decodes an entry written by Builder. maxBodyBytes bounds the
// uncompressed body the caller accepts (values ≤ 0 or above MaxBodyBytes
// mean MaxBodyBytes); a larger declaration is rejected before anything is
// allocated, and decompression never produces more than the declared size.
// All declared sizes are checked against each other and against the
// entry's length first, so allocation is bounded by min(limit, what the
// entry's size can legitimately expand to).
//
// Payloads alias entry when the body is stored uncompressed: the caller
// must not modify entry while it uses them. Errors wrap ErrCorrupt.
func Decode(entry []byte, maxBodyBytes int) (*Set, error) {
	h, err := ParseHeader(entry)
	if err != nil {
		return nil, err
	}
	limit := MaxBodyBytes
	if maxBodyBytes > 0 && maxBodyBytes < limit {
		limit = maxBodyBytes
	}
	size, stored := int(h.UncompressedSize), int(h.StoredSize)
	switch {
	case uint64(h.UncompressedSize) > uint64(limit):
		return nil, fmt.Errorf("%w: body of %d bytes exceeds the limit of %d", ErrCorrupt, size, limit)
	case uint64(h.Count)*RecordOverhead > uint64(h.UncompressedSize):
		return nil, fmt.Errorf("%w: %d records cannot fit %d bytes", ErrCorrupt, h.Count, size)
	}
	storedBody := entry[HeaderSize:]
	var body []byte
	switch h.Codec {
	case CodecNone:
		if stored != size {
			return nil, fmt.Errorf("%w: uncompressed body stored in %d bytes, header says %d", ErrCorrupt, stored, size)
		}
		body = storedBody
	case CodecLZ4:
		if uint64(size) > uint64(stored)*lz4MaxRatio {
			return nil, fmt.Errorf("%w: %d lz4 bytes cannot expand to %d", ErrCorrupt, stored, size)
		}
		if body, err = decompressLZ4(storedBody, size); err != nil {
			return nil, err
		}
	case CodecZstd:
		if uint64(size) > uint64(stored)*zstdMaxRatio {
			return nil, fmt.Errorf("%w: %d zstd bytes cannot expand to %d", ErrCorrupt, stored, size)
		}
		if body, err = decompressZstd(storedBody, size); err != nil {
			return nil, err
		}
	}
	set := &Set{Header: h, Records: make([]Record, h.Count)}
	pos, user, tagged := 0, h.BasePosition, 0
	for i := range set.Records {
		if len(body)-pos < RecordOverhead {
			return nil, fmt.Errorf("%w: record %d of %d: header truncated at body offset %d", ErrCorrupt, i, h.Count, pos)
		}
		flags := Flags(body[pos])
		if !flags.Valid() {
			return nil, fmt.Errorf("%w: record %d: invalid flags %#x", ErrCorrupt, i, uint8(flags))
		}
		txid := int64(binary.BigEndian.Uint64(body[pos+1:]))
		n := binary.BigEndian.Uint32(body[pos+9:])
		pos += RecordOverhead
		if uint64(n) > uint64(len(body)-pos) {
			return nil, fmt.Errorf("%w: record %d: payload of %d bytes, %d left", ErrCorrupt, i, n, len(body)-pos)
		}
		r := Record{Flags: flags, TxID: txid, Payload: body[pos : pos+int(n) : pos+int(n)], Position: -1}
		if !flags.IsControl() {
			if user < 0 {
				return nil, fmt.Errorf("%w: record %d: position overflow", ErrCorrupt, i)
			}
			r.Position = user
			user++
		}
		pos += int(n)
		if flags.IsTagged() {
			if pos >= len(body) {
				return nil, fmt.Errorf("%w: record %d: tag truncated", ErrCorrupt, i)
			}
			idLen := int(body[pos])
			if idLen == 0 || idLen > MaxProducerIDBytes || len(body)-pos-1 < idLen+8 {
				return nil, fmt.Errorf("%w: record %d: tag with a %d-byte producer id, %d bytes left", ErrCorrupt, i, idLen, len(body)-pos-1)
			}
			r.ProducerID = string(body[pos+1 : pos+1+idLen])
			r.Sequence = int64(binary.BigEndian.Uint64(body[pos+1+idLen:]))
			if r.Sequence < 0 {
				return nil, fmt.Errorf("%w: record %d: negative tag sequence", ErrCorrupt, i)
			}
			pos += 1 + idLen + 8
			tagged++
		}
		set.Records[i] = r
	}
	if pos != len(body) {
		return nil, fmt.Errorf("%w: %d bytes after the last record", ErrCorrupt, len(body)-pos)
	}
	if h.Tagged != (tagged > 0) {
		return nil, fmt.Errorf("%w: header says tagged=%v, %d records carry a tag", ErrCorrupt, h.Tagged, tagged)
	}
	return set, nil
}
