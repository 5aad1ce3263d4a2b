package recordset

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode: arbitrary bytes never panic, fail only with ErrCorrupt, and
// whatever decodes is consistent with its header and re-encodes (stored
// raw) to a set that decodes to the same records.
func FuzzDecode(f *testing.F) {
	for _, c := range allCodecs {
		f.Add(build(f, 3, c, Record{TxID: 1, Payload: []byte("hello")}, Record{Flags: FlagControl, TxID: 1},
			Record{TxID: 2, Payload: bytes.Repeat([]byte("log line "), 20)}))
	}
	f.Add(build(f, 0, CodecNone, Record{TxID: 1, Payload: []byte("a"), ProducerID: "p", Sequence: 4}))
	f.Add([]byte{})
	f.Add(make([]byte, HeaderSize))
	f.Fuzz(func(t *testing.T, entry []byte) {
		const limit = 1 << 20
		set, err := Decode(entry, limit)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if len(set.Records) != int(set.Count) || set.UncompressedSize > limit {
			t.Fatalf("header %+v, %d records", set.Header, len(set.Records))
		}
		size := 0
		b := mustBuilder(t, Config{MaxRecordBytes: limit - RecordOverhead, MaxSetBytes: limit})
		b.Reset(set.BasePosition)
		for _, r := range set.Records {
			size += RecordOverhead + len(r.Payload) + TagSize(r.ProducerID)
			r.Flags &^= FlagTagged // Append derives it from the tag
			if err := b.Append(r); err != nil {
				t.Fatalf("re-append %+v: %v", r, err)
			}
		}
		if size != int(set.UncompressedSize) {
			t.Fatalf("records take %d bytes, header says %d", size, set.UncompressedSize)
		}
		again, err := b.Build(CodecNone)
		if err != nil {
			t.Fatal(err)
		}
		if set.Codec == CodecNone && !bytes.Equal(again, entry) {
			t.Fatalf("uncompressed encoding is not canonical")
		}
		set2, err := Decode(again, limit)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range set2.Records {
			w := set.Records[i]
			if r.Flags != w.Flags || r.TxID != w.TxID || r.Position != w.Position || !bytes.Equal(r.Payload, w.Payload) ||
				r.ProducerID != w.ProducerID || r.Sequence != w.Sequence {
				t.Fatalf("record %d: %+v after re-encoding, was %+v", i, r, w)
			}
		}
	})
}

// FuzzRoundTrip: records derived from arbitrary bytes survive every codec.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte("a\x00b\x01cc\x03"), uint8(1), int64(0))
	f.Add(bytes.Repeat([]byte("abcdefgh"), 100), uint8(2), int64(12345))
	f.Fuzz(func(t *testing.T, data []byte, codecByte uint8, base int64) {
		if base < 0 {
			base = -(base + 1)
		}
		codec := allCodecs[int(codecByte)%len(allCodecs)]
		b := mustBuilder(t, DefaultConfig())
		b.Reset(base)
		var want []Record
		// Split data on every 0x00 byte; the byte after a split picks flags.
		for i, part := range bytes.Split(data, []byte{0}) {
			flags := Flags(0)
			if len(part) > 0 && part[0]%4 == 1 {
				flags = FlagControl
			}
			r := Record{Flags: flags, TxID: int64(i) * 1000003, Payload: part}
			if err := b.Append(r); err != nil {
				if errors.Is(err, ErrInvalidRecord) || errors.Is(err, ErrSetFull) {
					break
				}
				t.Fatal(err)
			}
			want = append(want, r)
		}
		entry, err := b.Build(codec)
		if err != nil {
			t.Fatal(err)
		}
		set, err := Decode(entry, 0)
		if err != nil {
			t.Fatalf("decode own output: %v", err)
		}
		if len(set.Records) != len(want) {
			t.Fatalf("%d records, want %d", len(set.Records), len(want))
		}
		for i, r := range set.Records {
			if r.Flags != want[i].Flags || r.TxID != want[i].TxID || !bytes.Equal(r.Payload, want[i].Payload) {
				t.Fatalf("record %d: %+v, want %+v", i, r, want[i])
			}
		}
	})
}
