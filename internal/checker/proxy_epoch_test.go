package checker

import (
	"slices"
	"sort"
	"testing"

	"github.com/dlog-io/dlog/internal/history"
)

// TestProxyEpochs runs the FENCE and OWNER rules on epochs named as the
// proxy target names them: the owning proxy with the segment number of
// the acknowledged DLSN ("proxy-0@3"), the drain naming each segment's
// epoch the same way from its metadata writer.
func TestProxyEpochs(t *testing.T) {
	// segs sets the drain's segments: one per writer, all but the last
	// sealed at entry last[i].
	segs := func(b *hb, writers []string, last []int64) *hb {
		b.drain.Segments = nil
		seq := int64(0)
		for i, w := range writers {
			l := int64(i + 1)
			seg := history.Segment{LSSN: l, State: history.Completed, LastEntryID: last[i], StartSeqID: history.Int64(seq), Epoch: w}
			if i == len(writers)-1 {
				seg.State, seg.LastEntryID = history.InProgress, -1
			}
			seq += last[i] + 1
			b.drain.Segments = append(b.drain.Segments, seg)
		}
		return b
	}
	tests := []struct {
		name  string
		build func() *hb
		want  []string
	}{
		{"a proxy re-acquires the log: a new epoch", func() *hb {
			b := segs(newHB(), []string{"proxy-0@1", "proxy-1@2", "proxy-0@3"}, []int64{0, 0, 0})
			b.invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "proxy-0@1").invoke("w2", "b", 2).ok("w2", "b", 2, d(2, 0, 0), "proxy-1@2")
			b.invoke("w1", "c", 3).ok("w1", "c", 3, d(3, 0, 0), "proxy-0@3")
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(2, 0, 0), 2, 1).rec("c", d(3, 0, 0), 3, 2)
		}, nil},
		{"the owner alone is no epoch: a re-acquisition looks like a comeback", func() *hb {
			b := segs(newHB(), []string{"", "", ""}, []int64{0, 0, 0})
			b.invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "proxy-0").invoke("w2", "b", 2).ok("w2", "b", 2, d(2, 0, 0), "proxy-1")
			b.invoke("w1", "c", 3).ok("w1", "c", 3, d(3, 0, 0), "proxy-0")
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(2, 0, 0), 2, 1).rec("c", d(3, 0, 0), 3, 2)
		}, []string{PropOwnershipLinearizable}},
		{"a roll within one ownership, appends in flight across it", func() *hb {
			b := segs(newHB(), []string{"proxy-0@1", "proxy-0@2"}, []int64{1, 0})
			b.invoke("w1", "a", 1).invoke("w2", "b", 2).ok("w1", "a", 1, d(1, 0, 0), "proxy-0@1").invoke("w1", "c", 3)
			b.ok("w1", "c", 3, d(2, 0, 0), "proxy-0@2").ok("w2", "b", 2, d(1, 1, 0), "proxy-0@1")
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(1, 1, 0), 2, 1).rec("c", d(2, 0, 0), 3, 2)
		}, nil},
		{"the old epoch acknowledges after the new epoch's first ack", func() *hb {
			b := segs(newHB(), []string{"proxy-0@1", "proxy-1@2"}, []int64{1, 0})
			b.invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "proxy-0@1").invoke("w2", "c", 3).ok("w2", "c", 3, d(2, 0, 0), "proxy-1@2")
			b.invoke("w1", "b", 2).ok("w1", "b", 2, d(1, 1, 0), "proxy-0@1")
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(1, 1, 0), 2, 1).rec("c", d(2, 0, 0), 3, 2)
		}, []string{PropOwnershipLinearizable, PropAppendOrder, PropAppendLinearizable}},
		{"a segment acknowledged by a proxy that did not create it", func() *hb {
			b := segs(newHB(), []string{"proxy-0@1", "proxy-1@2"}, []int64{0, 0})
			b.invoke("w1", "a", 1).ok("w1", "a", 1, d(1, 0, 0), "proxy-0@1").invoke("w1", "b", 2).ok("w1", "b", 2, d(2, 0, 0), "proxy-0@2")
			return b.rec("a", d(1, 0, 0), 1, 0).rec("b", d(2, 0, 0), 2, 1)
		}, []string{PropPostFenceAck}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.build()
			h, err := history.Validate(b.events)
			if err != nil {
				t.Fatal(err)
			}
			rep := Check(h, history.Drains{lg: b.drain}, Options{})
			got, want := rep.Failed(), slices.Clone(tt.want)
			sort.Strings(got)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Fatalf("failed %v, want %v\n%s", got, want, table(rep))
			}
		})
	}
}
