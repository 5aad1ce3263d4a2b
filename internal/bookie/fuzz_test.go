package bookie

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  []byte
		want record
	}{
		{"add", appendAddRecord(nil, bookiepb.NewEntry(7, 9, 8, []byte("payload")), []byte("key"), false),
			record{Type: recordAdd, LedgerID: 7, EntryID: 9, Key: []byte("key")}},
		{"recovery add, empty key and payload", appendAddRecord(nil, bookiepb.NewEntry(1, 0, -1, nil), []byte{}, true),
			record{Type: recordAdd, LedgerID: 1, EntryID: 0, Recovery: true, Key: []byte{}}},
		{"fence", appendFenceRecord(nil, 3, []byte("k")), record{Type: recordFence, LedgerID: 3, Key: []byte("k")}},
		{"delete", appendDeleteRecord(nil, 1<<62), record{Type: recordDelete, LedgerID: 1 << 62}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeRecord(tt.rec)
			noErr(t, err, "decode")
			if got.Type != tt.want.Type || got.LedgerID != tt.want.LedgerID || got.EntryID != tt.want.EntryID ||
				got.Recovery != tt.want.Recovery || !bytes.Equal(got.Key, tt.want.Key) || (got.Key == nil) != (tt.want.Key == nil) {
				t.Fatalf("decoded %+v, want %+v", got, tt.want)
			}
			if got.Type == recordAdd {
				if _, ok := entryFromStored(got.LedgerID, got.EntryID, got.Stored); !ok {
					t.Fatal("stored entry does not verify")
				}
			}
		})
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	add := appendAddRecord(nil, bookiepb.NewEntry(7, 9, 8, []byte("payload")), []byte("key"), false)
	longKey := appendFenceRecord(nil, 1, make([]byte, MaxMasterKeyBytes+1))
	tests := []struct {
		name string
		rec  []byte
	}{
		{"empty", nil},
		{"unknown type", []byte{9, 0, 0, 0, 0, 0, 0, 0, 1}},
		{"short add", add[:10]},
		{"unknown add flag", append([]byte{recordAdd, 2}, add[2:]...)},
		{"negative ledger", appendDeleteRecord(nil, -1)},
		{"delete with trailing bytes", append(appendDeleteRecord(nil, 1), 0)},
		{"fence with trailing bytes", append(appendFenceRecord(nil, 1, nil), 0)},
		{"key too long", longKey},
		{"non-minimal key length", []byte{recordFence, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0x00}},
		{"truncated stored entry", add[:len(add)-len("payload")-2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeRecord(tt.rec); err == nil {
				t.Fatal("decoded")
			}
		})
	}
}

// FuzzDecodeRecord: the journal record decoder never panics, accepts only
// canonical records (what it accepts re-encodes to the same bytes) and
// never yields negative ids.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendAddRecord(nil, bookiepb.NewEntry(7, 9, 8, []byte("payload")), []byte("key"), true))
	f.Add(appendFenceRecord(nil, 3, []byte("k")))
	f.Add(appendDeleteRecord(nil, 5))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if r.LedgerID < 0 || r.EntryID < 0 || len(r.Key) > MaxMasterKeyBytes {
			t.Fatalf("accepted %+v", r)
		}
		var again []byte
		switch r.Type {
		case recordAdd:
			lac, crc, payload, err := decodeStoredEntry(r.Stored)
			if err != nil {
				t.Fatal(err)
			}
			e := &bookiepb.Entry{LedgerId: r.LedgerID, EntryId: r.EntryID, Lac: lac, Crc32C: crc, Payload: payload}
			again = appendAddRecord(nil, e, r.Key, r.Recovery)
		case recordFence:
			again = appendFenceRecord(nil, r.LedgerID, r.Key)
		case recordDelete:
			again = appendDeleteRecord(nil, r.LedgerID)
		default:
			t.Fatalf("type %d accepted", r.Type)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %+v which encodes to %x", b, r, again)
		}
	})
}

// FuzzValidateRequest: one request's bytes (a member of a Requests
// batch, decoded alone) go through proto.Unmarshal and validateRequest without
// panicking; whatever is accepted has non-negative ids, bounded keys and
// payloads, and a verified entry checksum.
func FuzzValidateRequest(f *testing.F) {
	for _, s := range fuzzSeedRequests() {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req bookiepb.Request
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		checkValidation(t, &req)
	})
}

// FuzzValidateBatch: a Requests batch off the wire (the Batches framing)
// goes through the server's codec (bookiepb.DecodeRequests) and
// validateRequest without panicking, decodes as proto.Unmarshal would, and
// every member accepted obeys the rules of FuzzValidateRequest.
func FuzzValidateBatch(f *testing.F) {
	var seeds []*bookiepb.Request
	for _, s := range fuzzSeedRequests() {
		if len(s.GetAdd().GetEntry().GetPayload()) <= fuzzMaxEntry { // small inputs fuzz faster
			seeds = append(seeds, s)
		}
	}
	b, err := proto.Marshal(&bookiepb.Requests{Requests: seeds})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	for _, s := range seeds {
		b, err := proto.Marshal(&bookiepb.Requests{Requests: []*bookiepb.Request{s, s}})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var batch bookiepb.Requests
		err := wireCodec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &batch)
		var want bookiepb.Requests
		if wantErr := proto.Unmarshal(b, &want); (err == nil) != (wantErr == nil) {
			t.Fatalf("codec: %v, proto.Unmarshal: %v", err, wantErr)
		}
		if err != nil {
			return
		}
		if !proto.Equal(&batch, &want) {
			t.Fatalf("codec decodes %v, proto.Unmarshal %v", &batch, &want)
		}
		for _, req := range batch.Requests {
			checkValidation(t, req)
		}
	})
}

func fuzzSeedRequests() []*bookiepb.Request {
	return []*bookiepb.Request{
		{Txn: 1, TimeoutMs: 100, Body: &bookiepb.Request_Add{Add: addReq(1, 2, 1)}},
		{Body: &bookiepb.Request_Add{Add: &bookiepb.AddRequest{Entry: bookiepb.NewEntry(1, 0, -1, make([]byte, fuzzMaxEntry+1))}}},
		{Body: &bookiepb.Request_Add{Add: &bookiepb.AddRequest{Entry: bookiepb.NewEntry(1, 0, -1, nil), Recovery: true}}},
		{Body: &bookiepb.Request_Read{Read: &bookiepb.ReadRequest{LedgerId: 1, EntryId: -1, Fence: true, MasterKey: testKey}}},
		{Body: &bookiepb.Request_ReadLac{ReadLac: &bookiepb.ReadLACRequest{LedgerId: 1, LongPoll: true, PreviousLac: 4}}},
		{Body: &bookiepb.Request_WriteLac{WriteLac: &bookiepb.WriteLACRequest{LedgerId: 1, Lac: 3}}},
		{Body: &bookiepb.Request_Delete{Delete: &bookiepb.DeleteRequest{LedgerId: -1}}},
		{Body: &bookiepb.Request_Info{Info: &bookiepb.InfoRequest{}}},
	}
}

// fuzzMaxEntry is the entry size limit the fuzz targets validate with.
const fuzzMaxEntry = 4096

// checkValidation runs validateRequest on req and checks what it accepts.
func checkValidation(t *testing.T, req *bookiepb.Request) {
	t.Helper()
	if rej := validateRequest(req, fuzzMaxEntry); rej != nil {
		if rej.status != bookiepb.Status_STATUS_BAD_REQUEST && rej.status != bookiepb.Status_STATUS_TOO_LARGE {
			t.Fatalf("rejected with %v", rej.status)
		}
		return
	}
	switch x := req.Body.(type) {
	case *bookiepb.Request_Add:
		e := x.Add.Entry
		if e.LedgerId < 0 || e.EntryId < 0 || e.Lac < -1 || e.Lac >= e.EntryId || len(e.Payload) > fuzzMaxEntry ||
			len(x.Add.MasterKey) > MaxMasterKeyBytes || !e.Verify() {
			t.Fatalf("accepted add %v", x.Add)
		}
		// What is accepted must also survive the journal record.
		rec := appendAddRecord(nil, e, masterKey(x.Add.MasterKey), x.Add.Recovery)
		r, err := decodeRecord(rec)
		if err != nil {
			t.Fatalf("accepted add does not journal: %v", err)
		}
		if _, ok := entryFromStored(r.LedgerID, r.EntryID, r.Stored); !ok {
			t.Fatal("journalled entry does not verify")
		}
	case *bookiepb.Request_Read:
		if x.Read.LedgerId < 0 || x.Read.EntryId < -1 || len(x.Read.MasterKey) > MaxMasterKeyBytes {
			t.Fatalf("accepted read %v", x.Read)
		}
	case *bookiepb.Request_ReadLac:
		if x.ReadLac.LedgerId < 0 || x.ReadLac.PreviousLac < -1 {
			t.Fatalf("accepted read-lac %v", x.ReadLac)
		}
	case *bookiepb.Request_WriteLac:
		if x.WriteLac.LedgerId < 0 || x.WriteLac.Lac < -1 || len(x.WriteLac.MasterKey) > MaxMasterKeyBytes {
			t.Fatalf("accepted write-lac %v", x.WriteLac)
		}
	case *bookiepb.Request_Delete:
		if x.Delete.LedgerId < 0 {
			t.Fatalf("accepted delete %v", x.Delete)
		}
	case *bookiepb.Request_Info:
	default:
		t.Fatalf("accepted %T", x)
	}
}
