package checker

import (
	"fmt"
	"math"
	"sort"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
)

// ref points at evidence: a history event or a drain record (-1: none).
type ref struct{ ev, drain int }

type dlsnInfo struct {
	value    string
	first    ref
	conflict bool
}

type valueInfo struct {
	dlsns []dlog.DLSN // distinct positions the value was observed at
	refs  []ref       // first evidence per position
	set   map[dlog.DLSN]struct{}
	// read: delivered by a reader session or the drain. byReader: by a
	// reader session (not the drain).
	read, byReader bool
	firstReadT     int64
	firstReadEv    int
}

func (v *valueInfo) addDLSN(d dlog.DLSN, r ref) {
	if v.set != nil {
		if _, ok := v.set[d]; ok {
			return
		}
		v.set[d] = struct{}{}
	} else {
		for _, x := range v.dlsns {
			if x == d {
				return
			}
		}
	}
	v.dlsns = append(v.dlsns, d)
	v.refs = append(v.refs, r)
	if v.set == nil && len(v.dlsns) >= 8 {
		// A value at many positions: keep membership tests O(1).
		v.set = make(map[dlog.DLSN]struct{}, len(v.dlsns))
		for _, x := range v.dlsns {
			v.set[x] = struct{}{}
		}
	}
}

// placements checks the value <-> DLSN map (inconsistent-dlsn, duplicate,
// duplicate-retried), where values came from (phantom,
// definite-misclassified) and whether acknowledged values survived (lost).
func (c *checker) placements(l *logData, counts *Counts) {
	at := map[dlog.DLSN]*dlsnInfo{}
	vals := map[string]*valueInfo{}
	order := append([]string(nil), l.values...)
	val := func(v string) *valueInfo {
		vi := vals[v]
		if vi == nil {
			vi = &valueInfo{firstReadT: math.MaxInt64, firstReadEv: -1}
			vals[v] = vi
			if _, attempted := l.byValue[v]; !attempted {
				order = append(order, v)
			}
		}
		return vi
	}
	for _, v := range l.values {
		val(v)
	}
	observe := func(d dlog.DLSN, v string, r ref) {
		di := at[d]
		if di == nil {
			at[d] = &dlsnInfo{value: v, first: r}
		} else if di.value != v && !di.conflict {
			di.conflict = true
			first := di.first
			c.add(PropInconsistentDLSN, l.name, func() Example {
				return Example{
					DLSN: d.String(), Value: v,
					Detail: fmt.Sprintf("DLSN %s holds %q and %q", d, di.value, v),
					Events: c.evs(first.ev, r.ev), Drain: c.drainRecs(l, first.drain, r.drain),
				}
			})
		}
		val(v).addDLSN(d, r)
	}
	for _, a := range l.attempts {
		if a.status == stOK {
			counts.AppendsOK++
			observe(a.dlsn, a.value, ref{a.comp, -1})
		}
	}
	for i := range l.reads {
		r := &l.reads[i]
		observe(r.dlsn, r.value, ref{r.ev, -1})
		vi := val(r.value)
		vi.read, vi.byReader = true, true
		if r.t < vi.firstReadT {
			vi.firstReadT, vi.firstReadEv = r.t, r.ev
		}
	}
	if l.drain != nil {
		for i, r := range l.drain.Records {
			observe(r.DLSN, r.Value, ref{-1, i})
			val(r.Value).read = true
		}
	}
	counts.Reads = len(l.reads)
	counts.ReaderSessions = len(l.sessions)
	counts.Truncates = len(l.truncs)
	counts.Epochs = len(l.epochs)

	for _, v := range order {
		c.valueChecks(l, v, vals[v], counts)
	}
	l.vals = vals
	l.conflicts = map[dlog.DLSN]bool{}
	for d, di := range at {
		if di.conflict {
			l.conflicts[d] = true
		}
	}
	c.lostAcked(l, counts)
	c.lostRead(l)
}

func (c *checker) drainRecs(l *logData, idx ...int) []history.DrainRecord {
	var out []history.DrainRecord
	for _, i := range idx {
		if i >= 0 && l.drain != nil && i < len(l.drain.Records) {
			out = append(out, l.drain.Records[i])
		}
	}
	return out
}

func (c *checker) valueChecks(l *logData, v string, vi *valueInfo, counts *Counts) {
	atts := l.byValue[v]
	for _, a := range atts {
		switch a.status {
		case stFail:
			counts.AppendsFail++
		case stInfo, stPending:
			if a.status == stInfo {
				counts.AppendsInfo++
			} else {
				counts.AppendsPending++
			}
			if vi.read {
				counts.ResolvedPresent++
			} else {
				counts.ResolvedAbsent++
			}
		case stOK:
			if !vi.byReader {
				counts.Unseen++
			}
		}
	}
	if vi.read && len(atts) == 0 {
		c.add(PropPhantom, l.name, func() Example {
			return Example{
				Value: v, DLSN: vi.dlsns[0].String(),
				Detail: fmt.Sprintf("value %q was delivered but never appended to this log", v),
				Events: c.evs(vi.refs[0].ev), Drain: c.drainRecs(l, vi.refs[0].drain),
			}
		})
		return
	}
	if len(atts) == 0 {
		return
	}
	minInv := atts[0].invT
	placeable := 0
	for _, a := range atts {
		minInv = min(minInv, a.invT)
		if a.mayHaveEffect() {
			placeable++
		}
	}
	if vi.byReader && vi.firstReadT < minInv {
		c.add(PropPhantom, l.name, func() Example {
			return Example{
				Value:  v,
				Detail: fmt.Sprintf("value %q was delivered at time %d, before its append was invoked", v, vi.firstReadT),
				Events: append(c.evs(vi.firstReadEv), c.attemptEvents(atts[0])...),
			}
		})
	}
	if vi.read && placeable == 0 {
		classes := map[string]bool{}
		for _, a := range atts {
			classes[a.class] = true
		}
		p := c.props[PropDefiniteMisclassified]
		if p.ByClass == nil {
			p.ByClass = map[string]int{}
		}
		for cl := range classes {
			if cl == "" {
				cl = "(none)"
			}
			p.ByClass[cl]++
		}
		c.add(PropDefiniteMisclassified, l.name, func() Example {
			return Example{
				Value: v, DLSN: vi.dlsns[0].String(),
				Detail: fmt.Sprintf("value %q failed definitely (%s) yet was delivered at %s", v, atts[0].class, vi.dlsns[0]),
				Events: append(c.attemptEvents(atts[0]), c.evs(vi.refs[0].ev)...), Drain: c.drainRecs(l, vi.refs[0].drain),
			}
		})
	}
	if len(vi.dlsns) >= 2 {
		prop, why := PropDuplicate, "never retried"
		if placeable >= 2 && len(vi.dlsns) <= placeable {
			prop, why = PropDuplicateRetried, fmt.Sprintf("appended %d times", placeable)
		} else if placeable >= 2 {
			why = fmt.Sprintf("at %d positions but appended only %d times", len(vi.dlsns), placeable)
		}
		c.add(prop, l.name, func() Example {
			ex := Example{Value: v, DLSN: vi.dlsns[0].String(), Detail: fmt.Sprintf("value %q at %s and %s (%s)", v, vi.dlsns[0], vi.dlsns[1], why)}
			for _, r := range vi.refs[:2] {
				ex.Events = append(ex.Events, c.evs(r.ev)...)
				ex.Drain = append(ex.Drain, c.drainRecs(l, r.drain)...)
			}
			return ex
		})
	}
}

// lostAcked: every acknowledged append must be in the drain at exactly its
// DLSN unless a truncation excuses it. Without a drain, Jepsen's read rule,
// adapted to readers that may start anywhere: it is lost if some reader
// session delivered records on both sides of its DLSN but no reader ever
// delivered it there.
func (c *checker) lostAcked(l *logData, counts *Counts) {
	type key struct {
		v string
		d dlog.DLSN
	}
	var readPairs map[key]bool
	var spans []span
	if l.drain == nil {
		readPairs = map[key]bool{}
		for _, r := range l.reads {
			readPairs[key{r.value, r.dlsn}] = true
		}
		spans = sessionSpans(l)
	}
	for _, a := range l.attempts {
		if a.status != stOK {
			continue
		}
		var detail string
		var drainIdx = -1
		if l.drain != nil {
			i, ok := l.drainAt[a.dlsn]
			if ok && l.drain.Records[i].Value == a.value {
				continue
			}
			detail = fmt.Sprintf("acknowledged at %s but the drain has nothing there", a.dlsn)
			if ok {
				drainIdx = i
				detail = fmt.Sprintf("acknowledged at %s but the drain has %q there", a.dlsn, l.drain.Records[i].Value)
			}
		} else {
			if readPairs[key{a.value, a.dlsn}] {
				continue
			}
			sp, ok := covering(spans, a.dlsn)
			if !ok {
				continue
			}
			detail = fmt.Sprintf("acknowledged at %s; no reader delivered it, though session %s delivered %s and %s", a.dlsn, sp.session, sp.lo, sp.hi)
		}
		if l.excused(a.dlsn, a.invT, a.compT, c.opts.StrictTruncation) {
			counts.TruncatedAcked++
			continue
		}
		c.add(PropLost, l.name, func() Example {
			return Example{Value: a.value, DLSN: a.dlsn.String(), Detail: detail, Events: c.attemptEvents(a), Drain: c.drainRecs(l, drainIdx)}
		})
	}
}

// lostRead: a record a reader delivered must still be in the drain unless
// a truncation excuses it. Reads past a sealed end are read-past-seal's,
// acknowledged records lostAcked's, and a DLSN that the drain gives another
// value is inconsistent-dlsn's.
func (c *checker) lostRead(l *logData) {
	if l.drain == nil {
		return
	}
	type key struct {
		v string
		d dlog.DLSN
	}
	seen := map[key]bool{}
	for i := range l.reads {
		r := &l.reads[i]
		if _, ok := l.drainAt[r.dlsn]; ok || l.pastSeal(r.dlsn) {
			continue
		}
		k := key{r.value, r.dlsn}
		if seen[k] {
			continue
		}
		seen[k] = true
		atts := l.byValue[r.value]
		if len(atts) == 0 {
			continue // phantom
		}
		acked := false
		minInv := atts[0].invT
		for _, a := range atts {
			minInv = min(minInv, a.invT)
			if a.status == stOK && a.dlsn == r.dlsn {
				acked = true
			}
		}
		// Strict truncation counts the first delivery as the record's
		// acknowledgement.
		if acked || l.excused(r.dlsn, minInv, r.t, c.opts.StrictTruncation) {
			continue
		}
		c.add(PropLost, l.name, func() Example {
			return Example{
				Value: r.value, DLSN: r.dlsn.String(),
				Detail: fmt.Sprintf("delivered at %s by session %s, missing from the drain", r.dlsn, r.session.id),
				Events: c.evs(r.ev),
			}
		})
	}
}

// pastSeal reports whether d lies beyond the sealed end of its segment in
// the final metadata.
func (l *logData) pastSeal(d dlog.DLSN) bool {
	s := l.segments[d.LSSN]
	return s != nil && s.State == history.Completed && d.EntryID > s.LastEntryID
}

// span is the range of DLSNs one reader session delivered.
type span struct {
	lo, hi  dlog.DLSN
	session string
	// hiMax is the highest hi among this span and those before it (spans
	// are sorted by lo).
	hiMax   dlog.DLSN
	hiMaxAt int
}

func sessionSpans(l *logData) []span {
	var out []span
	for _, s := range l.sessions {
		if len(s.reads) == 0 {
			continue
		}
		sp := span{lo: l.reads[s.reads[0]].dlsn, session: s.id}
		sp.hi = sp.lo
		for _, ri := range s.reads {
			d := l.reads[ri].dlsn
			if d.Less(sp.lo) {
				sp.lo = d
			}
			if sp.hi.Less(d) {
				sp.hi = d
			}
		}
		out = append(out, sp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lo.Less(out[j].lo) })
	for i := range out {
		out[i].hiMax, out[i].hiMaxAt = out[i].hi, i
		if i > 0 && out[i].hiMax.Less(out[i-1].hiMax) {
			out[i].hiMax, out[i].hiMaxAt = out[i-1].hiMax, out[i-1].hiMaxAt
		}
	}
	return out
}

// covering returns a span with lo < d < hi, if there is one.
func covering(spans []span, d dlog.DLSN) (span, bool) {
	i := sort.Search(len(spans), func(i int) bool { return !spans[i].lo.Less(d) })
	if i == 0 {
		return span{}, false
	}
	best := spans[spans[i-1].hiMaxAt]
	return best, d.Less(best.hi)
}
