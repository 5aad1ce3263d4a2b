package journal

import (
	"bytes"
	"testing"
)

func TestPositionOrder(t *testing.T) {
	tests := []struct {
		name string
		a, b Position
		want int
	}{
		{name: "equal", a: Position{File: 3, Offset: 40}, b: Position{File: 3, Offset: 40}, want: 0},
		{name: "offset", a: Position{File: 3, Offset: 40}, b: Position{File: 3, Offset: 41}, want: -1},
		{name: "file wins over offset", a: Position{File: 4, Offset: 32}, b: Position{File: 3, Offset: 1 << 40}, want: 1},
		{name: "zero first", a: Position{}, b: Position{File: 1, Offset: 32}, want: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			must.Equal(t, tc.want, tc.a.Compare(tc.b))
			must.Equal(t, -tc.want, tc.b.Compare(tc.a))
			ea, err := tc.a.MarshalBinary()
			must.NoError(t, err)
			eb, err := tc.b.MarshalBinary()
			must.NoError(t, err)
			must.Equal(t, tc.want, bytes.Compare(ea, eb), "encodings sort like positions")
			var back Position
			must.NoError(t, back.UnmarshalBinary(ea))
			must.Equal(t, tc.a, back)
		})
	}
	must.Equal(t, "000000000000002a:1042", Position{File: 42, Offset: 1042}.String())
	must.True(t, Position{}.IsZero())
	_, err := Position{Offset: -1}.MarshalBinary()
	must.Error(t, err)
	var p Position
	must.Error(t, p.UnmarshalBinary(make([]byte, 15)))
	must.Error(t, p.UnmarshalBinary(bytes.Repeat([]byte{0xff}, 16)))
}

func TestFileNames(t *testing.T) {
	tests := []struct {
		name string
		file string
		id   uint64
		kind fileKind
		ok   bool
	}{
		{name: "journal", file: "00000000000000ff.journal", id: 255, kind: kindJournal, ok: true},
		{name: "quarantined", file: "0000000000000010.journal.cut", id: 16, kind: kindQuarantined, ok: true},
		{name: "free", file: "0000000000000011.journal.free", id: 17, kind: kindFree, ok: true},
		{name: "upper case", file: "00000000000000FF.journal"},
		{name: "short", file: "ff.journal"},
		{name: "zero id", file: "0000000000000000.journal"},
		{name: "spare", file: spareFileName},
		{name: "lock", file: lockFileName},
		{name: "sign", file: "+000000000000001.journal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, kind, ok := parseFileName(tc.file)
			must.Equal(t, tc.ok, ok)
			if ok {
				must.Equal(t, tc.id, id)
				must.Equal(t, tc.kind, kind)
			}
		})
	}
	must.Equal(t, "00000000000000ff.journal", fileName(255))
	must.Equal(t, "00000000000000ff.journal.free", freeName(255))
}
