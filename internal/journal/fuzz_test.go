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
// checksum mismatch.
func oracleRecords(b []byte) [][]byte {
	out, _ := oracleScan(b)
	return out
}

// oracleScan is oracleRecords that also reports whether the data ends
// cleanly: only zeros from where it stopped to the end of b.
func oracleScan(b []byte) (out [][]byte, clean bool) {
	off := 0
	defer func() {
		clean = bytes.Count(b[off:], []byte{0}) == len(b)-off
	}()
	for off+8 <= len(b) {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if n == 0 || n > len(b)-off-8 {
			break
		}
		covered := make([]byte, 0, 4+n)
		covered = append(covered, b[off:off+4]...)
		covered = append(covered, b[off+8:off+8+n]...)
		if crc32.Checksum(covered, crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(b[off+4:]) {
			break
		}
		out = append(out, b[off+8:off+8+n])
		off += 8 + n
	}
	return out, false
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte{})
	f.Add(appendRecord(nil, []byte("hello")))
	f.Add(appendRecord(appendRecord(nil, []byte("a")), []byte("bc")))
	f.Add(append(appendRecord(nil, []byte("torn")), 9, 0, 0, 0, 1, 2))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		want := oracleRecords(b)
		var got [][]byte
		for off := 0; ; {
			payload, size, st := decodeRecord(b[off:])
			if st != recordOK {
				break
			}
			if !bytes.Equal(appendRecord(nil, payload), b[off:off+size]) {
				t.Fatalf("record at %d does not re-encode to its bytes", off)
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
// is arbitrary bytes. Replay must not fail or panic, must yield exactly the
// records an independent decoder finds before the first bad one, must cut
// durably (a second replay yields the same and cuts nothing), and appends
// must land after the cut.
func FuzzReplay(f *testing.F) {
	f.Add(uint8(0), false, false, []byte{})
	f.Add(uint8(3), false, false, appendRecord(nil, []byte("fuzz")))
	f.Add(uint8(2), false, true, append(appendRecord(nil, []byte("ok")), 0xde, 0xad))
	f.Add(uint8(1), false, true, append(make([]byte, 16), appendRecord(nil, []byte("after a gap"))...))
	f.Add(uint8(4), true, false, []byte("dlogjrnl garbage header"))
	f.Add(uint8(5), false, true, []byte{})
	f.Fuzz(func(t *testing.T, valid uint8, header, twoFiles bool, tail []byte) {
		const fileSize = 8 << 10
		fs := vfs.NewMem()
		cfg := testConfig(t, "/j")
		cfg.FS = fs
		cfg.FileSizeBytes = fileSize
		cfg.MaxRecordBytes = 1000

		content := make([]byte, fileSize)
		copy(content, fileHeader{id: 1}.encode())
		off := fileHeaderSize
		for i := range int(valid % 8) {
			off += copy(content[off:], appendRecord(nil, bytes.Repeat([]byte{byte('a' + i)}, 1+i*7)))
		}
		copy(content[off:], tail)
		if header && len(tail) > 0 {
			copy(content[:fileHeaderSize], tail)
		}
		// With twoFiles, a second file follows with one good record: it is
		// replayed only if the first file ends cleanly.
		var want [][]byte
		if bytes.Equal(content[:fileHeaderSize], fileHeader{id: 1}.encode()) {
			var clean bool
			want, clean = oracleScan(content[fileHeaderSize:])
			if twoFiles && clean {
				want = append(want, []byte("second"))
			}
		}

		must.NoError(t, fs.MkdirAll("/j", 0o755))
		writeFile := func(id uint64, b []byte) {
			w, err := fs.Create("/j/"+fileName(id), vfs.WriteCategoryUnspecified)
			must.NoError(t, err)
			_, err = w.Write(bytes.Clone(b)) // Write may scribble on its input
			must.NoError(t, err)
			must.NoError(t, w.Close())
		}
		writeFile(1, content)
		if twoFiles {
			second := make([]byte, fileSize)
			copy(second, fileHeader{id: 2, prev: 1}.encode())
			copy(second[fileHeaderSize:], appendRecord(nil, []byte("second")))
			writeFile(2, second)
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

func FuzzDecodeFileHeader(f *testing.F) {
	f.Add(fileHeader{id: 1}.encode())
	f.Add(fileHeader{id: 7, prev: 3}.encode())
	f.Add(make([]byte, fileHeaderSize))
	f.Add([]byte("dlogjrnl"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok := decodeFileHeader(b)
		if !ok {
			return
		}
		if !bytes.Equal(h.encode(), b[:fileHeaderSize]) {
			t.Fatalf("%x decodes to %+v which encodes differently", b, h)
		}
	})
}
