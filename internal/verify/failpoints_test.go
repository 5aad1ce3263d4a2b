package verify

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/metadata"
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

// TestRetentionTarget: the recorded truncate covers exactly the prefix of
// completed segments completed before the cutoff.
func TestRetentionTarget(t *testing.T) {
	now := time.Now()
	seg := func(lssn int64, completed time.Duration) metadata.Segment {
		s := metadata.Segment{LSSN: lssn, State: metadata.SegmentCompleted, Completed: now.Add(completed)}
		if completed == 0 {
			s.State, s.Completed = metadata.SegmentInProgress, time.Time{}
		}
		return s
	}
	tests := []struct {
		segs []metadata.Segment
		want dlog.DLSN
		ok   bool
	}{
		{nil, dlog.DLSN{}, false},
		{[]metadata.Segment{seg(3, 0)}, dlog.DLSN{}, false},
		{[]metadata.Segment{seg(3, time.Second), seg(4, 0)}, dlog.DLSN{}, false},
		{[]metadata.Segment{seg(3, -time.Hour), seg(5, -time.Minute), seg(6, time.Second), seg(7, 0)}, dlog.DLSN{LSSN: 6}, true},
		{[]metadata.Segment{seg(3, -time.Hour), seg(4, 0)}, dlog.DLSN{LSSN: 4}, true},
		{[]metadata.Segment{seg(3, -time.Hour), seg(4, -time.Hour)}, dlog.DLSN{LSSN: 5}, true},
	}
	for i, tt := range tests {
		got, ok := retentionTarget(tt.segs, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("case %d: %v %v, want %v %v", i, got, ok, tt.want, tt.ok)
		}
	}
}
