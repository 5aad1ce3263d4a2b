package dlog

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestDLSNTextRoundTrip(t *testing.T) {
	for _, d := range []DLSN{InitialDLSN, {3, 1042, 7}, {math.MaxInt64, math.MaxInt64, math.MaxInt64}} {
		got, err := ParseDLSN(d.String())
		if err != nil || got != d {
			t.Fatalf("ParseDLSN(%q) = %v, %v; want %v", d.String(), got, err, d)
		}
	}
}

func TestParseDLSNRejects(t *testing.T) {
	for _, s := range []string{"", "1", "1:2", "1:2:3:4", "0:0:0", "-1:0:0", "1:-2:0", "a:b:c", " 1:2:3", "1:02:3", "+1:2:3", "1:2:99999999999999999999"} {
		if _, err := ParseDLSN(s); !errors.Is(err, ErrInvalidDLSN) {
			t.Errorf("ParseDLSN(%q) err = %v; want ErrInvalidDLSN", s, err)
		}
	}
}

func TestDLSNOrder(t *testing.T) {
	seq := []DLSN{{1, 0, 0}, {1, 0, 1}, {1, 1, 0}, {2, 0, 0}, {10, 0, 0}}
	for i := range seq {
		for j := range seq {
			want := cmp64(int64(i), int64(j))
			if got := seq[i].Compare(seq[j]); got != want {
				t.Fatalf("%v.Compare(%v) = %d; want %d", seq[i], seq[j], got, want)
			}
			bi, _ := seq[i].MarshalBinary()
			bj, _ := seq[j].MarshalBinary()
			if got := bytes.Compare(bi, bj); got != want {
				t.Fatalf("binary order of %v vs %v = %d; want %d", seq[i], seq[j], got, want)
			}
		}
	}
}

func FuzzParseDLSN(f *testing.F) {
	f.Add("3:1042:7")
	f.Add("1:0:0")
	f.Add("9223372036854775807:0:0")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDLSN(s)
		if err != nil {
			return
		}
		if !d.IsValid() {
			t.Fatalf("ParseDLSN(%q) accepted invalid %v", s, d)
		}
		if d.String() != s {
			t.Fatalf("non-canonical text %q parsed to %v", s, d)
		}
	})
}

func FuzzDLSNBinary(f *testing.F) {
	b, _ := DLSN{3, 1042, 7}.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var d DLSN
		if err := d.UnmarshalBinary(b); err != nil {
			return
		}
		again, _ := d.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("binary round trip changed %x to %x", b, again)
		}
	})
}
