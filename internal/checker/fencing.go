package checker

import (
	"fmt"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
)

// seals checks P7: no reader session and no drain delivers a record beyond
// the sealed last entry of its segment in the final metadata.
func (c *checker) seals(l *logData) {
	for i := range l.reads {
		r := &l.reads[i]
		if l.pastSeal(r.dlsn) {
			last := l.segments[r.dlsn.LSSN].LastEntryID
			c.add(PropReadPastSeal, l.name, func() Example {
				return Example{Value: r.value, DLSN: r.dlsn.String(),
					Detail: fmt.Sprintf("session %s delivered %s; segment %d was sealed at entry %d", r.session.id, r.dlsn, r.dlsn.LSSN, last),
					Events: c.evs(r.ev)}
			})
		}
	}
	if l.drain == nil {
		return
	}
	for _, r := range l.drain.Records {
		if l.pastSeal(r.DLSN) {
			last := l.segments[r.DLSN.LSSN].LastEntryID
			c.add(PropReadPastSeal, l.name, func() Example {
				return Example{Value: r.Value, DLSN: r.DLSN.String(),
					Detail: fmt.Sprintf("the drain read %s; segment %d was sealed at entry %d", r.DLSN, r.DLSN.LSSN, last),
					Drain:  []history.DrainRecord{r}}
			})
		}
	}
}

// fencing checks P8 (G5):
//   - once writer epoch e was seen fenced (a completion with a fence error
//     class, or a fence-observed event), no append of e invoked later
//     completes ok (operations in flight at the fence may: their entries
//     may have been acknowledged before it; a writer-close of a fenced
//     epoch may report ok, it acknowledges no data);
//   - every acknowledged append lies within its segment's sealed range;
//   - every segment's acknowledged appends come from one epoch (the one
//     that created it, when the metadata says).
func (c *checker) fencing(l *logData) {
	for _, eo := range l.epochOKs {
		f, ok := l.fences[eo.epoch]
		if !ok || eo.invT <= f.t {
			continue
		}
		c.add(PropPostFenceAck, l.name, func() Example {
			e := c.h.Events[eo.ev]
			return Example{Value: e.Value, DLSN: dlsnText(e.DLSN),
				Detail: fmt.Sprintf("epoch %s was seen fenced at time %d; its %s invoked at %d completed ok", eo.epoch, f.t, e.Kind, eo.invT),
				Events: c.evs(f.ev, eo.inv, eo.ev)}
		})
	}
	type segEpoch struct {
		epoch string
		a     *attempt
		bad   bool
	}
	segs := map[int64]*segEpoch{}
	for _, a := range l.attempts {
		if a.status != stOK {
			continue
		}
		if l.pastSeal(a.dlsn) {
			last := l.segments[a.dlsn.LSSN].LastEntryID
			c.add(PropPostFenceAck, l.name, func() Example {
				return Example{Value: a.value, DLSN: a.dlsn.String(),
					Detail: fmt.Sprintf("acknowledged at %s; segment %d was sealed at entry %d", a.dlsn, a.dlsn.LSSN, last),
					Events: c.attemptEvents(a)}
			})
		}
		if a.epoch == "" {
			continue
		}
		se := segs[a.dlsn.LSSN]
		if se == nil {
			se = &segEpoch{epoch: a.epoch, a: a}
			if m := l.segments[a.dlsn.LSSN]; m != nil && m.Epoch != "" {
				se.epoch = m.Epoch
				se.a = nil
			}
			segs[a.dlsn.LSSN] = se
		}
		if se.epoch != a.epoch && !se.bad {
			se.bad = true
			first := se.a
			c.add(PropPostFenceAck, l.name, func() Example {
				ex := Example{Value: a.value, DLSN: a.dlsn.String(),
					Detail: fmt.Sprintf("segment %d acknowledged appends of epochs %s and %s", a.dlsn.LSSN, se.epoch, a.epoch)}
				if first != nil {
					ex.Events = c.attemptEvents(first)
				}
				ex.Events = append(ex.Events, c.attemptEvents(a)...)
				return ex
			})
		}
	}
}

func dlsnText(d dlog.DLSN) string {
	if d.IsValid() {
		return d.String()
	}
	return ""
}
