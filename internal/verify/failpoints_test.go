package verify

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dlog-io/dlog/internal/bugs"
)

// TestMarkerWatch: lines are counted once each, across reads that end in
// the middle of a line, and only complete lines count.
func TestMarkerWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bookie-0.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := &markerWatch{path: path}
	write := func(s string) {
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.count(bugs.FailpointArmedMarker); n != 0 {
		t.Fatalf("empty log: %d", n)
	}
	write("noise\n" + bugs.FailpointArmedMarker + " journal-fsync-eio-after=3\n" + bugs.FailpointFiredMarker + " x")
	if a, f := m.count(bugs.FailpointArmedMarker), m.count(bugs.FailpointFiredMarker); a != 1 || f != 0 {
		t.Fatalf("armed %d fired %d, want 1 0 (the fired line is not complete)", a, f)
	}
	write(" fsync fails\nlevel=ERROR msg=\"bookie is read-only for good\"\n" + bugs.FailpointArmedMarker + " again\n")
	if a, f, r := m.count(bugs.FailpointArmedMarker), m.count(bugs.FailpointFiredMarker), m.count("read-only for good"); a != 2 || f != 1 || r != 1 {
		t.Fatalf("armed %d fired %d read-only %d, want 2 1 1", a, f, r)
	}
	if a := m.count(bugs.FailpointArmedMarker); a != 2 {
		t.Fatalf("armed counted twice: %d", a)
	}
}
