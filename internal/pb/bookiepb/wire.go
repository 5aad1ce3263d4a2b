package bookiepb

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Hand-written encoding and decoding of the data path's messages: add
// requests and their answers, one allocation per decoded add instead of
// six, and no reflection. Everything else (and anything unusual: unknown
// or repeated fields, unexpected wire types) goes through package proto,
// so the results are always what proto.Marshal and proto.Unmarshal give
// (FuzzDecodeRequests and FuzzDecodeResponses check it).

// Field numbers and tags of the messages handled here.
const (
	tagTxn       byte = 1<<3 | byte(protowire.VarintType) // Request, Response
	tagTimeoutMs byte = 2<<3 | byte(protowire.VarintType) // Request
	tagExpected  byte = 3<<3 | byte(protowire.BytesType)  // Request.expected_bookie_id
	tagStatus    byte = 2<<3 | byte(protowire.VarintType) // Response
	tagMessage   byte = 3<<3 | byte(protowire.BytesType)  // Response
	tagAddBody   byte = 10<<3 | byte(protowire.BytesType) // Request.add, Response.add
	tagMember    byte = 1<<3 | byte(protowire.BytesType)  // Requests.requests, Responses.responses

	tagAddEntry    byte = 1<<3 | byte(protowire.BytesType)  // AddRequest
	tagAddKey      byte = 2<<3 | byte(protowire.BytesType)  // AddRequest
	tagAddRecovery byte = 3<<3 | byte(protowire.VarintType) // AddRequest

	tagEntryLedger  byte = 1<<3 | byte(protowire.VarintType)  // Entry, AddResponse
	tagEntryID      byte = 2<<3 | byte(protowire.VarintType)  // Entry, AddResponse
	tagEntryLAC     byte = 3<<3 | byte(protowire.VarintType)  // Entry
	tagEntryPayload byte = 4<<3 | byte(protowire.BytesType)   // Entry
	tagEntryCRC     byte = 5<<3 | byte(protowire.Fixed32Type) // Entry
)

// AppendRequest appends r's encoding to b.
func AppendRequest(b []byte, r *Request) ([]byte, error) {
	if add, ok := r.Body.(*Request_Add); ok && plainAdd(r, add) {
		return appendAddRequest(b, r, add.Add), nil
	}
	return proto.MarshalOptions{}.MarshalAppend(b, r)
}

// plainAdd reports whether an add request can be encoded by hand: no
// unknown fields anywhere, a valid UTF-8 expected bookie id (else
// proto.Marshal reports the error).
func plainAdd(r *Request, add *Request_Add) bool {
	a := add.Add
	return a != nil && len(r.unknownFields) == 0 && len(a.unknownFields) == 0 &&
		utf8.ValidString(r.ExpectedBookieId) &&
		(a.Entry == nil || len(a.Entry.unknownFields) == 0)
}

func appendAddRequest(b []byte, r *Request, a *AddRequest) []byte {
	b = appendVarintField(b, tagTxn, r.Txn)
	b = appendVarintField(b, tagTimeoutMs, uint64(r.TimeoutMs))
	if r.ExpectedBookieId != "" {
		b = protowire.AppendString(append(b, tagExpected), r.ExpectedBookieId)
	}
	b = append(b, tagAddBody)
	b = protowire.AppendVarint(b, uint64(sizeAddRequest(a)))
	if e := a.Entry; e != nil {
		b = append(b, tagAddEntry)
		b = protowire.AppendVarint(b, uint64(sizeEntry(e)))
		b = appendVarintField(b, tagEntryLedger, uint64(e.LedgerId))
		b = appendVarintField(b, tagEntryID, uint64(e.EntryId))
		b = appendVarintField(b, tagEntryLAC, uint64(e.Lac))
		b = appendBytesField(b, tagEntryPayload, e.Payload)
		if e.Crc32C != 0 {
			b = append(b, tagEntryCRC)
			b = protowire.AppendFixed32(b, e.Crc32C)
		}
	}
	b = appendBytesField(b, tagAddKey, a.MasterKey)
	if a.Recovery {
		b = append(b, tagAddRecovery, 1)
	}
	return b
}

func sizeAddRequest(a *AddRequest) int {
	n := 0
	if a.Entry != nil {
		n += 1 + protowire.SizeBytes(sizeEntry(a.Entry))
	}
	n += sizeBytesField(a.MasterKey)
	if a.Recovery {
		n += 2
	}
	return n
}

func sizeEntry(e *Entry) int {
	n := sizeVarintField(uint64(e.LedgerId)) + sizeVarintField(uint64(e.EntryId)) + sizeVarintField(uint64(e.Lac)) +
		sizeBytesField(e.Payload)
	if e.Crc32C != 0 {
		n += 1 + 4
	}
	return n
}

// appendVarintField appends a one-byte tag and v, unless v is zero (proto3
// leaves zero values out).
func appendVarintField(b []byte, tag byte, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(append(b, tag), v)
}

func sizeVarintField(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

func appendBytesField(b []byte, tag byte, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return protowire.AppendBytes(append(b, tag), v)
}

func sizeBytesField(v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return 1 + protowire.SizeBytes(len(v))
}

// AppendResponses appends the encoding of a Responses message holding rs.
func AppendResponses(b []byte, rs []*Response) ([]byte, error) {
	for _, r := range rs {
		if plainResponse(r) {
			b = append(b, tagMember)
			b = protowire.AppendVarint(b, uint64(sizeResponse(r)))
			b = appendResponse(b, r)
			continue
		}
		m, err := proto.MarshalOptions{}.Marshal(r)
		if err != nil {
			return b, err
		}
		b = append(b, tagMember)
		b = protowire.AppendBytes(b, m)
	}
	return b, nil
}

// plainResponse reports whether r can be encoded by hand: an add's answer
// or one without a body, no unknown fields, a valid UTF-8 message (else
// proto.Marshal reports the error).
func plainResponse(r *Response) bool {
	if len(r.unknownFields) != 0 || !utf8.ValidString(r.Message) {
		return false
	}
	switch b := r.Body.(type) {
	case nil:
		return true
	case *Response_Add:
		return b.Add != nil && len(b.Add.unknownFields) == 0
	}
	return false
}

func appendResponse(b []byte, r *Response) []byte {
	b = appendVarintField(b, tagTxn, r.Txn)
	b = appendVarintField(b, tagStatus, uint64(int64(r.Status)))
	if r.Message != "" {
		b = protowire.AppendString(append(b, tagMessage), r.Message)
	}
	if add, ok := r.Body.(*Response_Add); ok {
		a := add.Add
		b = append(b, tagAddBody)
		b = protowire.AppendVarint(b, uint64(sizeVarintField(uint64(a.LedgerId))+sizeVarintField(uint64(a.EntryId))))
		b = appendVarintField(b, tagEntryLedger, uint64(a.LedgerId))
		b = appendVarintField(b, tagEntryID, uint64(a.EntryId))
	}
	return b
}

func sizeResponse(r *Response) int {
	n := sizeVarintField(r.Txn) + sizeVarintField(uint64(int64(r.Status)))
	if r.Message != "" {
		n += 1 + protowire.SizeBytes(len(r.Message))
	}
	if add, ok := r.Body.(*Response_Add); ok {
		n += 1 + protowire.SizeBytes(sizeVarintField(uint64(add.Add.LedgerId))+sizeVarintField(uint64(add.Add.EntryId)))
	}
	return n
}

// DecodeRequests decodes a Requests message from b into m, like
// proto.Unmarshal. Add requests are decoded by hand: their payload and
// master key alias b, which must not change while they are in use.
func DecodeRequests(b []byte, m *Requests) error {
	m.Reset()
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return proto.Unmarshal(b, m) // unusual: let proto decide
		}
		v, k := protowire.ConsumeBytes(rest[n:])
		if k < 0 {
			return proto.Unmarshal(b, m)
		}
		rest = rest[n+k:]
		r := decodeAddRequest(v)
		if r == nil {
			r = new(Request)
			if err := proto.Unmarshal(v, r); err != nil {
				return err
			}
		}
		m.Requests = append(m.Requests, r)
	}
	return nil
}

// addRequestBlock holds a decoded add request in one allocation.
type addRequestBlock struct {
	req   Request
	body  Request_Add
	add   AddRequest
	entry Entry
}

// decodeAddRequest decodes an add request by hand, or returns nil when b
// is anything else or anything unusual.
func decodeAddRequest(b []byte) *Request {
	var (
		txn, timeout uint64
		expected     []byte
		addBytes     []byte
		seen         uint16
	)
	for len(b) > 0 {
		tag, v, data, n := consumeField(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		switch tag {
		case tagTxn:
			txn = v
		case tagTimeoutMs:
			timeout = v
		case tagExpected:
			expected = data
		case tagAddBody:
			addBytes = data
		default:
			return nil
		}
		if !firstTime(&seen, tag) {
			return nil // repeated: merge rules apply
		}
	}
	if seen&(1<<10) == 0 {
		return nil // not an add
	}
	if !utf8.Valid(expected) {
		return nil // proto.Unmarshal reports it
	}
	blk := new(addRequestBlock)
	if !decodeAddBody(addBytes, &blk.add, &blk.entry) {
		return nil
	}
	blk.req.Txn, blk.req.TimeoutMs = txn, uint32(timeout)
	if len(expected) > 0 {
		blk.req.ExpectedBookieId = string(expected)
	}
	blk.body.Add = &blk.add
	blk.req.Body = &blk.body
	return &blk.req
}

func decodeAddBody(b []byte, a *AddRequest, e *Entry) bool {
	var seen uint16
	for len(b) > 0 {
		tag, v, data, n := consumeField(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch tag {
		case tagAddEntry:
			if !decodeEntry(data, e) {
				return false
			}
			a.Entry = e
		case tagAddKey:
			a.MasterKey = data
		case tagAddRecovery:
			a.Recovery = v != 0
		default:
			return false
		}
		if !firstTime(&seen, tag) {
			return false
		}
	}
	return true
}

func decodeEntry(b []byte, e *Entry) bool {
	var seen uint16
	for len(b) > 0 {
		tag, v, data, n := consumeField(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch tag {
		case tagEntryLedger:
			e.LedgerId = int64(v)
		case tagEntryID:
			e.EntryId = int64(v)
		case tagEntryLAC:
			e.Lac = int64(v)
		case tagEntryPayload:
			e.Payload = data
		case tagEntryCRC:
			e.Crc32C = uint32(v)
		default:
			return false
		}
		if !firstTime(&seen, tag) {
			return false
		}
	}
	return true
}

// firstTime records field tag>>3 in seen and reports whether it is new
// there (field numbers 1 to 15).
func firstTime(seen *uint16, tag byte) bool {
	bit := uint16(1) << (tag >> 3)
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// consumeField reads one field with a one-byte tag of field number 1 to
// 15: a varint or fixed32 value in v, a length-delimited one in data
// (aliasing b, its capacity cut to its length; never nil). n < 0 for
// anything else.
func consumeField(b []byte) (tag byte, v uint64, data []byte, n int) {
	tag = b[0]
	if tag&0x80 != 0 || tag>>3 == 0 {
		return 0, 0, nil, -1
	}
	switch protowire.Type(tag & 7) {
	case protowire.VarintType:
		x, k := protowire.ConsumeVarint(b[1:])
		if k < 0 {
			return 0, 0, nil, -1
		}
		return tag, x, nil, 1 + k
	case protowire.Fixed32Type:
		x, k := protowire.ConsumeFixed32(b[1:])
		if k < 0 {
			return 0, 0, nil, -1
		}
		return tag, uint64(x), nil, 1 + k
	case protowire.BytesType:
		x, k := protowire.ConsumeBytes(b[1:])
		if k < 0 {
			return 0, 0, nil, -1
		}
		return tag, 0, x[:len(x):len(x)], 1 + k
	}
	return 0, 0, nil, -1
}

// DecodeResponses decodes a Responses message from b into m, like
// proto.Unmarshal; adds' answers and answers without a body are decoded by
// hand. Nothing aliases b.
func DecodeResponses(b []byte, m *Responses) error {
	m.Reset()
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 || num != 1 || typ != protowire.BytesType {
			return proto.Unmarshal(b, m)
		}
		v, k := protowire.ConsumeBytes(rest[n:])
		if k < 0 {
			return proto.Unmarshal(b, m)
		}
		rest = rest[n+k:]
		r := decodePlainResponse(v)
		if r == nil {
			r = new(Response)
			if err := proto.Unmarshal(v, r); err != nil {
				return err
			}
		}
		m.Responses = append(m.Responses, r)
	}
	return nil
}

// responseBlock holds a decoded response in one allocation.
type responseBlock struct {
	resp Response
	body Response_Add
	add  AddResponse
}

// decodePlainResponse decodes an add's answer or an answer without a body
// by hand, or returns nil.
func decodePlainResponse(b []byte) *Response {
	var (
		txn, status uint64
		msg         []byte
		addBytes    []byte
		seen        uint16
	)
	for len(b) > 0 {
		tag, v, data, n := consumeField(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		switch tag {
		case tagTxn:
			txn = v
		case tagStatus:
			status = v
		case tagMessage:
			msg = data
		case tagAddBody:
			addBytes = data
		default:
			return nil
		}
		if !firstTime(&seen, tag) {
			return nil
		}
	}
	if !utf8.Valid(msg) {
		return nil // proto.Unmarshal reports it
	}
	blk := new(responseBlock)
	blk.resp.Txn, blk.resp.Status, blk.resp.Message = txn, Status(int32(status)), string(msg)
	if seen&(1<<10) != 0 {
		var seen uint16
		for len(addBytes) > 0 {
			tag, v, _, n := consumeField(addBytes)
			if n < 0 {
				return nil
			}
			addBytes = addBytes[n:]
			switch tag {
			case tagEntryLedger:
				blk.add.LedgerId = int64(v)
			case tagEntryID:
				blk.add.EntryId = int64(v)
			default:
				return nil
			}
			if !firstTime(&seen, tag) {
				return nil
			}
		}
		blk.body.Add = &blk.add
		blk.resp.Body = &blk.body
	}
	return &blk.resp
}
