package recordset

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// TestTagGolden pins the byte layout of a tagged record (doc.go).
func TestTagGolden(t *testing.T) {
	entry := build(t, 0, CodecNone,
		Record{TxID: 1, Payload: []byte("a"), ProducerID: "p1", Sequence: 9},
		Record{TxID: 2, Payload: []byte("b")},
	)
	want := "" +
		"01" + "81" + "00000002" + "0000000000000000" + "00000027" + "00000027" + // header, codec none + tagged bit
		"04" + "0000000000000001" + "00000001" + "61" + "02" + "7031" + "0000000000000009" + // tagged record
		"00" + "0000000000000002" + "00000001" + "62" // untagged record
	if got := hex.EncodeToString(entry); got != want {
		t.Fatalf("tagged set\n got %s\nwant %s", got, want)
	}
	if !HasTags(entry) {
		t.Fatal("HasTags false for a tagged set")
	}
	if HasTags(build(t, 0, CodecNone, Record{TxID: 1})) {
		t.Fatal("HasTags true for an untagged set")
	}
}

func TestTagRoundTrip(t *testing.T) {
	recs := []Record{
		{TxID: 1, Payload: []byte("one"), ProducerID: "shop-1", Sequence: 0},
		{Flags: FlagControl, TxID: 1},
		{TxID: 2, Payload: bytes.Repeat([]byte("x"), 300), ProducerID: strings.Repeat("p", MaxProducerIDBytes), Sequence: 1<<63 - 1},
		{TxID: 3, Payload: nil},
	}
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			set, err := Decode(build(t, 4, codec, recs...), 0)
			if err != nil {
				t.Fatal(err)
			}
			if !set.Tagged {
				t.Fatal("header not tagged")
			}
			for i, r := range set.Records {
				w := recs[i]
				if r.ProducerID != w.ProducerID || r.Sequence != w.Sequence || r.TxID != w.TxID || !bytes.Equal(r.Payload, w.Payload) {
					t.Fatalf("record %d: %+v, want %+v", i, r, w)
				}
				if r.Flags.IsTagged() != (w.ProducerID != "") {
					t.Fatalf("record %d flags %#x", i, r.Flags)
				}
			}
			if set.Records[2].Position != 5 || set.Records[3].Position != 6 {
				t.Fatalf("positions %d %d", set.Records[2].Position, set.Records[3].Position)
			}
		})
	}
}

func TestTagInvalidAppends(t *testing.T) {
	b := mustBuilder(t, DefaultConfig())
	for name, r := range map[string]Record{
		"caller sets the flag":   {Flags: FlagTagged},
		"tag on a control":       {Flags: FlagControl, ProducerID: "p"},
		"negative sequence":      {ProducerID: "p", Sequence: -1},
		"id too long":            {ProducerID: strings.Repeat("p", MaxProducerIDBytes+1)},
		"sequence without an id": {Sequence: 3},
	} {
		if err := b.Append(r); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if b.Len() != 0 {
		t.Fatal("refused appends changed the builder")
	}
	// The tag counts against the set's size.
	small := mustBuilder(t, Config{MaxRecordBytes: 20, MaxSetBytes: 40})
	if err := small.Append(Record{Payload: make([]byte, 20), ProducerID: "producer", Sequence: 1}); !errors.Is(err, ErrSetFull) {
		t.Fatalf("tag beyond MaxSetBytes: %v", err)
	}
}

// TestTagCorrupt: tags that lie are rejected.
func TestTagCorrupt(t *testing.T) {
	good := build(t, 0, CodecNone, Record{TxID: 1, Payload: []byte("a"), ProducerID: "p1", Sequence: 9})
	mutate := func(f func(e []byte) []byte) []byte { return f(bytes.Clone(good)) }
	idLen := HeaderSize + RecordOverhead + 1 // offset of the id length byte
	cases := map[string][]byte{
		"header bit cleared": mutate(func(e []byte) []byte { e[1] &^= codecTagged; return e }),
		"header bit on untagged set": func() []byte {
			e := build(t, 0, CodecNone, Record{TxID: 1})
			e[1] |= codecTagged
			return e
		}(),
		"zero id length":     mutate(func(e []byte) []byte { e[idLen] = 0; return e }),
		"id length too long": mutate(func(e []byte) []byte { e[idLen] = 200; return e }),
		"negative sequence":  mutate(func(e []byte) []byte { e[len(e)-8] = 0x80; return e }),
		"truncated tag": func() []byte {
			e := bytes.Clone(good[:len(good)-3])
			binary.BigEndian.PutUint32(e[14:], uint32(len(e)-HeaderSize))
			binary.BigEndian.PutUint32(e[18:], uint32(len(e)-HeaderSize))
			return e
		}(),
		"tag on a control record": mutate(func(e []byte) []byte { e[HeaderSize] |= byte(FlagControl); return e }),
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode(e, 0); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decoded: %v", err)
			}
		})
	}
}

// FuzzTaggedDecode: arbitrary entries seeded with tagged sets never make
// Decode panic, and whatever it accepts re-encodes to the same bytes.
func FuzzTaggedDecode(f *testing.F) {
	f.Add(build(f, 0, CodecNone, Record{TxID: 1, Payload: []byte("a"), ProducerID: "p", Sequence: 1}))
	f.Add(build(f, 3, CodecLZ4, Record{TxID: 1, Payload: bytes.Repeat([]byte("ab"), 100), ProducerID: "prod", Sequence: 7}, Record{Flags: FlagControl}))
	f.Fuzz(func(t *testing.T, entry []byte) {
		set, err := Decode(entry, 1<<20)
		if err != nil || set.Codec != CodecNone {
			return
		}
		b := mustBuilder(t, Config{MaxRecordBytes: 1 << 20, MaxSetBytes: MaxBodyBytes})
		b.Reset(set.BasePosition)
		for _, r := range set.Records {
			r.Flags &^= FlagTagged
			if err := b.Append(r); err != nil {
				t.Fatalf("re-append %+v: %v", r, err)
			}
		}
		again, err := b.Build(CodecNone)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, entry) {
			t.Fatalf("re-encoded differently:\n%x\n%x", entry, again)
		}
	})
}
