package checker

import (
	"math"
	"slices"
	"sort"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
)

// never is the completion time of an operation whose effect may happen at
// any time after its invocation (info or pending).
const never = math.MaxInt64

type status uint8

const (
	stOK status = iota + 1
	stFail
	stInfo
	stPending
)

func statusOf(h *history.History, op history.Op) status {
	if op.Pending() {
		return stPending
	}
	switch h.Events[op.Complete].Type {
	case history.OK:
		return stOK
	case history.Fail:
		return stFail
	}
	return stInfo
}

// attempt is one append of one value: a single append, or one record of
// an append-bulk.
type attempt struct {
	value   string
	txid    int64
	process string
	inv     int   // event index of the invoke
	comp    int   // event index of the completion, -1 if pending
	invT    int64 // invoke time
	compT   int64 // completion time; never if pending
	status  status
	class   string    // error class of fail/info
	dlsn    dlog.DLSN // ok only
	seqid   *int64    // ok only, when reported
	epoch   string    // from the completion
}

// mayHaveEffect reports whether the attempt may have placed its value.
func (a *attempt) mayHaveEffect() bool { return a.status != stFail }

// effectEnd is the latest time the attempt's effect may happen.
func (a *attempt) effectEnd() int64 {
	if a.status == stOK {
		return a.compT
	}
	return never
}

type readObs struct {
	ev      int // event index
	t       int64
	dlsn    dlog.DLSN
	value   string
	txid    int64
	seqid   *int64
	session *session
}

type session struct {
	id      string
	process string
	openInv int // event index of the reader-open invoke
	openT   int64
	openInT int64
	pos     history.Position
	reads   []int // indexes into logData.reads, in delivery order
}

type truncOp struct {
	target dlog.DLSN
	inv    int
	comp   int
	invT   int64
	compT  int64 // never for info and pending
	status status
}

type epochOK struct {
	ev    int // completion event
	inv   int
	invT  int64
	epoch string
}

type fence struct {
	ev int
	t  int64
}

// logData is everything the history says about one log.
type logData struct {
	name     string
	attempts []*attempt
	values   []string // in order of first attempt
	byValue  map[string][]*attempt
	reads    []readObs
	sessions []*session
	truncs   []truncOp
	epochOKs []epochOK        // ok completions that carry an epoch
	fences   map[string]fence // epoch -> first fence observation
	epochs   map[string]bool  // epochs seen
	drain    *history.Drain   // nil without a drain
	segments map[int64]*history.Segment

	// derived
	drainAt map[dlog.DLSN]int // DLSN -> index in drain.Records (first)
	tFinal  dlog.DLSN         // final truncation point (zero: none)
	// truncations by completion time with suffix maxima of targets, and by
	// invocation time with prefix maxima (see excused and floorAt).
	byComp       []truncOp
	byCompSufMax []dlog.DLSN
	byInv        []truncOp
	byInvPreMax  []dlog.DLSN
	byInvSufMax  []dlog.DLSN
	firstOKAfter int64 // completion time of the first ok append after the last heal; -1
	// set by placements
	vals      map[string]*valueInfo
	conflicts map[dlog.DLSN]bool // DLSNs observed with several values
	// set by readers: acknowledged appends by completion time, and the
	// running maximum by DLSN
	ackedByComp []*attempt
	ackedPreMax []*attempt
}

func (l *logData) addAttempt(a *attempt) {
	if _, ok := l.byValue[a.value]; !ok {
		l.values = append(l.values, a.value)
	}
	l.byValue[a.value] = append(l.byValue[a.value], a)
	l.attempts = append(l.attempts, a)
}

type model struct {
	h        *history.History
	logs     map[string]*logData
	order    []string // log names, sorted
	lastHeal int64    // -1: no heal
}

func (m *model) log(name string) *logData {
	l := m.logs[name]
	if l == nil {
		l = &logData{
			name: name, byValue: map[string][]*attempt{}, fences: map[string]fence{},
			epochs: map[string]bool{}, segments: map[int64]*history.Segment{}, firstOKAfter: -1,
		}
		m.logs[name] = l
	}
	return l
}

func build(h *history.History, drains history.Drains, opts Options) *model {
	m := &model{h: h, logs: map[string]*logData{}, lastHeal: -1}
	fenceClass := map[string]bool{}
	for _, c := range opts.FenceClasses {
		fenceClass[c] = true
	}
	sessions := map[string]*session{}
	sessionLog := map[string]string{}
	noteFence := func(l *logData, epoch string, ev int) {
		if epoch == "" {
			return
		}
		if _, ok := l.fences[epoch]; !ok {
			l.fences[epoch] = fence{ev: ev, t: h.Events[ev].Time}
		}
	}
	for _, op := range h.Ops {
		inv := &h.Events[op.Invoke]
		st := statusOf(h, op)
		var comp *history.Event
		compT := int64(never)
		if !op.Pending() {
			comp = &h.Events[op.Complete]
			compT = comp.Time
		}
		logName := inv.Log
		if logName == "" && inv.Kind == history.ReaderClose {
			logName = sessionLog[inv.Session]
		}
		if logName == "" {
			continue
		}
		l := m.log(logName)
		if comp != nil && comp.Epoch != "" {
			l.epochs[comp.Epoch] = true
			isAppend := inv.Kind == history.Append || inv.Kind == history.AppendBulk
			if st == stOK && isAppend {
				l.epochOKs = append(l.epochOKs, epochOK{ev: op.Complete, inv: op.Invoke, invT: inv.Time, epoch: comp.Epoch})
			} else if st != stOK && fenceClass[comp.Error] {
				noteFence(l, comp.Epoch, op.Complete)
			}
		}
		switch inv.Kind {
		case history.Append, history.AppendBulk:
			recs := []history.Record{{Value: inv.Value, TxID: inv.TxID}}
			if inv.Kind == history.AppendBulk {
				recs = inv.Records
			}
			for j, r := range recs {
				a := &attempt{
					value: r.Value, txid: r.TxID, process: inv.Process, inv: op.Invoke, comp: op.Complete,
					invT: inv.Time, compT: compT, status: st,
				}
				if comp != nil {
					a.class, a.epoch = comp.Error, comp.Epoch
					if st == stOK {
						if inv.Kind == history.Append {
							a.dlsn, a.seqid = comp.DLSN, comp.SeqID
						} else {
							a.dlsn = comp.Records[j].DLSN
						}
					}
				}
				l.addAttempt(a)
			}
		case history.ReaderOpen:
			if st == stOK {
				id := comp.Session
				if id == "" {
					id = inv.Session
				}
				s := &session{id: id, process: inv.Process, openInv: op.Invoke, openT: comp.Time, openInT: inv.Time, pos: *inv.Position}
				sessions[id] = s
				sessionLog[id] = logName
				l.sessions = append(l.sessions, s)
			}
		case history.Truncate:
			t := truncOp{target: inv.DLSN, inv: op.Invoke, comp: op.Complete, invT: inv.Time, compT: compT, status: st}
			if st != stOK {
				t.compT = never
			}
			l.truncs = append(l.truncs, t)
		}
	}
	// Single events, in order.
	for i := range h.Events {
		e := &h.Events[i]
		switch e.Kind {
		case history.Read:
			if e.Type != history.OK {
				continue
			}
			s := sessions[e.Session]
			if s == nil {
				continue // Validate guarantees a session; be defensive
			}
			l := m.log(sessionLog[e.Session])
			s.reads = append(s.reads, len(l.reads))
			l.reads = append(l.reads, readObs{ev: i, t: e.Time, dlsn: e.DLSN, value: e.Value, txid: e.TxID, seqid: e.SeqID, session: s})
		case history.FenceObserved:
			if e.Log != "" {
				l := m.log(e.Log)
				l.epochs[e.Epoch] = true
				noteFence(l, e.Epoch, i)
			}
		case history.NemesisStop:
			m.lastHeal = e.Time
		}
	}
	for name, d := range drains {
		l := m.log(name)
		l.drain = d
	}
	for name, l := range m.logs {
		m.order = append(m.order, name)
		l.derive(m)
	}
	sort.Strings(m.order)
	return m
}

func (l *logData) derive(m *model) {
	if m.lastHeal >= 0 {
		for _, a := range l.attempts {
			if a.status == stOK && a.compT >= m.lastHeal && (l.firstOKAfter < 0 || a.compT < l.firstOKAfter) {
				l.firstOKAfter = a.compT
			}
		}
	}
	if l.drain != nil {
		l.tFinal = l.drain.Truncation
		l.drainAt = make(map[dlog.DLSN]int, len(l.drain.Records))
		for i, r := range l.drain.Records {
			if _, ok := l.drainAt[r.DLSN]; !ok {
				l.drainAt[r.DLSN] = i
			}
		}
		for i := range l.drain.Segments {
			s := &l.drain.Segments[i]
			l.segments[s.LSSN] = s
		}
	} else {
		// Without a drain, the best knowledge of the final truncation
		// point is the highest acknowledged truncate.
		for _, t := range l.truncs {
			if t.status == stOK && l.tFinal.Less(t.target) {
				l.tFinal = t.target
			}
		}
	}
	// Truncates that may have taken effect (all but definite failures).
	var eff []truncOp
	for _, t := range l.truncs {
		if t.status != stFail {
			eff = append(eff, t)
		}
	}
	l.byComp = slices.Clone(eff)
	sort.SliceStable(l.byComp, func(i, j int) bool { return l.byComp[i].compT < l.byComp[j].compT })
	l.byCompSufMax = make([]dlog.DLSN, len(l.byComp)+1)
	for i := len(l.byComp) - 1; i >= 0; i-- {
		l.byCompSufMax[i] = maxDLSN(l.byCompSufMax[i+1], l.byComp[i].target)
	}
	l.byInv = eff // already in invoke order
	l.byInvPreMax = make([]dlog.DLSN, len(l.byInv)+1)
	for i, t := range l.byInv {
		l.byInvPreMax[i+1] = maxDLSN(l.byInvPreMax[i], t.target)
	}
	l.byInvSufMax = make([]dlog.DLSN, len(l.byInv)+1)
	for i := len(l.byInv) - 1; i >= 0; i-- {
		l.byInvSufMax[i] = maxDLSN(l.byInvSufMax[i+1], l.byInv[i].target)
	}
}

func maxDLSN(a, b dlog.DLSN) dlog.DLSN {
	if a.Less(b) {
		return b
	}
	return a
}

// excused reports whether a record at d, appended by an attempt invoked at
// invT and completed at compT, may be missing because of a truncation.
//
// The record must lie below the final truncation point, and some truncate
// (acknowledged or indeterminate) with a target above d must be allowed to
// have happened after the append: by default, one that had not completed
// when the append was invoked (so it may be linearized after the append);
// with strict, one invoked after the append completed (G1's literal
// wording).
func (l *logData) excused(d dlog.DLSN, invT, compT int64, strict bool) bool {
	if !d.Less(l.tFinal) {
		return false
	}
	if strict {
		i := sort.Search(len(l.byInv), func(i int) bool { return l.byInv[i].invT > compT })
		return d.Less(l.byInvSufMax[i])
	}
	i := sort.Search(len(l.byComp), func(i int) bool { return l.byComp[i].compT >= invT })
	return d.Less(l.byCompSufMax[i])
}

// floorAt is the highest truncation target any truncate invoked at or
// before t may have set: records below it may legitimately be gone at t.
func (l *logData) floorAt(t int64) dlog.DLSN {
	i := sort.Search(len(l.byInv), func(i int) bool { return l.byInv[i].invT > t })
	return l.byInvPreMax[i]
}
