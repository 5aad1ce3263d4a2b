package journal

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// oracleRecords decodes records back to back from b, independently of the
// package's decoder, stopping at the first zero length, overrun or
// checksum mismatch (checksums masked with salt).
func oracleRecords(b []byte, salt uint32) [][]byte {
	out, _ := oracleScan(b, 0, salt, -1)
	return out
}

// oracleScan decodes the records of a journal file's contents b from off
// as doc.go specifies: records back to back, each checksum the CRC32C of
// the length field and the payload XOR salt. With limit >= 0 (the next
// file names where this one ends) the records must end exactly there;
// otherwise they end at the first record that is not whole and valid, and
// the end is clean if it is a zero length field followed by zeros up to
// endMarkerBytes past it rounded up to a page (salt != 0, version 2), or by
// zeros to the end of b (salt == 0, version 1).
func oracleScan(b []byte, off int, salt uint32, limit int) (out [][]byte, clean bool) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	for {
		if limit >= 0 && off == limit {
			return out, true
		}
		if off >= len(b) {
			return out, limit < 0
		}
		n, ok := 0, false
		if off+8 <= len(b) {
			n = int(binary.LittleEndian.Uint32(b[off:]))
			if n > 0 && n <= len(b)-off-8 {
				covered := append(append([]byte(nil), b[off:off+4]...), b[off+8:off+8+n]...)
				ok = crc32.Checksum(covered, tab)^salt == binary.LittleEndian.Uint32(b[off+4:])
			}
		}
		if ok && (limit < 0 || off+8+n <= limit) {
			out = append(out, b[off+8:off+8+n])
			off += 8 + n
			continue
		}
		if limit >= 0 {
			return out, false
		}
		end := len(b)
		if salt != 0 {
			end = min(len(b), (off+8+4095)/4096*4096)
		}
		return out, !ok && bytes.Count(b[off:end], []byte{0}) == end-off && (off+8 > len(b) || n == 0)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte{}, uint32(0))
	f.Add(appendRecord(nil, []byte("hello"), 0), uint32(0))
	f.Add(appendRecord(nil, []byte("hello"), 7), uint32(7))
	f.Add(appendRecord(nil, []byte("hello"), 7), uint32(8))
	f.Add(appendRecord(appendRecord(nil, []byte("a"), 3), []byte("bc"), 3), uint32(3))
	f.Add(append(appendRecord(nil, []byte("torn"), 1), 9, 0, 0, 0, 1, 2), uint32(1))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, uint32(0))
	f.Fuzz(func(t *testing.T, b []byte, salt uint32) {
		want := oracleRecords(b, salt)
		var got [][]byte
		for off := 0; ; {
			payload, size, st := decodeRecord(b[off:], salt)
			if st != recordOK {
				break
			}
			if !bytes.Equal(appendRecord(nil, payload, salt), b[off:off+size]) {
				t.Fatalf("record at %d does not re-encode to its bytes", off)
			}
			if salt != 0 {
				if _, _, st := decodeRecord(b[off:], salt^1); st == recordOK {
					t.Fatalf("record at %d matches two salts", off)
				}
			}
			got = append(got, payload)
			off += size
		}
		if len(got) != len(want) {
			t.Fatalf("decoded %d records, oracle %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d differs from the oracle", i)
			}
		}
	})
}

// FuzzReplay replays a journal file whose tail (after a few valid records)
// is arbitrary bytes, optionally in a recycled file (the rest of the file
// holds an earlier life's records, valid under that life's salt) and
// optionally followed by a second file. Replay must not fail or panic,
// must yield exactly the records an independent decoder finds before the
// first bad one (never an earlier life's), must cut durably (a second
// replay yields the same and cuts nothing), and appends must land after
// the cut.
func FuzzReplay(f *testing.F) {
	f.Add(uint8(0), false, false, false, uint16(0), []byte{})
	f.Add(uint8(3), false, false, false, uint16(0), appendRecord(nil, []byte("fuzz"), 7))
	f.Add(uint8(2), false, true, false, uint16(0), append(appendRecord(nil, []byte("ok"), 7), 0xde, 0xad))
	f.Add(uint8(1), false, true, false, uint16(0), append(make([]byte, 16), appendRecord(nil, []byte("after a gap"), 7)...))
	f.Add(uint8(4), true, false, false, uint16(0), []byte("dlogjrnl garbage header"))
	f.Add(uint8(5), false, true, false, uint16(0), []byte{})
	f.Add(uint8(3), false, false, true, uint16(0), []byte{})
	f.Add(uint8(3), false, true, true, uint16(1), []byte{})
	f.Add(uint8(6), false, true, true, uint16(77), appendRecord(nil, []byte("old"), 3))
	f.Add(uint8(2), false, false, true, uint16(0), appendRecord(nil, []byte("old life"), 3))
	f.Fuzz(func(t *testing.T, valid uint8, header, twoFiles, recycled bool, prevEnd uint16, tail []byte) {
		const (
			fileSize = 8 << 10
			id       = 7 // the file's id now
			oldID    = 3 // its id in its earlier life, when recycled
		)
		fs := vfs.NewMem()
		cfg := testConfig(t, "/j")
		cfg.FS = fs
		cfg.FileSizeBytes = fileSize
		cfg.MaxRecordBytes = 1000

		content := make([]byte, fileSize)
		if recycled {
			// The earlier life filled the file: records all the way.
			off := copy(content, fileHeader{id: oldID}.encode())
			for i := 0; off+8+50 <= fileSize; i++ {
				off += copy(content[off:], appendRecord(nil, bytes.Repeat([]byte{byte(i)}, 50), fileSalt(fileFormatV2, oldID)))
			}
		}
		copy(content, fileHeader{id: id}.encode())
		off := fileHeaderSize
		for i := range int(valid % 8) {
			r := bytes.Repeat([]byte{byte('a' + i)}, 1+i*7)
			if recycled && i%2 == 1 {
				r = make([]byte, 50) // the length of the records underneath
			}
			off += copy(content[off:], appendRecord(nil, r, fileSalt(fileFormatV2, id)))
		}
		copy(content[off:], tail)
		if header && len(tail) > 0 {
			copy(content[:fileHeaderSize], tail)
		}
		// With twoFiles, a second file follows with one good record,
		// naming the first as its predecessor and prevEnd as where its
		// records end (0: unknown).
		limit := -1
		if twoFiles && prevEnd > 0 {
			limit = int(prevEnd)
		}
		var want [][]byte
		h, ok := decodeFileHeader(content[:fileHeaderSize])
		switch {
		case ok && h.id == id:
			var clean bool
			want, clean = oracleScan(content, int(h.size()), h.salt(), limit)
			if twoFiles && clean {
				want = append(want, []byte("second"))
			}
		case !twoFiles && (allZero(content[:fileHeaderSize]) || ok && h.id < id):
			// Nothing of this life; nothing follows.
		default:
			// A bad header, or an empty first file that the second names
			// as its predecessor: nothing is replayed.
		}

		must.NoError(t, fs.MkdirAll("/j", 0o755))
		writeFile := func(id uint64, b []byte) {
			w, err := fs.Create("/j/"+fileName(id), vfs.WriteCategoryUnspecified)
			must.NoError(t, err)
			_, err = w.Write(bytes.Clone(b)) // Write may scribble on its input
			must.NoError(t, err)
			must.NoError(t, w.Close())
		}
		writeFile(id, content)
		if twoFiles {
			second := make([]byte, fileSize)
			copy(second, fileHeader{id: id + 1, prev: id, prevEnd: int64(prevEnd)}.encode())
			copy(second[fileHeaderSize:], appendRecord(nil, []byte("second"), fileSalt(fileFormatV2, id+1)))
			writeFile(id+1, second)
		}

		check := func(got []replayed) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("replayed %d records, oracle %d", len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i].data, want[i]) {
					t.Fatalf("record %d differs from the oracle", i)
				}
			}
		}
		j, got := openReplay(t, cfg, Position{})
		check(got)
		must.NoError(t, j.Close())

		j, got = openReplay(t, cfg, Position{})
		check(got)
		must.Zero(t, j.Stats().ReplayCutBytes, "the second replay cut again")
		end, err := j.AppendSync(t.Context(), []byte("appended"))
		must.NoError(t, err)
		if len(got) > 0 {
			must.Equal(t, 1, end.Compare(got[len(got)-1].next))
		}
		must.NoError(t, j.Close())
		_, got = openReplay(t, cfg, Position{})
		must.Len(t, got, len(want)+1)
		must.Equal(t, []byte("appended"), got[len(want)].data)
	})
}

func FuzzPositionBinary(f *testing.F) {
	f.Add(make([]byte, 16))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0x80, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Position
		if err := p.UnmarshalBinary(b); err != nil {
			return
		}
		if p.Offset < 0 {
			t.Fatalf("decoded a negative offset from %x", b)
		}
		enc, err := p.MarshalBinary()
		must.NoError(t, err)
		if !bytes.Equal(enc, b) {
			t.Fatalf("%x decodes to %v which encodes to %x", b, p, enc)
		}
	})
}

func TestLengthChecksum(t *testing.T) {
	tab := crc32.MakeTable(crc32.Castagnoli)
	for _, n := range []uint32{0, 1, 255, 256, 1 << 20, 0xdeadbeef, ^uint32(0)} {
		b := binary.LittleEndian.AppendUint32(nil, n)
		must.Equal(t, crc32.Checksum(b, tab), lengthChecksum(n), "n=%d", n)
	}
}

// encodeV1 is a version-1 header, as the journal wrote them before
// version 2 (it reads them still).
func encodeV1(id, prev uint64) []byte {
	b := make([]byte, fileHeaderSizeV1)
	copy(b[0:8], fileMagic[:])
	binary.LittleEndian.PutUint32(b[8:12], fileFormatV1)
	binary.LittleEndian.PutUint64(b[12:20], id)
	binary.LittleEndian.PutUint64(b[20:28], prev)
	binary.LittleEndian.PutUint32(b[28:32], crc32.Checksum(b[0:28], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func FuzzDecodeFileHeader(f *testing.F) {
	f.Add(fileHeader{id: 1}.encode())
	f.Add(fileHeader{id: 7, prev: 3, prevEnd: 4096}.encode())
	f.Add(encodeV1(7, 3))
	f.Add(make([]byte, fileHeaderSize))
	f.Add([]byte("dlogjrnl"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := decodeFileHeader(b)
		if !ok {
			return
		}
		switch h.version {
		case fileFormatV1:
			if h.prevEnd != 0 || !bytes.Equal(encodeV1(h.id, h.prev), b[:fileHeaderSizeV1]) {
				t.Fatalf("%x decodes to %+v which encodes differently", b, h)
			}
		case fileFormatV2:
			if !bytes.Equal(h.encode(), b[:fileHeaderSize]) {
				t.Fatalf("%x decodes to %+v which encodes differently", b, h)
			}
		default:
			t.Fatalf("%x decodes to version %d", b, h.version)
		}
	})
}
