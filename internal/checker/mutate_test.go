package checker

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
)

// subject is a correct generated history being mutated.
type subject struct {
	rng    *rand.Rand
	events []history.Event
	drains history.Drains
	h      *history.History // of the original events (indexes stay valid until events are inserted or removed)
}

func cloneDrains(ds history.Drains) history.Drains {
	out := history.Drains{}
	for k, d := range ds {
		c := *d
		c.Records = slices.Clone(d.Records)
		c.Segments = slices.Clone(d.Segments)
		out[k] = &c
	}
	return out
}

func newSubject(seed uint64) *subject {
	events, drains := generate(defaultGenConfig(seed))
	h, err := history.Validate(events)
	if err != nil {
		panic(err)
	}
	s := &subject{rng: rand.New(rand.NewPCG(seed, 7)), drains: cloneDrains(drains), h: h}
	for _, e := range events {
		s.events = append(s.events, e.Clone())
	}
	return s
}

func (s *subject) logs() []string {
	var out []string
	for name := range s.drains {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// attemptInfo summarises the single-append attempts of a value.
type valueFacts struct {
	log      string
	attempts []history.Op
	kinds    []history.Kind
	types    []history.Type // completion type; 0 if pending
	minInvT  int64
	readEvs  []int // non-drain deliveries
	inDrain  bool
}

func (s *subject) values() map[string]*valueFacts {
	out := map[string]*valueFacts{}
	get := func(v, log string) *valueFacts {
		f := out[v]
		if f == nil {
			f = &valueFacts{log: log, minInvT: 1 << 62}
			out[v] = f
		}
		return f
	}
	for _, op := range s.h.Ops {
		inv := s.events[op.Invoke]
		var vals []string
		switch inv.Kind {
		case history.Append:
			vals = []string{inv.Value}
		case history.AppendBulk:
			for _, r := range inv.Records {
				vals = append(vals, r.Value)
			}
		default:
			continue
		}
		var t history.Type
		if !op.Pending() {
			t = s.events[op.Complete].Type
		}
		for _, v := range vals {
			f := get(v, inv.Log)
			f.attempts = append(f.attempts, op)
			f.kinds = append(f.kinds, inv.Kind)
			f.types = append(f.types, t)
			f.minInvT = min(f.minInvT, inv.Time)
		}
	}
	for i, e := range s.events {
		if e.Kind == history.Read && e.Type == history.OK {
			f := get(e.Value, e.Log)
			f.readEvs = append(f.readEvs, i)
		}
	}
	for _, d := range s.drains {
		for _, r := range d.Records {
			get(r.Value, d.Log).inDrain = true
		}
	}
	return out
}

// single reports whether the value has one single-append attempt of type t
// (0: pending).
func (f *valueFacts) single(types ...history.Type) bool {
	return len(f.attempts) == 1 && f.kinds[0] == history.Append && slices.Contains(types, f.types[0])
}

func (f *valueFacts) seen() bool { return f.inDrain || len(f.readEvs) > 0 }

// readsAt returns the indexes of deliveries of d in log.
func (s *subject) readsAt(log string, d dlog.DLSN) []int {
	var out []int
	for i, e := range s.events {
		if e.Kind == history.Read && e.Type == history.OK && e.Log == log && e.DLSN == d {
			out = append(out, i)
		}
	}
	return out
}

func (s *subject) sortedValues(vals map[string]*valueFacts) []string {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sessions returns, per reader session, the indexes of its deliveries.
func (s *subject) sessions() (ids []string, reads map[string][]int) {
	reads = map[string][]int{}
	for i, e := range s.events {
		if e.Kind == history.Read && e.Type == history.OK {
			if _, ok := reads[e.Session]; !ok {
				ids = append(ids, e.Session)
			}
			reads[e.Session] = append(reads[e.Session], i)
		}
	}
	return ids, reads
}

// maxTruncTarget is the highest target of any truncate not failed
// definitely, in log.
func (s *subject) maxTruncTarget(log string) dlog.DLSN {
	var m dlog.DLSN
	for _, op := range s.h.Ops {
		inv := s.events[op.Invoke]
		if inv.Kind == history.Truncate && inv.Log == log && (op.Pending() || s.events[op.Complete].Type != history.Fail) {
			m = maxDLSN(m, inv.DLSN)
		}
	}
	return m
}

func (s *subject) insert(at int, e history.Event) {
	s.events = slices.Insert(s.events, at, e)
}

type mutation struct {
	name  string
	want  []string // exactly the properties that must fail
	may   []string // properties that may fail too (the mutation breaks them as well in some histories)
	opts  Options
	apply func(s *subject) bool // false: not applicable to this history
}

var mutations = []mutation{
	{
		name: "drop the acknowledged tail of a drain",
		want: []string{PropLost},
		apply: func(s *subject) bool {
			vals := s.values()
			for _, log := range s.logs() {
				d := s.drains[log]
				for i := len(d.Records) - 1; i >= 0; i-- {
					f := vals[d.Records[i].Value]
					if f.single(history.OK) {
						d.Records = d.Records[:i]
						return true
					}
				}
			}
			return false
		},
	},
	{
		name: "a read gives a DLSN a second value",
		want: []string{PropInconsistentDLSN},
		apply: func(s *subject) bool {
			vals := s.values()
			for _, u := range s.sortedValues(vals) {
				f := vals[u]
				if !f.single(history.Info, 0) || f.seen() {
					continue
				}
				for i, e := range s.events {
					if e.Kind == history.Read && e.Type == history.OK && e.Log == f.log && e.Time > f.minInvT {
						s.events[i].Value = u
						return true
					}
				}
			}
			return false
		},
	},
	{
		name: "a value never retried appears at a second DLSN",
		want: []string{PropDuplicate},
		apply: func(s *subject) bool {
			vals := s.values()
			for _, log := range s.logs() {
				d := s.drains[log]
				if len(d.Records) < 2 {
					continue
				}
				last := d.Records[len(d.Records)-1]
				for _, r := range d.Records[:len(d.Records)-1] {
					if vals[r.Value].single(history.OK) {
						dup := last
						dup.DLSN.SlotID++
						dup.Value = r.Value
						dup.SeqID++
						d.Records = append(d.Records, dup)
						return true
					}
				}
			}
			return false
		},
	},
	{
		name:  "a definitely failed value is read",
		want:  []string{PropDefiniteMisclassified},
		apply: func(s *subject) bool { return replaceResolved(s, false) },
	},
	{
		name:  "a value never appended is read",
		want:  []string{PropPhantom},
		apply: func(s *subject) bool { return replaceResolved(s, true) },
	},
	{
		name:  "swap the DLSNs of two real-time ordered appends",
		want:  []string{PropAppendOrder, PropAppendLinearizable},
		apply: swapOrdered,
	},
	{
		name: "a reader skips a record",
		want: []string{PropReaderGap},
		apply: func(s *subject) bool {
			return withSession(s, 3, func(reads []int) bool {
				i := reads[1+s.rng.IntN(len(reads)-2)]
				s.events = slices.Delete(s.events, i, i+1)
				return true
			})
		},
	},
	{
		name: "a reader repeats a record",
		want: []string{PropReaderDuplicate},
		apply: func(s *subject) bool {
			return withSession(s, 2, func(reads []int) bool {
				i := reads[s.rng.IntN(len(reads))]
				s.insert(i+1, s.events[i].Clone())
				return true
			})
		},
	},
	{
		name: "a reader delivers two records out of order",
		want: []string{PropReaderOrder},
		apply: func(s *subject) bool {
			vals := s.values()
			return withSession(s, 3, func(reads []int) bool {
				for k := 0; k+1 < len(reads); k++ {
					a, b := &s.events[reads[k]], &s.events[reads[k+1]]
					// b's record is delivered earlier now: its append must
					// have been invoked before.
					if vals[b.Value].minInvT >= a.Time {
						continue
					}
					a.DLSN, b.DLSN = b.DLSN, a.DLSN
					a.Value, b.Value = b.Value, a.Value
					a.TxID, b.TxID = b.TxID, a.TxID
					a.SeqID, b.SeqID = b.SeqID, a.SeqID
					return true
				}
				return false
			})
		},
	},
	{
		name:  "a reader reads past a sealed entry",
		want:  []string{PropReadPastSeal},
		apply: readPastSeal,
	},
	{
		name: "recovery sealed a segment short of an acknowledged entry",
		want: []string{PropReadPastSeal, PropPostFenceAck},
		apply: func(s *subject) bool {
			for _, log := range s.logs() {
				d := s.drains[log]
				for i := range d.Segments {
					seg := &d.Segments[i]
					if seg.State == history.Completed && seg.LastEntryID >= 1 && lastEntryAcked(s, log, seg) {
						seg.LastEntryID--
						return true
					}
				}
			}
			return false
		},
	},
	{
		name: "an append is acknowledged in an epoch after it was fenced",
		want: []string{PropPostFenceAck},
		// When a newer epoch had been acknowledged before, the old epoch's
		// comeback also breaks ownership as a register.
		may: []string{PropOwnershipLinearizable},
		apply: func(s *subject) bool {
			fenced := map[string]int64{} // epoch -> first fence time
			for _, e := range s.events {
				if e.Epoch != "" && (e.Kind == history.FenceObserved || e.Error == history.ClassFenced) {
					if _, ok := fenced[e.Epoch]; !ok {
						fenced[e.Epoch] = e.Time
					}
				}
			}
			for _, op := range s.h.Ops {
				if op.Pending() {
					continue
				}
				inv, comp := s.events[op.Invoke], &s.events[op.Complete]
				if comp.Kind != history.Append || comp.Type != history.OK {
					continue
				}
				for epoch, t := range fenced {
					if epoch != comp.Epoch && inv.Time > t && epochLog(epoch) == comp.Log {
						comp.Epoch = epoch
						return true
					}
				}
			}
			return false
		},
	},
	{
		name: "a read reports a wrong sequence id",
		want: []string{PropSequenceID},
		apply: func(s *subject) bool {
			for i, e := range s.events {
				if e.Kind == history.Read && e.Type == history.OK && e.SeqID != nil {
					if _, ok := drainIndex(s.drains[e.Log], e.DLSN); ok {
						*s.events[i].SeqID++
						return true
					}
				}
			}
			return false
		},
	},
	{
		name: "a read reports a wrong txid",
		want: []string{PropTxID},
		apply: func(s *subject) bool {
			for i, e := range s.events {
				if e.Kind == history.Read && e.Type == history.OK {
					if _, ok := drainIndex(s.drains[e.Log], e.DLSN); ok {
						s.events[i].TxID += 1000
						return true
					}
				}
			}
			return false
		},
	},
	{
		name: "retried duplicates with idempotent writes",
		want: []string{PropDuplicateRetried},
		opts: Options{IdempotentWrites: true},
		apply: func(s *subject) bool {
			h, _ := history.Validate(s.events)
			rep := Check(h, s.drains, Options{PorcupineTimeout: -1})
			return rep.Property(PropDuplicateRetried).Count > 0
		},
	},
	{
		name: "a drain fails before the end",
		want: []string{PropDrainIncomplete},
		apply: func(s *subject) bool {
			s.drains[s.logs()[0]].Error = "dlog: corrupt data"
			return true
		},
	},
	{
		name: "a log has no drain",
		want: []string{PropDrainIncomplete},
		apply: func(s *subject) bool {
			delete(s.drains, s.logs()[0])
			return true
		},
	},
}

func epochLog(epoch string) string {
	i := len(epoch) - 1
	for i >= 0 && epoch[i] != '/' {
		i--
	}
	return epoch[:max(i, 0)]
}

func drainIndex(d *history.Drain, at dlog.DLSN) (int, bool) {
	if d == nil {
		return 0, false
	}
	for i, r := range d.Records {
		if r.DLSN == at {
			return i, true
		}
	}
	return 0, false
}

// lastEntryAcked reports whether an acknowledged append lies in the last
// entry of seg.
func lastEntryAcked(s *subject, log string, seg *history.Segment) bool {
	for _, op := range s.h.Ops {
		if op.Pending() {
			continue
		}
		c := s.events[op.Complete]
		if c.Log == log && c.Kind == history.Append && c.Type == history.OK && c.DLSN.LSSN == seg.LSSN && c.DLSN.EntryID == seg.LastEntryID {
			return true
		}
	}
	return false
}

// replaceResolved replaces, at one DLSN, an indeterminate value resolved
// only there by a definitely failed value (or, if phantom, by one never
// appended), in the drain and in every read.
func replaceResolved(s *subject, phantom bool) bool {
	vals := s.values()
	keys := s.sortedValues(vals)
	for _, log := range s.logs() {
		d := s.drains[log]
		for i, r := range d.Records {
			u := vals[r.Value]
			if !u.single(history.Info, 0) {
				continue
			}
			reads := s.readsAt(log, r.DLSN)
			firstRead := int64(1 << 62)
			for _, ri := range reads {
				firstRead = min(firstRead, s.events[ri].Time)
			}
			replacement := "ghost-1"
			if !phantom {
				replacement = ""
				for _, k := range keys {
					f := vals[k]
					if f.log == log && f.single(history.Fail) && !f.seen() && f.minInvT < firstRead {
						replacement = k
						break
					}
				}
				if replacement == "" {
					continue
				}
			}
			d.Records[i].Value = replacement
			for _, ri := range reads {
				s.events[ri].Value = replacement
			}
			return true
		}
	}
	return false
}

// swapOrdered swaps the positions of two acknowledged appends a and b of
// one segment with complete(a) < invoke(b), everywhere (acks, reads, drain,
// txids), so that only their order is wrong.
func swapOrdered(s *subject) bool {
	vals := s.values()
	byLog := map[string][]history.Op{}
	for _, op := range s.h.Ops {
		if op.Pending() {
			continue
		}
		c := s.events[op.Complete]
		if c.Kind == history.Append && c.Type == history.OK && vals[c.Value].single(history.OK) {
			byLog[c.Log] = append(byLog[c.Log], op)
		}
	}
	for _, log := range s.logs() {
		ops := byLog[log]
		for i, oa := range ops {
			for _, ob := range ops[i+1:] {
				ca := s.events[oa.Complete]
				ib, cb := s.events[ob.Invoke], s.events[ob.Complete]
				if !(ca.Time < ib.Time && ca.DLSN.Less(cb.DLSN) && ca.DLSN.LSSN == cb.DLSN.LSSN) {
					continue
				}
				da, db := ca.DLSN, cb.DLSN
				// b's value will be read at da: not before b was invoked.
				ok := true
				for _, ri := range s.readsAt(log, da) {
					if s.events[ri].Time < ib.Time {
						ok = false
					}
				}
				// A session opened at the end after a completed must not
				// now look like it started before a's new position.
				if ok && endSessionConflict(s, log, ca.Time, db) {
					ok = false
				}
				if !ok {
					continue
				}
				s.events[oa.Complete].DLSN, s.events[ob.Complete].DLSN = db, da
				s.events[oa.Complete].SeqID, s.events[ob.Complete].SeqID = s.events[ob.Complete].SeqID, s.events[oa.Complete].SeqID
				ta, tb := s.events[oa.Invoke].TxID, s.events[ob.Invoke].TxID
				for _, x := range []int{oa.Invoke, oa.Complete} {
					s.events[x].TxID = tb
				}
				for _, x := range []int{ob.Invoke, ob.Complete} {
					s.events[x].TxID = ta
				}
				swapValue := func(v string) string {
					switch v {
					case ca.Value:
						return cb.Value
					case cb.Value:
						return ca.Value
					}
					return v
				}
				for _, ri := range append(s.readsAt(log, da), s.readsAt(log, db)...) {
					s.events[ri].Value = swapValue(s.events[ri].Value)
				}
				d := s.drains[log]
				for k := range d.Records {
					if d.Records[k].DLSN == da || d.Records[k].DLSN == db {
						d.Records[k].Value = swapValue(d.Records[k].Value)
					}
				}
				return true
			}
		}
	}
	return false
}

// endSessionConflict reports whether an end-positioned session of log,
// opened after time t, delivered a DLSN <= d.
func endSessionConflict(s *subject, log string, t int64, d dlog.DLSN) bool {
	open := map[string]bool{}
	for _, op := range s.h.Ops {
		inv := s.events[op.Invoke]
		if inv.Kind == history.ReaderOpen && inv.Log == log && inv.Position.At == history.AtEnd && inv.Time > t && !op.Pending() {
			open[s.events[op.Complete].Session] = true
		}
	}
	for _, e := range s.events {
		if e.Kind == history.Read && e.Type == history.OK && open[e.Session] && !d.Less(e.DLSN) {
			return true
		}
	}
	return false
}

// withSession calls f with the deliveries of a session that has at least n
// of them, all at or above every truncation target of its log (so that no
// truncation excuses a skip).
func withSession(s *subject, n int, f func(reads []int) bool) bool {
	ids, reads := s.sessions()
	for _, id := range ids {
		rs := reads[id]
		if len(rs) < n {
			continue
		}
		floor := s.maxTruncTarget(s.events[rs[0]].Log)
		ok := true
		for _, ri := range rs {
			if s.events[ri].DLSN.Less(floor) {
				ok = false
			}
		}
		if ok && f(rs) {
			return true
		}
	}
	return false
}

// readPastSeal inserts, right after a session's delivery of the last
// record of a sealed segment, a delivery of an unresolved indeterminate
// value at the entry after the seal.
func readPastSeal(s *subject) bool {
	vals := s.values()
	keys := s.sortedValues(vals)
	for _, log := range s.logs() {
		d := s.drains[log]
		for _, seg := range d.Segments {
			if seg.State != history.Completed || seg.LastEntryID < 0 {
				continue
			}
			var last *history.DrainRecord
			for k := range d.Records {
				if r := &d.Records[k]; r.DLSN.LSSN == seg.LSSN && r.DLSN.EntryID == seg.LastEntryID {
					last = r
				}
			}
			if last == nil {
				continue
			}
			for _, ri := range s.readsAt(log, last.DLSN) {
				rd := s.events[ri]
				for _, k := range keys {
					f := vals[k]
					if f.log != log || !f.single(history.Info, 0) || f.seen() || f.minInvT >= rd.Time {
						continue
					}
					e := rd.Clone()
					e.Value = k
					e.DLSN = dlog.DLSN{LSSN: seg.LSSN, EntryID: seg.LastEntryID + 1}
					*e.SeqID++
					s.insert(ri+1, e)
					return true
				}
			}
		}
	}
	return false
}

// TestMutationsAreCaught applies each mutation to correct histories of
// many seeds; every application must be caught by exactly the expected
// properties.
func TestMutationsAreCaught(t *testing.T) {
	maxSeeds, wantApplied := 200, 6
	if testing.Short() {
		maxSeeds, wantApplied = 120, 3
	}
	for _, mu := range mutations {
		t.Run(mu.name, func(t *testing.T) {
			applied := 0
			for seed := uint64(0); seed < uint64(maxSeeds) && applied < wantApplied; seed++ {
				s := newSubject(seed)
				if !mu.apply(s) {
					continue
				}
				applied++
				h, err := history.Validate(s.events)
				if err != nil {
					t.Fatalf("seed %d: mutation made an invalid history: %v", seed, err)
				}
				rep := Check(h, s.drains, mu.opts)
				got := slices.DeleteFunc(rep.Failed(), func(p string) bool { return slices.Contains(mu.may, p) })
				want := slices.Clone(mu.want)
				sort.Strings(got)
				sort.Strings(want)
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d: failed properties %v, want %v\n%s", seed, got, want, table(rep))
				}
				if rep.Valid {
					t.Fatalf("seed %d: report valid despite %v", seed, got)
				}
				if applied == 1 {
					p := rep.Property(mu.want[0])
					t.Logf("seed %d: %s: %d, e.g. %s", seed, p.Name, p.Count, p.Examples[0].Detail)
				}
			}
			if applied < wantApplied {
				t.Fatalf("mutation applied to only %d histories of %d seeds", applied, maxSeeds)
			}
		})
	}
}
