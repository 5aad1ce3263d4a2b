package checker

import (
	"fmt"
	"slices"
	"sort"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
)

// refRec is a record of the reference order that reader sessions are
// judged against.
type refRec struct {
	dlsn dlog.DLSN
	txid int64
}

// reference returns the log's records in DLSN order as far as they are
// known: the drain (everything at or after the final truncation point),
// plus every record observed below that point (acknowledged or delivered),
// which the drain cannot show. Without a drain, every observed record.
func (l *logData) reference() []refRec {
	var refs []refRec
	below := func(d dlog.DLSN) bool { return l.drain == nil || d.Less(l.tFinal) }
	if l.drain != nil {
		for _, r := range l.drain.Records {
			refs = append(refs, refRec{r.DLSN, r.TxID})
		}
	}
	for _, r := range l.reads {
		if below(r.dlsn) {
			refs = append(refs, refRec{r.dlsn, r.txid})
		}
	}
	for _, a := range l.attempts {
		if a.status == stOK && below(a.dlsn) {
			refs = append(refs, refRec{a.dlsn, a.txid})
		}
	}
	sort.SliceStable(refs, func(i, j int) bool { return refs[i].dlsn.Less(refs[j].dlsn) })
	return slices.CompactFunc(refs, func(a, b refRec) bool { return a.dlsn == b.dlsn })
}

// firstAtOrAfter returns the index of the first reference record >= d.
func firstAtOrAfter(refs []refRec, d dlog.DLSN) int {
	return sort.Search(len(refs), func(i int) bool { return !refs[i].dlsn.Less(d) })
}

// firstAfter returns the index of the first reference record > d.
func firstAfter(refs []refRec, d dlog.DLSN) int {
	return sort.Search(len(refs), func(i int) bool { return d.Less(refs[i].dlsn) })
}

// readers checks G6 for every reader session and the drain:
//
//   - reader-order: deliveries strictly increase; a delivery before the
//     requested start (AtDLSN, AtTxID) or of a record acknowledged before
//     an AtEnd session opened.
//   - reader-duplicate: a DLSN delivered twice in a session, or a session
//     resumed after d that delivers d or earlier.
//   - reader-gap: a reference record that the session should have
//     delivered and never did: one lying between two records the session
//     delivered (consecutive in DLSN order), or before its first delivery
//     but at or after its start. Records below a truncation target are
//     excused if that truncate was invoked before the later delivery.
func (c *checker) readers(l *logData, counts *Counts) {
	refs := l.reference()
	l.ackedByComp = nil
	for _, a := range l.attempts {
		if a.status == stOK {
			l.ackedByComp = append(l.ackedByComp, a)
		}
	}
	sort.SliceStable(l.ackedByComp, func(i, j int) bool { return l.ackedByComp[i].compT < l.ackedByComp[j].compT })
	l.ackedPreMax = make([]*attempt, len(l.ackedByComp)+1)
	for i, a := range l.ackedByComp {
		l.ackedPreMax[i+1] = a
		if p := l.ackedPreMax[i]; p != nil && a.dlsn.Less(p.dlsn) {
			l.ackedPreMax[i+1] = p
		}
	}
	for _, s := range l.sessions {
		c.session(l, s, refs)
	}
	c.drainOrder(l)
	counts.ReadsBelowTruncation = l.readsBelowTruncation()
}

// readsBelowTruncation counts deliveries of records below the target of a
// truncate acknowledged before the delivery. dlog may delete truncated
// data lazily, so this is a statistic, not a violation.
func (l *logData) readsBelowTruncation() int {
	// byComp is sorted by completion time; indeterminate truncates sort
	// last (never) and are not counted as done.
	pre := make([]dlog.DLSN, len(l.byComp)+1)
	for i, t := range l.byComp {
		pre[i+1] = pre[i]
		if t.status == stOK {
			pre[i+1] = maxDLSN(pre[i], t.target)
		}
	}
	n := 0
	for _, r := range l.reads {
		i := sort.Search(len(l.byComp), func(i int) bool { return l.byComp[i].compT >= r.t })
		if r.dlsn.Less(pre[i]) {
			n++
		}
	}
	return n
}

func (c *checker) session(l *logData, s *session, refs []refRec) {
	if len(s.reads) == 0 {
		return
	}
	// Pass 1, delivery order: order and duplicates.
	delivered := make(map[dlog.DLSN]int, len(s.reads)) // DLSN -> first read index
	var hwm dlog.DLSN
	hwmRead := -1
	for _, ri := range s.reads {
		r := &l.reads[ri]
		if first, dup := delivered[r.dlsn]; dup {
			c.add(PropReaderDuplicate, l.name, func() Example {
				return Example{
					Value: r.value, DLSN: r.dlsn.String(),
					Detail: fmt.Sprintf("session %s delivered %s twice", s.id, r.dlsn),
					Events: c.evs(l.reads[first].ev, r.ev),
				}
			})
			continue
		}
		delivered[r.dlsn] = ri
		if hwmRead >= 0 && r.dlsn.Less(hwm) {
			prev := &l.reads[hwmRead]
			c.add(PropReaderOrder, l.name, func() Example {
				return Example{
					Value: r.value, DLSN: r.dlsn.String(),
					Detail: fmt.Sprintf("session %s delivered %s after %s", s.id, r.dlsn, prev.dlsn),
					Events: c.evs(prev.ev, r.ev),
				}
			})
			continue
		}
		hwm, hwmRead = r.dlsn, ri
	}
	// Pass 2, DLSN order: the start and gaps.
	sorted := make([]int, 0, len(delivered))
	for _, ri := range delivered {
		sorted = append(sorted, ri)
	}
	sort.Slice(sorted, func(i, j int) bool { return l.reads[sorted[i]].dlsn.Less(l.reads[sorted[j]].dlsn) })
	c.sessionStart(l, s, refs, &l.reads[sorted[0]])
	for i := 1; i < len(sorted); i++ {
		p, q := &l.reads[sorted[i-1]], &l.reads[sorted[i]]
		floor := l.floorAt(q.t)
		k := firstAfter(refs, p.dlsn)
		if k < len(refs) && refs[k].dlsn.Less(floor) {
			k = firstAtOrAfter(refs, floor)
		}
		if k < len(refs) && refs[k].dlsn.Less(q.dlsn) {
			missing := refs[k].dlsn
			c.add(PropReaderGap, l.name, func() Example {
				return Example{
					DLSN:   missing.String(),
					Detail: fmt.Sprintf("session %s delivered %s and %s but never %s", s.id, p.dlsn, q.dlsn, missing),
					Events: c.evs(p.ev, q.ev),
				}
			})
		}
	}
}

// maxAckedBefore returns the acknowledged append with the highest DLSN
// among those completed strictly before t, or nil.
func (l *logData) maxAckedBefore(t int64) *attempt {
	i := sort.Search(len(l.ackedByComp), func(i int) bool { return l.ackedByComp[i].compT >= t })
	return l.ackedPreMax[i]
}

// sessionStart checks a session's lowest delivery r against its requested
// start position.
func (c *checker) sessionStart(l *logData, s *session, refs []refRec, r *readObs) {
	open := c.evs(s.openInv)
	var lower int // index of the first reference record the start allows
	switch s.pos.At {
	case history.AtDLSN:
		if r.dlsn.Less(s.pos.DLSN) {
			c.add(PropReaderOrder, l.name, func() Example {
				return Example{DLSN: r.dlsn.String(), Value: r.value,
					Detail: fmt.Sprintf("session %s opened at %s delivered %s", s.id, s.pos.DLSN, r.dlsn),
					Events: append(open, c.evs(r.ev)...)}
			})
			return
		}
		lower = firstAtOrAfter(refs, s.pos.DLSN)
	case history.AfterDLSN:
		if !s.pos.DLSN.Less(r.dlsn) {
			c.add(PropReaderDuplicate, l.name, func() Example {
				return Example{DLSN: r.dlsn.String(), Value: r.value,
					Detail: fmt.Sprintf("session %s resumed after %s delivered %s again", s.id, s.pos.DLSN, r.dlsn),
					Events: append(open, c.evs(r.ev)...)}
			})
			return
		}
		lower = firstAfter(refs, s.pos.DLSN)
	case history.AtTxID:
		if r.txid < s.pos.TxID {
			c.add(PropReaderOrder, l.name, func() Example {
				return Example{DLSN: r.dlsn.String(), Value: r.value,
					Detail: fmt.Sprintf("session %s opened at txid %d delivered txid %d", s.id, s.pos.TxID, r.txid),
					Events: append(open, c.evs(r.ev)...)}
			})
			return
		}
		// txids do not decrease along the log (the txid property checks
		// the drain), so the first record with txid >= N is a search.
		lower = sort.Search(len(refs), func(i int) bool { return refs[i].txid >= s.pos.TxID })
	case history.AtStart:
		lower = 0
	case history.AtEnd:
		// The end is not known exactly; the session must at least not
		// deliver a record acknowledged before it was opened.
		bound := l.maxAckedBefore(s.openInT)
		if bound != nil && !bound.dlsn.Less(r.dlsn) {
			c.add(PropReaderOrder, l.name, func() Example {
				return Example{DLSN: r.dlsn.String(), Value: r.value,
					Detail: fmt.Sprintf("session %s opened at the end delivered %s, but %s was acknowledged before it opened", s.id, r.dlsn, bound.dlsn),
					Events: append(append(open, c.evs(r.ev)...), c.attemptEvents(bound)...)}
			})
		}
		return
	default:
		return
	}
	if k := firstAtOrAfter(refs, l.floorAt(r.t)); k > lower {
		lower = k
	}
	if lower < len(refs) && refs[lower].dlsn.Less(r.dlsn) {
		missing := refs[lower].dlsn
		c.add(PropReaderGap, l.name, func() Example {
			return Example{DLSN: missing.String(),
				Detail: fmt.Sprintf("session %s opened at %s first delivered %s, skipping %s", s.id, s.pos, r.dlsn, missing),
				Events: append(open, c.evs(r.ev)...)}
		})
	}
}

// drainOrder checks that the drain itself is in strictly increasing DLSN
// order.
func (c *checker) drainOrder(l *logData) {
	if l.drain == nil {
		return
	}
	recs := l.drain.Records
	for i := 1; i < len(recs); i++ {
		if recs[i].DLSN.Less(recs[i-1].DLSN) || recs[i].DLSN == recs[i-1].DLSN {
			prop := PropReaderOrder
			if recs[i].DLSN == recs[i-1].DLSN {
				prop = PropReaderDuplicate
			}
			c.add(prop, l.name, func() Example {
				return Example{DLSN: recs[i].DLSN.String(), Value: recs[i].Value,
					Detail: fmt.Sprintf("the drain read %s after %s", recs[i].DLSN, recs[i-1].DLSN),
					Drain:  []history.DrainRecord{recs[i-1], recs[i]}}
			})
		}
	}
}
