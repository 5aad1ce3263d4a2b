package proxy

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/namespace"
)

func dl(e, s int64) dlog.DLSN { return dlog.DLSN{LSSN: 1, EntryID: e, SlotID: s} }

// ok results for n records in entry e from slot s, txid t.
func okResults(n int, e, s, t int64) []writeResult {
	out := make([]writeResult, n)
	for i := range out {
		out[i] = writeResult{dlsn: dl(e, s+int64(i)), txid: t}
	}
	return out
}

func TestProducerTable(t *testing.T) {
	type step struct {
		op       string // begin, finish, fail, apply, check
		id       string
		first, n int64
		e, s, tx int64
		// check expectations
		dups   int  // duplicate results returned
		wait   bool // a write in flight covers the first sequence
		tooOld bool
	}
	cases := []struct {
		name  string
		runs  int
		steps []step
	}{
		{name: "unknown producer is new", steps: []step{{op: "check", id: "p", first: 5, n: 1}}},
		{name: "retry of an acknowledged write", steps: []step{
			{op: "begin", id: "p", first: 0, n: 1}, {op: "finish", id: "p", first: 0, n: 1, e: 3, s: 0, tx: 7},
			{op: "check", id: "p", first: 0, n: 1, dups: 1},
			{op: "check", id: "p", first: 1, n: 1},
		}},
		{name: "retry while in flight waits", steps: []step{
			{op: "begin", id: "p", first: 0, n: 1},
			{op: "check", id: "p", first: 0, n: 1, wait: true},
			{op: "check", id: "p", first: 1, n: 1},
		}},
		{name: "two in flight", steps: []step{
			{op: "begin", id: "p", first: 0, n: 1}, {op: "begin", id: "p", first: 1, n: 1},
			{op: "check", id: "p", first: 1, n: 1, wait: true},
			{op: "finish", id: "p", first: 1, n: 1, e: 2, s: 1},
			{op: "check", id: "p", first: 0, n: 1, wait: true},
			{op: "check", id: "p", first: 1, n: 1, dups: 1},
			{op: "finish", id: "p", first: 0, n: 1, e: 2, s: 0},
			{op: "check", id: "p", first: 0, n: 2, dups: 2},
		}},
		{name: "failed write leaves a hole: too old", steps: []step{
			{op: "begin", id: "p", first: 0, n: 1}, {op: "begin", id: "p", first: 1, n: 1},
			{op: "fail", id: "p", first: 0, n: 1}, {op: "finish", id: "p", first: 1, n: 1, e: 1, s: 0},
			{op: "check", id: "p", first: 0, n: 1, tooOld: true},
		}},
		{name: "bulk retry: duplicate prefix, new suffix", steps: []step{
			{op: "begin", id: "p", first: 10, n: 5}, {op: "finish", id: "p", first: 10, n: 5, e: 4, s: 2},
			{op: "check", id: "p", first: 10, n: 8, dups: 5},
			{op: "check", id: "p", first: 13, n: 3, dups: 2},
		}},
		{name: "old runs are forgotten", runs: 2, steps: []step{
			{op: "apply", id: "p", first: 0, e: 1}, {op: "apply", id: "p", first: 1, e: 2}, {op: "apply", id: "p", first: 2, e: 3},
			{op: "check", id: "p", first: 0, n: 1, tooOld: true},
			{op: "check", id: "p", first: 1, n: 2, dups: 2},
		}},
		{name: "rebuild merges contiguous records", runs: 1, steps: []step{
			{op: "apply", id: "p", first: 0, e: 5, s: 0}, {op: "apply", id: "p", first: 1, e: 5, s: 1}, {op: "apply", id: "p", first: 2, e: 5, s: 2},
			{op: "check", id: "p", first: 0, n: 3, dups: 3},
		}},
		{name: "producers are separate", steps: []step{
			{op: "apply", id: "a", first: 4, e: 1},
			{op: "check", id: "b", first: 4, n: 1},
			{op: "check", id: "a", first: 4, n: 1, dups: 1},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runs := c.runs
			if runs == 0 {
				runs = 16
			}
			tb := newProducerTable(100, runs)
			ops := map[string]*pendingOp{}
			for i, st := range c.steps {
				key := fmt.Sprintf("%s/%d", st.id, st.first)
				switch st.op {
				case "begin":
					ops[key] = tb.begin(st.id, st.first, st.n)
				case "finish":
					tb.finish(ops[key], okResults(int(st.n), st.e, st.s, st.tx))
				case "fail":
					res := make([]writeResult, st.n)
					for j := range res {
						res[j].err = dlog.ErrFenced
					}
					tb.finish(ops[key], res)
				case "apply":
					tb.apply(st.id, st.first, dl(st.e, st.s), st.tx)
				case "check":
					v := tb.check(st.id, st.first, st.n)
					if (v.wait != nil) != st.wait || (v.tooOld != nil) != st.tooOld || len(v.dups) != st.dups {
						t.Fatalf("step %d %+v: verdict wait=%v tooOld=%v dups=%d", i, st, v.wait != nil, v.tooOld, len(v.dups))
					}
					for j, d := range v.dups {
						if !d.duplicate {
							t.Fatalf("step %d: dup %d not marked", i, j)
						}
					}
				}
			}
		})
	}
}

// TestProducerTableOracle drives the table with random acknowledged
// writes and checks every answer against a plain map of what was written.
func TestProducerTableOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tb := newProducerTable(1000, 1<<20)
	oracle := map[string]map[int64]dlog.DLSN{}
	next := map[string]int64{}
	last := map[string]int64{}
	entry := int64(0)
	for range 5000 {
		id := fmt.Sprintf("p%d", rng.IntN(8))
		if oracle[id] == nil {
			oracle[id] = map[int64]dlog.DLSN{}
		}
		n := int64(1 + rng.IntN(4))
		first := next[id]
		if rng.IntN(3) == 0 && first > 0 {
			// A retry of earlier, acknowledged sequences (a skipped one
			// was never written: it would be too old).
			first = rng.Int64N(first)
			if _, ok := oracle[id][first]; !ok {
				// Skipped: new above the producer's last, too old below.
				v := tb.check(id, first, 1)
				if first > last[id] && (v.tooOld != nil || len(v.dups) > 0) || first < last[id] && v.tooOld == nil {
					t.Fatalf("skipped sequence %s %d (last %d): %+v", id, first, last[id], v)
				}
				continue
			}
			k := int64(1)
			for k < n {
				if _, ok := oracle[id][first+k]; !ok {
					break
				}
				k++
			}
			n = k
			v := tb.check(id, first, n)
			if v.wait != nil || v.tooOld != nil || int64(len(v.dups)) != n {
				t.Fatalf("retry %s %d+%d: %+v", id, first, n, v)
			}
			for i, d := range v.dups {
				if want := oracle[id][first+int64(i)]; d.dlsn != want {
					t.Fatalf("retry %s seq %d: %v, written at %v", id, first+int64(i), d.dlsn, want)
				}
			}
			continue
		}
		if v := tb.check(id, first, n); len(v.dups) != 0 || v.wait != nil || v.tooOld != nil {
			t.Fatalf("new write %s %d+%d: %+v", id, first, n, v)
		}
		op := tb.begin(id, first, n)
		entry++
		res := okResults(int(n), entry, 0, entry)
		tb.finish(op, res)
		for i := range n {
			oracle[id][first+i] = res[i].dlsn
		}
		last[id] = first + n - 1
		next[id] = first + n + int64(rng.IntN(2)) // sequences may skip
	}
}

func TestProducerTableEviction(t *testing.T) {
	tb := newProducerTable(2, 4)
	op := tb.begin("busy", 0, 1)
	tb.apply("a", 0, dl(1, 0), 1)
	tb.apply("b", 0, dl(2, 0), 1)
	if tb.len() != 2 || tb.get("busy", false) == nil {
		t.Fatalf("a producer with a write in flight was evicted (%d left)", tb.len())
	}
	tb.finish(op, okResults(1, 3, 0, 1))
	if tb.len() > 2 {
		t.Fatalf("%d producers, bound 2", tb.len())
	}
	// An evicted producer is unknown again: its retries count as new.
	for _, id := range []string{"a", "b", "busy"} {
		if tb.get(id, false) == nil {
			if v := tb.check(id, 0, 1); len(v.dups) != 0 || v.tooOld != nil {
				t.Fatalf("evicted producer %s: %+v", id, v)
			}
		}
	}
}

func TestWindowStart(t *testing.T) {
	seg := func(lssn, last int64, inProgress bool) namespace.SegmentInfo {
		return namespace.SegmentInfo{LSSN: lssn, LastEntryID: last, InProgress: inProgress}
	}
	cases := []struct {
		name    string
		segs    []namespace.SegmentInfo
		entries int64
		want    dlog.DLSN
	}{
		{"empty log", nil, 10, dlog.InitialDLSN},
		{"inside the last segment", []namespace.SegmentInfo{seg(1, 99, false), seg(2, -1, true)}, 10, dlog.DLSN{LSSN: 1, EntryID: 90}},
		{"exactly one segment", []namespace.SegmentInfo{seg(1, 9, false), seg(2, 9, false)}, 10, dlog.DLSN{LSSN: 2}},
		{"spans segments", []namespace.SegmentInfo{seg(1, 9, false), seg(2, 4, false), seg(3, -1, false)}, 8, dlog.DLSN{LSSN: 1, EntryID: 7}},
		{"more than the log", []namespace.SegmentInfo{seg(3, 4, false)}, 100, dlog.DLSN{LSSN: 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := windowStart(c.segs, c.entries); got != c.want {
				t.Fatalf("windowStart = %v, want %v", got, c.want)
			}
		})
	}
}
