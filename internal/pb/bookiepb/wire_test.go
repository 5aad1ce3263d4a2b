package bookiepb

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func sampleRequests() []*Request {
	add := func(l, e, lac int64, payload, key []byte, recovery bool) *Request {
		return &Request{Txn: uint64(e) + 7, TimeoutMs: 1500, Body: &Request_Add{Add: &AddRequest{
			Entry: NewEntry(l, e, lac, payload), MasterKey: key, Recovery: recovery}}}
	}
	return []*Request{
		add(1, 2, 1, []byte("payload"), []byte("key"), false),
		add(0, 0, -1, nil, nil, true),
		add(1<<62, 1<<40, -1, make([]byte, 300), make([]byte, 1024), false),
		add(-5, -6, -7, []byte{0}, []byte{}, false),
		{Body: &Request_Add{Add: &AddRequest{}}},
		{Txn: 1, Body: &Request_Add{Add: &AddRequest{Entry: &Entry{}}}},
		{Txn: 1 << 63, TimeoutMs: 1<<32 - 1, Body: &Request_Add{Add: &AddRequest{Entry: &Entry{Crc32C: 1}}}},
		{Txn: 3, Body: &Request_Read{Read: &ReadRequest{LedgerId: 1, EntryId: -1, Fence: true, MasterKey: []byte("k")}}},
		{Txn: 4, Body: &Request_ReadLac{ReadLac: &ReadLACRequest{LedgerId: 1, LongPoll: true, PreviousLac: 4, IncludeEntry: true}}},
		{Txn: 5, Body: &Request_WriteLac{WriteLac: &WriteLACRequest{LedgerId: 1, Lac: 3}}},
		{Txn: 6, Body: &Request_Delete{Delete: &DeleteRequest{LedgerId: 9}}},
		{Txn: 7, Body: &Request_Info{Info: &InfoRequest{}}},
		{Txn: 8},
		{Txn: 9, TimeoutMs: 20, ExpectedBookieId: "bookie-1", Body: &Request_Add{Add: &AddRequest{
			Entry: NewEntry(1, 3, 2, []byte("p")), MasterKey: []byte("key")}}},
		{Txn: 10, ExpectedBookieId: "b\u00e9", Body: &Request_Add{Add: &AddRequest{Entry: &Entry{}}}},
		{Txn: 11, ExpectedBookieId: "bookie-2", Body: &Request_WriteLac{WriteLac: &WriteLACRequest{LedgerId: 1, Lac: 3}}},
	}
}

func sampleResponses() []*Response {
	return []*Response{
		{Txn: 1, Status: Status_STATUS_OK, Body: &Response_Add{Add: &AddResponse{LedgerId: 3, EntryId: 4}}},
		{Txn: 2, Status: Status_STATUS_FENCED, Message: "ledger 3 is fenced"},
		{Txn: 3, Status: Status(-1), Message: "négatif"},
		{Body: &Response_Add{Add: &AddResponse{}}},
		{},
		{Txn: 4, Status: Status_STATUS_OK, Body: &Response_Read{Read: &ReadResponse{Entry: NewEntry(1, 2, 1, []byte("x")), Lac: 1}}},
		{Txn: 5, Status: Status_STATUS_OK, Body: &Response_Info{Info: &InfoResponse{BookieId: "b1"}}},
	}
}

// TestAppendRequest: hand-encoded requests are what proto.Marshal gives.
func TestAppendRequest(t *testing.T) {
	for i, r := range sampleRequests() {
		got, err := AppendRequest(nil, r)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("request %d (%v): encoded\n%x, proto gives\n%x", i, r, got, want)
		}
	}
}

// TestAppendResponses: hand-encoded responses are what proto.Marshal gives.
func TestAppendResponses(t *testing.T) {
	rs := sampleResponses()
	got, err := AppendResponses(nil, rs)
	if err != nil {
		t.Fatal(err)
	}
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(&Responses{Responses: rs})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoded\n%x, proto gives\n%x", got, want)
	}
	bad := &Response{Message: "\xff"}
	if _, err := AppendResponses(nil, []*Response{bad}); err == nil {
		t.Fatal("invalid UTF-8 message encoded")
	}
}

// TestDecodeAliasing: a decoded add's byte fields alias the input and
// cannot grow into the bytes after them.
func TestDecodeAliasing(t *testing.T) {
	b, err := proto.Marshal(&Requests{Requests: sampleRequests()[:2]})
	if err != nil {
		t.Fatal(err)
	}
	var m Requests
	if err := DecodeRequests(b, &m); err != nil {
		t.Fatal(err)
	}
	p := m.Requests[0].GetAdd().GetEntry().GetPayload()
	if cap(p) != len(p) {
		t.Fatalf("payload capacity %d, length %d", cap(p), len(p))
	}
	if !bytes.Contains(b, p) || &p[0] != &b[bytes.Index(b, p)] {
		t.Fatal("payload does not alias the input")
	}
}

func seedBatches(f *testing.F) {
	reqs, err := proto.Marshal(&Requests{Requests: sampleRequests()})
	if err != nil {
		f.Fatal(err)
	}
	resps, err := proto.Marshal(&Responses{Responses: sampleResponses()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(reqs)
	f.Add(resps)
	f.Add([]byte{})
	// A member repeated field by field: proto merges, the fast path must not.
	one, _ := proto.Marshal(sampleRequests()[0])
	twice := protowire.AppendBytes([]byte{0x0a}, append(one, one...))
	f.Add(twice)
}

// FuzzDecodeRequests: DecodeRequests agrees with proto.Unmarshal on every
// input: both fail, or both succeed with equal messages.
func FuzzDecodeRequests(f *testing.F) {
	seedBatches(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, slow Requests
		errFast := DecodeRequests(b, &fast)
		errSlow := proto.Unmarshal(b, &slow)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("DecodeRequests: %v, proto.Unmarshal: %v", errFast, errSlow)
		}
		if errFast == nil && !proto.Equal(&fast, &slow) {
			t.Fatalf("DecodeRequests gives %v, proto.Unmarshal %v", &fast, &slow)
		}
	})
}

// FuzzDecodeResponses: DecodeResponses agrees with proto.Unmarshal.
func FuzzDecodeResponses(f *testing.F) {
	seedBatches(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var fast, slow Responses
		errFast := DecodeResponses(b, &fast)
		errSlow := proto.Unmarshal(b, &slow)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("DecodeResponses: %v, proto.Unmarshal: %v", errFast, errSlow)
		}
		if errFast == nil && !proto.Equal(&fast, &slow) {
			t.Fatalf("DecodeResponses gives %v, proto.Unmarshal %v", &fast, &slow)
		}
	})
}

// FuzzAppendRequest: a hand-encoded add is byte for byte what proto.Marshal
// gives, and decodes back to itself.
func FuzzAppendRequest(f *testing.F) {
	f.Add(uint64(1), uint32(10), "", int64(1), int64(2), int64(1), []byte("p"), []byte("k"), false, uint32(0))
	f.Add(uint64(0), uint32(0), "bookie-1", int64(-1), int64(0), int64(-1), []byte{}, []byte(nil), true, uint32(7))
	f.Add(uint64(2), uint32(0), "\xff", int64(1), int64(0), int64(-1), []byte{}, []byte(nil), false, uint32(0))
	f.Fuzz(func(t *testing.T, txn uint64, timeout uint32, expected string, l, e, lac int64, payload, key []byte, recovery bool, crc uint32) {
		r := &Request{Txn: txn, TimeoutMs: timeout, ExpectedBookieId: expected, Body: &Request_Add{Add: &AddRequest{
			Entry: &Entry{LedgerId: l, EntryId: e, Lac: lac, Payload: payload, Crc32C: crc}, MasterKey: key, Recovery: recovery}}}
		got, err := AppendRequest(nil, r)
		if !utf8.ValidString(expected) {
			if err == nil {
				t.Fatalf("invalid UTF-8 expected bookie id %q encoded", expected)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("encoded %x, proto gives %x", got, want)
		}
		var m Requests
		if err := DecodeRequests(protowire.AppendBytes([]byte{0x0a}, got), &m); err != nil || len(m.Requests) != 1 ||
			!proto.Equal(m.Requests[0], r) {
			t.Fatalf("decoded %v (%v), want %v", &m, err, r)
		}
	})
}

func BenchmarkDecodeRequests(b *testing.B) {
	m := &Requests{}
	for i := range 200 {
		m.Requests = append(m.Requests, &Request{Txn: uint64(i), TimeoutMs: 10001, Body: &Request_Add{Add: &AddRequest{
			Entry: NewEntry(int64(i), 5, 4, make([]byte, 100)), MasterKey: []byte("secret")}}})
	}
	data, err := proto.Marshal(m)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			var m Requests
			if err := DecodeRequests(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto", func(b *testing.B) {
		for b.Loop() {
			var m Requests
			if err := proto.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAppendRequest(b *testing.B) {
	r := &Request{Txn: 5, TimeoutMs: 10001, Body: &Request_Add{Add: &AddRequest{
		Entry: NewEntry(1, 5, 4, make([]byte, 100)), MasterKey: []byte("secret")}}}
	var buf []byte
	b.Run("hand", func(b *testing.B) {
		for b.Loop() {
			buf, _ = AppendRequest(buf[:0], r)
		}
	})
	b.Run("proto", func(b *testing.B) {
		for b.Loop() {
			buf, _ = proto.MarshalOptions{}.MarshalAppend(buf[:0], r)
		}
	})
}

func BenchmarkEntryChecksum(b *testing.B) {
	p := make([]byte, 100)
	for b.Loop() {
		EntryChecksum(1, 2, 3, p)
	}
}

// TestEntryChecksum: the checksum is CRC32C over the big-endian ids and lac
// followed by the payload.
func TestEntryChecksum(t *testing.T) {
	for _, tt := range []struct {
		l, e, lac int64
		payload   []byte
	}{{0, 0, 0, nil}, {1, 2, -1, []byte("payload")}, {-1 << 63, 1<<63 - 1, 12345, make([]byte, 1000)}} {
		var hdr [24]byte
		binary.BigEndian.PutUint64(hdr[0:], uint64(tt.l))
		binary.BigEndian.PutUint64(hdr[8:], uint64(tt.e))
		binary.BigEndian.PutUint64(hdr[16:], uint64(tt.lac))
		want := crc32.Checksum(append(hdr[:], tt.payload...), crc32.MakeTable(crc32.Castagnoli))
		if got := EntryChecksum(tt.l, tt.e, tt.lac, tt.payload); got != want {
			t.Fatalf("EntryChecksum(%d, %d, %d, %d bytes) = %#x, want %#x", tt.l, tt.e, tt.lac, len(tt.payload), got, want)
		}
	}
}
