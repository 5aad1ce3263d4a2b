package quorum

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// trackerModel is the dumb oracle for Tracker: it keeps the raw history
// (every ack and every replacement with a sequence number, the fragment
// list) and recomputes everything from it by definition.
type trackerModel struct {
	p         Params
	first     int64      // first entry this writer added
	fragments []fragment // ensemble by first entry; a later one wins on ties
	next      int64
	lac       int64
	acks      []ackEvent
	replaces  []replaceEvent
	failed    map[int]bool
	changing  bool
	seq       int
	// holds records which bookie physically stored which entry (any ack,
	// counted or not): the ground truth for the durability invariant.
	holds map[string]map[int64]bool
}

type fragment struct {
	first    int64
	ensemble []string
}

type ackEvent struct {
	entry  int64
	index  int
	bookie string
	seq    int
}

type replaceEvent struct {
	first int64
	index int
	seq   int
}

func (m *trackerModel) current() []string { return m.fragments[len(m.fragments)-1].ensemble }

func (m *trackerModel) memberAt(e int64, idx int) string {
	for i := len(m.fragments) - 1; i >= 0; i-- {
		if m.fragments[i].first <= e {
			return m.fragments[i].ensemble[idx]
		}
	}
	panic("no fragment")
}

// valid counts the write set indices of e holding a counted ack.
func (m *trackerModel) valid(e int64) int {
	n := 0
	for _, idx := range m.p.WriteSet(e) {
		if m.countedFrom(e, idx) {
			n++
		}
	}
	return n
}

func (m *trackerModel) advance() EntryRange {
	r := EntryRange{m.lac + 1, m.lac}
	for !m.changing && m.lac+1 < m.next && m.valid(m.lac+1) >= m.p.AckQuorum {
		m.lac++
	}
	r.Last = m.lac
	return r
}

func (m *trackerModel) stalled() []int64 {
	var out []int64
	for e := m.lac + 1; e < m.next; e++ {
		possible := m.valid(e)
		for _, idx := range m.p.WriteSet(e) {
			if !m.failed[idx] && !m.countedFrom(e, idx) {
				possible++
			}
		}
		if possible < m.p.AckQuorum {
			out = append(out, e)
		}
	}
	return out
}

// countedFrom reports whether index idx holds a counted ack for e: one
// from the bookie metadata lists for e at idx, received after the last
// replacement of idx that covered e.
func (m *trackerModel) countedFrom(e int64, idx int) bool {
	lastReplace := -1
	for _, r := range m.replaces {
		if r.index == idx && r.first <= e {
			lastReplace = max(lastReplace, r.seq)
		}
	}
	for _, a := range m.acks {
		if a.entry == e && a.index == idx && a.bookie == m.memberAt(e, idx) && a.seq > lastReplace {
			return true
		}
	}
	return false
}

// checkDurable is the invariant that matters (G1): every entry the tracker
// acknowledged is held by at least Qa distinct bookies that metadata lists in its
// write set.
func (m *trackerModel) checkDurable(t *rapid.T, lac int64) {
	for e := m.first; e <= lac; e++ {
		n := 0
		for _, idx := range m.p.WriteSet(e) {
			if m.holds[m.memberAt(e, idx)][e] {
				n++
			}
		}
		if n < m.p.AckQuorum {
			t.Fatalf("acknowledged entry %d is held by %d bookies of its write set, want ≥ %d", e, n, m.p.AckQuorum)
		}
	}
}

var universe = []string{"b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"}

// sent is an outstanding send the fake network may deliver.
type sent = Send

func TestTrackerAgainstModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		all := smallParams(5)
		p := rapid.SampledFrom(all).Draw(t, "params")
		ens := rapid.Permutation(universe).Draw(t, "universe")[:p.EnsembleSize]
		start := rapid.SampledFrom([]int64{-1, -1, 6}).Draw(t, "start LAC")
		tr, err := NewTrackerAfter(p, ens, start)
		if err != nil {
			t.Fatal(err)
		}
		m := &trackerModel{
			p: p, fragments: []fragment{{0, slices.Clone(ens)}}, lac: start, next: start + 1, first: start + 1,
			failed: map[int]bool{}, holds: map[string]map[int64]bool{},
		}
		var net []sent // outstanding sends
		deliver := func(s sent) {
			m.seq++
			m.acks = append(m.acks, ackEvent{s.EntryID, s.Index, s.Bookie, m.seq})
			if m.holds[s.Bookie] == nil {
				m.holds[s.Bookie] = map[int64]bool{}
			}
			m.holds[s.Bookie][s.EntryID] = true
			got, err := tr.Ack(s.EntryID, s.Index, s.Bookie)
			if err != nil {
				t.Fatalf("ack %+v: %v", s, err)
			}
			want := m.advance()
			if got != want && !(got.Empty() && want.Empty()) {
				t.Fatalf("ack %+v: acknowledged %v, model %v", s, got, want)
			}
		}
		checkSends := func(what string, got []Send, want []Send) {
			if !slices.Equal(got, want) {
				t.Fatalf("%s: sends %v, model %v", what, got, want)
			}
			net = append(net, got...)
		}
		actions := map[string]func(*rapid.T){
			"add": func(t *rapid.T) {
				if tr.Pending() > 12 {
					return // pipeline full
				}
				id, sends := tr.Add()
				if id != m.next {
					t.Fatalf("Add = %d, model %d", id, m.next)
				}
				m.next++
				var want []Send
				for _, idx := range p.WriteSet(id) {
					if !m.failed[idx] {
						want = append(want, Send{id, idx, m.current()[idx]})
					}
				}
				checkSends("add", sends, want)
			},
			"deliver": func(t *rapid.T) {
				if len(net) == 0 {
					return // nothing in flight
				}
				k := rapid.IntRange(0, len(net)-1).Draw(t, "send")
				s := net[k]
				if !rapid.Bool().Draw(t, "duplicate") {
					net = slices.Delete(net, k, k+1)
				}
				deliver(s)
			},
			"drop": func(t *rapid.T) {
				if len(net) == 0 {
					return // nothing in flight
				}
				k := rapid.IntRange(0, len(net)-1).Draw(t, "send")
				net = slices.Delete(net, k, k+1)
			},
			"junk-ack": func(t *rapid.T) {
				// An ack the network could not have produced from our sends,
				// or a stale one: from any bookie, any index, any entry.
				e := rapid.Int64Range(0, m.next+1).Draw(t, "entry")
				idx := rapid.IntRange(-1, p.EnsembleSize).Draw(t, "index")
				b := rapid.SampledFrom(universe).Draw(t, "bookie")
				invalid := e >= m.next || !p.InWriteSet(e, idx)
				got, err := tr.Ack(e, idx, b)
				if invalid {
					if !errors.Is(err, ErrInvalidAck) {
						t.Fatalf("junk ack (%d,%d,%s): err %v, want ErrInvalidAck", e, idx, b, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("ack (%d,%d,%s): %v", e, idx, b, err)
				}
				m.seq++
				m.acks = append(m.acks, ackEvent{e, idx, b, m.seq})
				if m.holds[b] == nil {
					m.holds[b] = map[int64]bool{}
				}
				// A bookie acks only what it stores.
				m.holds[b][e] = true
				want := m.advance()
				if got != want && !(got.Empty() && want.Empty()) {
					t.Fatalf("ack (%d,%d,%s): acknowledged %v, model %v", e, idx, b, got, want)
				}
			},
			"fail": func(t *rapid.T) {
				idx := rapid.IntRange(0, p.EnsembleSize-1).Draw(t, "index")
				got, err := tr.Fail(idx)
				if err != nil {
					t.Fatal(err)
				}
				m.failed[idx] = true
				if want := m.stalled(); !slices.Equal(got, want) {
					t.Fatalf("Fail(%d) stalled %v, model %v", idx, got, want)
				}
			},
			"begin": func(t *rapid.T) {
				first, err := tr.BeginChange()
				if m.changing {
					if !errors.Is(err, ErrChangeInProgress) {
						t.Fatalf("nested BeginChange: %v", err)
					}
					return
				}
				if err != nil || first != m.lac+1 {
					t.Fatalf("BeginChange = %d, %v; model LAC %d", first, err, m.lac)
				}
				m.changing = true
			},
			"commit": func(t *rapid.T) {
				repl := map[int]string{}
				for range rapid.IntRange(1, 2).Draw(t, "replacements") {
					repl[rapid.IntRange(0, p.EnsembleSize-1).Draw(t, "index")] = rapid.SampledFrom(universe).Draw(t, "bookie")
				}
				res, err := tr.CommitChange(repl)
				if !m.changing {
					if !errors.Is(err, ErrNoChange) {
						t.Fatalf("CommitChange without begin: %v", err)
					}
					return
				}
				next := slices.Clone(m.current())
				for i, b := range repl {
					next[i] = b
				}
				if distinct(next) != len(next) {
					if !errors.Is(err, ErrInvalidReplacement) {
						t.Fatalf("CommitChange(%v) on %v: err %v, want ErrInvalidReplacement", repl, m.current(), err)
					}
					return
				}
				if err != nil {
					t.Fatalf("CommitChange(%v): %v", repl, err)
				}
				first := m.lac + 1
				if res.FirstEntryID != first {
					t.Fatalf("FirstEntryID %d, model %d", res.FirstEntryID, first)
				}
				m.seq++
				m.fragments = append(m.fragments, fragment{first, next})
				for i := range repl {
					m.replaces = append(m.replaces, replaceEvent{first, i, m.seq})
					delete(m.failed, i)
				}
				var want []Send
				for e := first; e < m.next; e++ {
					for _, idx := range p.WriteSet(e) {
						if _, ok := repl[idx]; ok {
							want = append(want, Send{e, idx, next[idx]})
						}
					}
				}
				checkSends("commit", res.Resend, want)
				m.changing = false
				if wantAcked := m.advance(); res.Acked != wantAcked && !(res.Acked.Empty() && wantAcked.Empty()) {
					t.Fatalf("commit acknowledged %v, model %v", res.Acked, wantAcked)
				}
			},
			"abort": func(t *rapid.T) {
				got, err := tr.AbortChange()
				if !m.changing {
					if !errors.Is(err, ErrNoChange) {
						t.Fatalf("AbortChange without begin: %v", err)
					}
					return
				}
				m.changing = false
				if want := m.advance(); got != want && !(got.Empty() && want.Empty()) {
					t.Fatalf("abort acknowledged %v, model %v", got, want)
				}
			},
			"": func(t *rapid.T) {
				if tr.LAC() != m.lac || tr.NextEntryID() != m.next || tr.Changing() != m.changing {
					t.Fatalf("tracker LAC %d next %d changing %v; model %d %d %v",
						tr.LAC(), tr.NextEntryID(), tr.Changing(), m.lac, m.next, m.changing)
				}
				if !slices.Equal(tr.Ensemble(), m.current()) {
					t.Fatalf("ensemble %v, model %v", tr.Ensemble(), m.current())
				}
				if got, want := tr.Stalled(), m.stalled(); !slices.Equal(got, want) {
					t.Fatalf("stalled %v, model %v", got, want)
				}
				m.checkDurable(t, tr.LAC())
			},
		}
		// Weighted steps (rapid's Repeat picks uniformly, which starves
		// delivery and leaves few acknowledged entries per run).
		weights := map[string]int{"add": 4, "deliver": 12, "drop": 1, "junk-ack": 2,
			"fail": 1, "begin": 1, "commit": 2, "abort": 1}
		names := slices.Sorted(maps.Keys(weights))
		total := 0
		for _, n := range names {
			total += weights[n]
		}
		for range 40 + rapid.IntRange(0, 120).Draw(t, "steps") {
			k := rapid.IntRange(0, total-1).Draw(t, "action")
			for _, n := range names {
				if k -= weights[n]; k < 0 {
					actions[n](t)
					break
				}
			}
			actions[""](t)
		}

		// Liveness: close any change, replace every failed member with a
		// fresh bookie, deliver everything still useful: all entries must be
		// acknowledged.
		if tr.Changing() {
			if _, err := tr.AbortChange(); err != nil {
				t.Fatal(err)
			}
			m.changing = false
			m.advance()
		}
		if failed := tr.Failed(); len(failed) > 0 {
			if _, err := tr.BeginChange(); err != nil {
				t.Fatal(err)
			}
			repl := map[int]string{}
			for _, idx := range failed {
				repl[idx] = fmt.Sprintf("fresh%d", idx)
			}
			res, err := tr.CommitChange(repl)
			if err != nil {
				t.Fatal(err)
			}
			m.seq++
			next := slices.Clone(m.current())
			for i, b := range repl {
				next[i] = b
				m.replaces = append(m.replaces, replaceEvent{res.FirstEntryID, i, m.seq})
			}
			m.fragments = append(m.fragments, fragment{res.FirstEntryID, next})
			m.failed = map[int]bool{}
			m.advance()
			net = append(net, res.Resend...)
		}
		for _, s := range net {
			if tr.Ensemble()[s.Index] == s.Bookie {
				deliver(s)
			}
		}
		// Drops lost some sends for good: resend what members lack, as a
		// writer's retry would.
		for e := tr.LAC() + 1; e < tr.NextEntryID(); e++ {
			for _, idx := range p.WriteSet(e) {
				deliver(Send{e, idx, tr.Ensemble()[idx]})
			}
		}
		if tr.LAC() != tr.NextEntryID()-1 || tr.Pending() != 0 {
			t.Fatalf("after delivering everything: LAC %d, next %d, pending %d", tr.LAC(), tr.NextEntryID(), tr.Pending())
		}
		m.checkDurable(t, tr.LAC())
	})
}

func distinct(s []string) int {
	seen := map[string]bool{}
	for _, x := range s {
		seen[x] = true
	}
	return len(seen)
}
