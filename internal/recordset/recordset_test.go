package recordset

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"testing"

	"github.com/dlog-io/dlog"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"pgregory.net/rapid"
)

var allCodecs = []Codec{CodecNone, CodecLZ4, CodecZstd}

// fataler is what testing.TB and *rapid.T share.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

func mustBuilder(t fataler, cfg Config) *Builder {
	t.Helper()
	b, err := NewBuilder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func build(t fataler, base int64, codec Codec, recs ...Record) []byte {
	t.Helper()
	b := mustBuilder(t, DefaultConfig())
	b.Reset(base)
	for _, r := range recs {
		if err := b.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	out, err := b.Build(codec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGolden pins the byte layout doc.go describes.
func TestGolden(t *testing.T) {
	entry := build(t, 5, CodecNone,
		Record{TxID: 7, Payload: []byte("hi")},
		Record{Flags: FlagControl, TxID: 7},
		Record{TxID: -1, Payload: []byte{0xff}},
	)
	want := "" +
		"01" + "01" + "00000003" + "0000000000000005" + "0000002a" + "0000002a" + // header
		"00" + "0000000000000007" + "00000002" + "6869" + // user record, position 5
		"01" + "0000000000000007" + "00000000" + // control record
		"00" + "ffffffffffffffff" + "00000001" + "ff" // user record, position 6
	if got := hex.EncodeToString(entry); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	set, err := Decode(entry, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantPos := []int64{5, -1, 6}
	for i, r := range set.Records {
		if r.Position != wantPos[i] {
			t.Fatalf("record %d position %d, want %d", i, r.Position, wantPos[i])
		}
	}
}

func recordGen() *rapid.Generator[Record] {
	return rapid.Custom(func(t *rapid.T) Record {
		flags := rapid.SampledFrom([]Flags{0, 0, 0, FlagControl, FlagControl | FlagEndOfStream}).Draw(t, "flags")
		var payload []byte
		switch rapid.IntRange(0, 2).Draw(t, "kind") {
		case 0:
			payload = rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "random")
		case 1: // log-like, compressible
			payload = fmt.Appendf(nil, "2026-11-22T19:%02d:00Z INFO request id=%d path=/v1/logs/%d status=200",
				rapid.IntRange(0, 59).Draw(t, "min"), rapid.IntRange(0, 1000).Draw(t, "id"), rapid.IntRange(0, 9).Draw(t, "log"))
		case 2:
			payload = bytes.Repeat([]byte{rapid.Byte().Draw(t, "fill")}, rapid.IntRange(0, 2000).Draw(t, "n"))
		}
		return Record{Flags: flags, TxID: rapid.Int64().Draw(t, "txid"), Payload: payload}
	})
}

func TestRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		recs := rapid.SliceOfN(recordGen(), 1, 60).Draw(t, "records")
		base := rapid.Int64Range(0, 1<<40).Draw(t, "base")
		codec := rapid.SampledFrom(allCodecs).Draw(t, "codec")
		entry := build(t, base, codec, recs...)
		h, err := ParseHeader(entry)
		if err != nil {
			t.Fatal(err)
		}
		if h.Codec != codec && h.Codec != CodecNone {
			t.Fatalf("asked for %v, stored %v", codec, h.Codec)
		}
		if h.Codec != CodecNone && int(h.StoredSize) >= int(h.UncompressedSize) {
			t.Fatalf("stored %v body of %d bytes for %d uncompressed", h.Codec, h.StoredSize, h.UncompressedSize)
		}
		set, err := Decode(entry, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Records) != len(recs) || set.BasePosition != base {
			t.Fatalf("%d records base %d, want %d base %d", len(set.Records), set.BasePosition, len(recs), base)
		}
		pos := base
		for i, r := range set.Records {
			w := recs[i]
			if r.Flags != w.Flags || r.TxID != w.TxID || !bytes.Equal(r.Payload, w.Payload) {
				t.Fatalf("record %d = %+v, want %+v", i, r, w)
			}
			wantPos := int64(-1)
			if !w.Flags.IsControl() {
				wantPos = pos
				pos++
			}
			if r.Position != wantPos {
				t.Fatalf("record %d position %d, want %d", i, r.Position, wantPos)
			}
		}
	})
}

func TestBuilderLimits(t *testing.T) {
	cfg := Config{MaxRecordBytes: 100, MaxSetBytes: 240, FlushBytes: 120}
	b := mustBuilder(t, cfg)
	err := b.Append(Record{Payload: make([]byte, 101)})
	if !errors.Is(err, ErrRecordTooLarge) || !errors.Is(err, dlog.ErrRecordTooLarge) || !dlog.IsDefinite(err) {
		t.Fatalf("oversized record: %v", err)
	}
	if err := b.Append(Record{Payload: make([]byte, 100)}); err != nil {
		t.Fatal(err)
	}
	if b.Full() {
		t.Fatal("full at 113 bytes with FlushBytes 120")
	}
	if err := b.Append(Record{Flags: FlagControl, Payload: make([]byte, 10)}); err != nil {
		t.Fatal(err)
	}
	if !b.Full() || b.Len() != 2 || b.UserRecords() != 1 || b.Size() != 136 {
		t.Fatalf("full %v len %d user %d size %d", b.Full(), b.Len(), b.UserRecords(), b.Size())
	}
	if err := b.Append(Record{Payload: make([]byte, 100)}); !errors.Is(err, ErrSetFull) {
		t.Fatalf("append past MaxSetBytes: %v", err)
	}
	if b.Len() != 2 || b.Size() != 136 {
		t.Fatal("failed append changed the builder")
	}
	for _, f := range []Flags{FlagEndOfStream, 0x4, 0x80} {
		if err := b.Append(Record{Flags: f}); !errors.Is(err, ErrInvalidRecord) || !dlog.IsDefinite(err) {
			t.Fatalf("flags %#x: %v", f, err)
		}
	}
	if _, err := b.Build(Codec(9)); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("unknown codec: %v", err)
	}
	b.Reset(3)
	if _, err := b.Build(CodecNone); !errors.Is(err, ErrEmpty) {
		t.Fatalf("empty build: %v", err)
	}
	// Positions must fit an int64: the last one may be MaxInt64.
	b.Reset(1<<63 - 1)
	if err := b.Append(Record{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(Record{Flags: FlagControl}); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(Record{}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("position overflow: %v", err)
	}
	entry, err := b.Build(CodecNone)
	if err != nil {
		t.Fatal(err)
	}
	if set, err := Decode(entry, 0); err != nil || set.Records[0].Position != 1<<63-1 {
		t.Fatalf("decode at the last position: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"default", DefaultConfig(), true},
		{"flush zero means max", Config{MaxRecordBytes: 10, MaxSetBytes: 23}, true},
		{"record does not fit a set", Config{MaxRecordBytes: 11, MaxSetBytes: 23}, false},
		{"set above format limit", Config{MaxRecordBytes: 10, MaxSetBytes: MaxBodyBytes + 1}, false},
		{"zero record", Config{MaxRecordBytes: 0, MaxSetBytes: 100}, false},
		{"flush above max", Config{MaxRecordBytes: 10, MaxSetBytes: 100, FlushBytes: 101}, false},
		{"negative flush", Config{MaxRecordBytes: 10, MaxSetBytes: 100, FlushBytes: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestParseCodec(t *testing.T) {
	for _, c := range allCodecs {
		got, err := ParseCodec(c.String())
		if err != nil || got != c {
			t.Fatalf("ParseCodec(%q) = %v, %v", c, got, err)
		}
	}
	if _, err := ParseCodec("gzip"); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("gzip: %v", err)
	}
}

func TestIncompressibleStoredRaw(t *testing.T) {
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(i*7919 + i*i*31 + i>>3)
	}
	rng := rapid.SliceOfN(rapid.Byte(), 4096, 4096).Example(1)
	for _, c := range allCodecs {
		entry := build(t, 0, c, Record{Payload: rng})
		if h, _ := ParseHeader(entry); h.Codec != CodecNone {
			t.Fatalf("%v: random payload stored as %v", c, h.Codec)
		}
	}
}

// corruptOK asserts that decoding the bytes fails with ErrCorrupt or
// succeeds; it never panics (a panic fails the test by itself).
func decodeNoPanic(t *testing.T, entry []byte) error {
	t.Helper()
	_, err := Decode(entry, 0)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v does not wrap ErrCorrupt", err)
	}
	if err != nil && !errors.Is(err, dlog.ErrCorrupt) {
		t.Fatalf("error %v does not wrap dlog.ErrCorrupt", err)
	}
	return err
}

func sampleEntries(t *testing.T) map[string][]byte {
	var recs []Record
	for i := range 40 {
		recs = append(recs, Record{TxID: int64(1000 + i), Payload: fmt.Appendf(nil, "record %d: the quick brown fox jumps over the lazy dog %d", i, i%3)})
		if i%10 == 9 {
			recs = append(recs, Record{Flags: FlagControl, TxID: int64(1000 + i)})
		}
	}
	out := map[string][]byte{}
	for _, c := range allCodecs {
		e := build(t, 77, c, recs...)
		if h, _ := ParseHeader(e); h.Codec != c {
			t.Fatalf("sample for %v stored as %v", c, h.Codec)
		}
		out[c.String()] = e
	}
	return out
}

func TestTruncationIsCorrupt(t *testing.T) {
	for name, entry := range sampleEntries(t) {
		t.Run(name, func(t *testing.T) {
			for n := range len(entry) {
				if err := decodeNoPanic(t, entry[:n]); err == nil {
					t.Fatalf("truncated to %d of %d bytes: decoded", n, len(entry))
				}
			}
			if err := decodeNoPanic(t, append(entry[:len(entry):len(entry)], 0)); err == nil {
				t.Fatal("trailing byte accepted")
			}
		})
	}
}

func TestBitFlipsNeverPanic(t *testing.T) {
	for name, entry := range sampleEntries(t) {
		t.Run(name, func(t *testing.T) {
			step := 1
			if testing.Short() {
				step = 7
			}
			for bit := 0; bit < len(entry)*8; bit += step {
				c := bytes.Clone(entry)
				c[bit/8] ^= 1 << (bit % 8)
				err := decodeNoPanic(t, c)
				// Every header byte but the txid-free base position is
				// checked; flips in the base position stay decodable only
				// when the result is non-negative.
				if bit/8 < HeaderSize && err == nil && !(bit/8 >= 6 && bit/8 < 14) {
					t.Fatalf("flip of header bit %d accepted", bit)
				}
			}
		})
	}
}

// TestInconsistentBodies builds headers by hand around bodies that lie.
func TestInconsistentBodies(t *testing.T) {
	rec := func(flags byte, payload string, declared uint32) []byte {
		b := []byte{flags}
		b = binary.BigEndian.AppendUint64(b, 1)
		b = binary.BigEndian.AppendUint32(b, declared)
		return append(b, payload...)
	}
	entry := func(count uint32, base int64, body []byte) []byte {
		return append(appendHeader(nil, Header{Version: 1, Codec: CodecNone, Count: count, BasePosition: base,
			UncompressedSize: uint32(len(body)), StoredSize: uint32(len(body))}), body...)
	}
	tests := []struct {
		name  string
		entry []byte
	}{
		{"trailing garbage in body", entry(1, 0, append(rec(0, "ab", 2), 0xee))},
		{"payload length too long", entry(1, 0, rec(0, "ab", 3))},
		{"count too high", entry(2, 0, rec(0, "ab", 2))},
		{"count beyond body", entry(1000, 0, rec(0, "ab", 2))},
		{"zero count", entry(0, 0, nil)},
		{"negative base", entry(1, -1, rec(0, "ab", 2))},
		{"eos without control", entry(1, 0, rec(2, "", 0))},
		{"unknown flag", entry(1, 0, rec(4, "", 0))},
		{"bad version", append([]byte{2}, entry(1, 0, rec(0, "", 0))[1:]...)},
		{"codec zero", append([]byte{1, 0}, entry(1, 0, rec(0, "", 0))[2:]...)},
		{"none with sizes differing", func() []byte {
			e := entry(1, 0, rec(0, "", 0))
			binary.BigEndian.PutUint32(e[14:], 14)
			return e
		}()},
		{"position overflow", entry(2, 1<<63-1, append(rec(0, "", 0), rec(0, "", 0)...))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := decodeNoPanic(t, tc.entry); err == nil {
				t.Fatal("decoded")
			}
		})
	}
	// The last position an int64 can hold is fine.
	if _, err := Decode(entry(2, 1<<63-1, append(rec(0, "", 0), rec(1, "", 0)...)), 0); err != nil {
		t.Fatal(err)
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func withBody(codec Codec, count, declared uint32, stored []byte) []byte {
	return append(appendHeader(nil, Header{Version: 1, Codec: codec, Count: count,
		UncompressedSize: declared, StoredSize: uint32(len(stored))}), stored...)
}

func TestDecompressionBombs(t *testing.T) {
	zeros := make([]byte, 32<<20)
	zframe := zstdEncoder().EncodeAll(zeros, nil)
	lblock := make([]byte, lz4.CompressBlockBound(4<<20))
	n, err := lz4.CompressBlock(zeros[:4<<20], lblock, nil)
	if err != nil || n == 0 {
		t.Fatalf("lz4: %d %v", n, err)
	}
	lblock = lblock[:n]
	// A zstd frame whose content size field lies: patch it to 1 KiB.
	var h zstd.Header
	if err := h.Decode(zframe); err != nil || !h.HasFCS {
		t.Fatalf("zstd header: %v %+v", err, h)
	}
	lying := bytes.Clone(zframe)
	fcsSize := map[byte]int{0: 1, 1: 2, 2: 4, 3: 8}[lying[4]>>6]
	if fcsSize != 4 {
		t.Fatalf("expected a 4-byte content size field, got %d", fcsSize)
	}
	binary.LittleEndian.PutUint32(lying[h.HeaderSize-4:], 1024)
	streamed := func() []byte { // a frame without content size
		var buf bytes.Buffer
		w, _ := zstd.NewWriter(&buf)
		w.Write(zeros[:1<<20])
		w.Close()
		return buf.Bytes()
	}()

	tests := []struct {
		name     string
		entry    []byte
		maxAlloc uint64
	}{
		{"zstd 32 MiB declared 1 KiB", withBody(CodecZstd, 1, 1024, zframe), 64 << 10},
		{"zstd 32 MiB declared 8 MiB", withBody(CodecZstd, 1, MaxBodyBytes, zframe), 64 << 10},
		{"zstd lying content size", withBody(CodecZstd, 1, 1024, lying), 1 << 20},
		{"zstd without content size", withBody(CodecZstd, 1, 1024, streamed), 1 << 20},
		{"zstd declared over limit", withBody(CodecZstd, 1, MaxBodyBytes+1, zframe), 64 << 10},
		{"lz4 4 MiB declared 1 KiB", withBody(CodecLZ4, 1, 1024, lblock), 64 << 10},
		{"lz4 ratio impossible", withBody(CodecLZ4, 1, MaxBodyBytes, lblock), 64 << 10},
		{"count amplification", withBody(CodecZstd, 1<<31, MaxBodyBytes, zframe), 64 << 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			got := allocated(func() { _, err = Decode(tc.entry, 0) })
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			if got > tc.maxAlloc {
				t.Fatalf("allocated %d bytes, bound %d", got, tc.maxAlloc)
			}
		})
	}
	// And the caller's own limit applies before any allocation.
	ok := build(t, 0, CodecZstd, Record{Payload: zeros[:1<<20]})
	if _, err := Decode(ok, 1<<19); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("over the caller's limit: %v", err)
	}
	if _, err := Decode(ok, 2<<20); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentCodecs(t *testing.T) {
	entries := sampleEntries(t)
	done := make(chan error)
	for g := range 8 {
		go func() {
			var err error
			for i := range 50 {
				c := allCodecs[(g+i)%3]
				b, _ := NewBuilder(DefaultConfig())
				var e []byte
				if err = b.Append(Record{Payload: bytes.Repeat([]byte("abc"), 100+g)}); err != nil {
					break
				}
				if e, err = b.Build(c); err != nil {
					break
				}
				if _, err = Decode(e, 0); err != nil {
					break
				}
				if _, err = Decode(entries[c.String()], 0); err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
