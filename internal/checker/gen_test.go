package checker

import (
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
)

// This file is a seeded simulator of a correct dlog: per log a FIFO
// sequencer owned by one writer epoch at a time, entries acknowledged in
// order (LAC), failover that fences the old epoch and seals its segment at
// a random cut of its unacknowledged entries, truncation, and readers that
// deliver acknowledged records in order. Clients see timeouts, lost
// replies, definite rejections and crashes, and retry indeterminate
// appends with the same value. Its histories satisfy every property, so
// the checker must find no violation; mutations of them (mutate_test.go)
// must be found.

type genConfig struct {
	seed         uint64
	logs         int
	writers      int // per log
	readers      int // per log
	steps        int
	failovers    int  // at most this many per log
	truncation   bool // a truncator per log
	closeWriters bool // seal the last segment at the end
}

func defaultGenConfig(seed uint64) genConfig {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	return genConfig{
		seed:         seed,
		logs:         1 + r.IntN(3),
		writers:      1 + r.IntN(3),
		readers:      1 + r.IntN(3),
		steps:        300 + r.IntN(700),
		failovers:    r.IntN(4),
		truncation:   r.IntN(3) > 0,
		closeWriters: r.IntN(4) > 0,
	}
}

type attState uint8

const (
	attRejected  attState = iota + 1 // definite failure pending report
	attWaiting                       // invoked while the log had no live epoch
	attQueued                        // in the epoch's FIFO
	attWritten                       // in an entry not yet acknowledged
	attAcked                         // its entry is acknowledged
	attRecovered                     // written by a dead epoch, kept by recovery
	attDropped                       // never written, or discarded by recovery
)

type grec struct {
	dlsn  dlog.DLSN
	value string
	txid  int64
	seqid int64
	entry *gentry
}

type gentry struct {
	id    int64
	recs  []*grec
	atts  []*gatt
	acked bool
}

type gatt struct {
	proc      *gproc
	kind      history.Kind
	values    []string
	txids     []int64
	state     attState
	recs      []*grec
	epoch     *gepoch
	replyLost bool
}

type gepoch struct {
	id        string
	owner     string
	lssn      int64
	nextEntry int64
	entries   []*gentry
	acked     int // entries[:acked] are acknowledged
	alive     bool
	startSeq  int64
}

type procRole uint8

const (
	roleWriter procRole = iota + 1
	roleReader
	roleOwner
	roleTruncator
)

type readerState uint8

const (
	rIdle readerState = iota
	rOpening
	rOpen
	rClosing
)

type gproc struct {
	name string
	role procRole
	log  *glog

	// writer
	att     *gatt
	crashed bool
	retry   []string
	n       int

	// reader
	rstate   readerState
	session  string
	sessions int
	pos      history.Position
	// cursor: deliver the first record > after (or >= from, or with txid
	// >= txid), whichever is set.
	after     dlog.DLSN
	hasAfter  bool
	txid      int64
	hasTxID   bool
	last      dlog.DLSN
	hasLast   bool
	endCursor bool

	// owner and truncator
	busy   bool
	target dlog.DLSN
}

type glog struct {
	name      string
	records   []*grec // at or after the truncation point, in DLSN order
	readable  int     // records[:readable] are in acknowledged entries
	nextSeq   int64
	trunc     dlog.DLSN
	segs      []history.Segment
	epoch     *gepoch
	epochN    int
	queue     []*gatt
	waiting   []*gatt
	down      bool // killed, new epoch not open yet
	heal      bool // a nemesis-stop is due
	failovers int
	owner     *gproc
	truncator *gproc
}

type gen struct {
	cfg     genConfig
	rng     *rand.Rand
	now     int64
	events  []history.Event
	logs    []*glog
	procs   []*gproc
	crashed bool
	final   bool // no new invocations
}

// generate runs the simulator and returns a valid history and its drains.
func generate(cfg genConfig) ([]history.Event, history.Drains) {
	g := &gen{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.seed, 0xd10c))}
	pn := 0
	newProc := func(role procRole, l *glog, prefix string) *gproc {
		p := &gproc{name: fmt.Sprintf("%s%d", prefix, pn), role: role, log: l}
		pn++
		g.procs = append(g.procs, p)
		return p
	}
	for i := range cfg.logs {
		l := &glog{name: fmt.Sprintf("ns/log%d", i)}
		g.logs = append(g.logs, l)
		l.owner = newProc(roleOwner, l, "o")
		for range cfg.writers {
			newProc(roleWriter, l, "w")
		}
		for range cfg.readers {
			newProc(roleReader, l, "r")
		}
		if cfg.truncation {
			l.truncator = newProc(roleTruncator, l, "t")
		}
	}
	for _, l := range g.logs {
		g.emit(history.Event{Process: l.owner.name, Type: history.Invoke, Kind: history.WriterOpen, Log: l.name})
		g.openEpoch(l)
	}
	for range cfg.steps {
		g.step()
	}
	g.finish()
	return g.events, g.drains()
}

func (g *gen) chance(p float64) bool { return g.rng.Float64() < p }

func (g *gen) emit(e history.Event) {
	if !g.chance(0.05) { // some events share a timestamp
		g.now += 1 + g.rng.Int64N(20)
	}
	e.Time = g.now
	g.events = append(g.events, e)
}

type action struct {
	weight float64
	do     func()
}

func (g *gen) step() {
	var acts []action
	add := func(w float64, f func()) { acts = append(acts, action{w, f}) }
	for _, l := range g.logs {
		g.logActions(l, add)
	}
	for _, p := range g.procs {
		switch p.role {
		case roleWriter:
			g.writerActions(p, add)
		case roleReader:
			g.readerActions(p, add)
		case roleTruncator:
			g.truncatorActions(p, add)
		}
	}
	if len(acts) == 0 {
		return
	}
	total := 0.0
	for _, a := range acts {
		total += a.weight
	}
	x := g.rng.Float64() * total
	for _, a := range acts {
		if x < a.weight {
			a.do()
			return
		}
		x -= a.weight
	}
	acts[len(acts)-1].do()
}

// logActions: sequencing, acknowledging, failover and healing.
func (g *gen) logActions(l *glog, add func(float64, func())) {
	e := l.epoch
	if e != nil && e.alive && len(l.queue) > 0 {
		add(2, func() { g.sequence(l) })
	}
	if e != nil && e.alive && e.acked < len(e.entries) {
		add(2, func() { g.ack(l, e) })
	}
	if !g.final && e != nil && e.alive && !l.owner.busy && l.failovers < g.cfg.failovers {
		add(0.02, func() { g.kill(l) })
	}
	if l.down && l.owner.busy {
		add(0.5, func() { g.openEpoch(l) })
	}
	if l.heal && !l.down {
		add(0.5, func() {
			l.heal = false
			g.emit(history.Event{Process: "nemesis", Type: history.Info, Kind: history.NemesisStop, Fault: "kill owner of " + l.name})
		})
	}
}

func (g *gen) openEpoch(l *glog) {
	old := l.epoch
	l.epochN++
	e := &gepoch{
		id: fmt.Sprintf("%s/e%d", l.name, l.epochN), owner: fmt.Sprintf("proxy-%d", g.rng.IntN(3)),
		lssn: int64(l.epochN), alive: true, startSeq: l.nextSeq,
	}
	if old != nil {
		g.emit(history.Event{Process: l.owner.name, Type: history.Info, Kind: history.FenceObserved, Log: l.name, Epoch: old.id, Owner: old.owner, Error: history.ClassFenced})
	}
	g.emit(history.Event{Process: l.owner.name, Type: history.OK, Kind: history.WriterOpen, Log: l.name, Epoch: e.id, Owner: e.owner, DLSN: dlog.DLSN{LSSN: e.lssn}})
	l.owner.busy = false
	l.epoch = e
	l.down = false
	l.queue = append(l.queue, l.waiting...)
	for _, a := range l.waiting {
		a.state, a.epoch = attQueued, e
	}
	l.waiting = nil
}

// sequence writes the next 1..3 queued attempts as one entry.
func (g *gen) sequence(l *glog) {
	e := l.epoch
	n := min(len(l.queue), 1+g.rng.IntN(3))
	en := &gentry{id: e.nextEntry}
	e.nextEntry++
	slot := int64(0)
	for _, a := range l.queue[:n] {
		a.state, a.epoch = attWritten, e
		en.atts = append(en.atts, a)
		for i, v := range a.values {
			r := &grec{dlsn: dlog.DLSN{LSSN: e.lssn, EntryID: en.id, SlotID: slot}, value: v, txid: a.txids[i], seqid: l.nextSeq, entry: en}
			slot++
			l.nextSeq++
			en.recs = append(en.recs, r)
			a.recs = append(a.recs, r)
			l.records = append(l.records, r)
		}
	}
	l.queue = l.queue[n:]
	e.entries = append(e.entries, en)
}

func (g *gen) ack(l *glog, e *gepoch) {
	en := e.entries[e.acked]
	e.acked++
	l.readable += len(en.recs)
	en.acked = true
	for _, a := range en.atts {
		a.state = attAcked
		a.replyLost = g.chance(0.03)
	}
}

// kill is a failover: the owner dies, recovery keeps a random prefix of
// its unacknowledged entries, seals the segment and a new epoch takes over.
func (g *gen) kill(l *glog) {
	l.failovers++
	g.emit(history.Event{Process: "nemesis", Type: history.Info, Kind: history.NemesisStart, Fault: "kill owner of " + l.name})
	e := l.epoch
	e.alive = false
	l.down, l.heal = true, true
	for _, a := range l.queue {
		a.state = attDropped
	}
	l.queue = nil
	unacked := e.entries[e.acked:]
	keep := g.rng.IntN(len(unacked) + 1)
	for _, en := range unacked[:keep] {
		en.acked = true
		e.acked++
		l.readable += len(en.recs)
		for _, a := range en.atts {
			a.state = attRecovered
		}
	}
	for _, en := range unacked[keep:] {
		for _, a := range en.atts {
			a.state = attDropped
		}
		l.records = l.records[:len(l.records)-len(en.recs)]
		l.nextSeq -= int64(len(en.recs))
	}
	e.entries = e.entries[:len(e.entries)-(len(unacked)-keep)]
	l.seal(e)
	g.emit(history.Event{Process: l.owner.name, Type: history.Invoke, Kind: history.WriterOpen, Log: l.name})
	l.owner.busy = true
}

func (l *glog) seal(e *gepoch) {
	l.segs = append(l.segs, history.Segment{
		LSSN: e.lssn, State: history.Completed, LastEntryID: int64(len(e.entries)) - 1,
		StartSeqID: history.Int64(e.startSeq), Epoch: e.id,
	})
}

func (g *gen) writerActions(p *gproc, add func(float64, func())) {
	if p.crashed {
		return
	}
	a := p.att
	if a == nil {
		if !g.final {
			add(1.5, func() { g.invokeAppend(p) })
		}
		return
	}
	switch a.state {
	case attRejected:
		add(3, func() { g.completeAppend(p, history.Fail, "over-capacity") })
	case attAcked:
		if a.replyLost {
			class := history.ClassUnavailable
			if !a.epoch.alive {
				class = history.ClassFenced
			}
			add(3, func() { g.completeAppend(p, history.Info, class) })
		} else {
			add(3, func() { g.completeAppend(p, history.OK, "") })
		}
	case attDropped, attRecovered:
		add(3, func() { g.completeAppend(p, history.Info, history.ClassFenced) })
	}
	if !g.final && (a.state == attQueued || a.state == attWritten || a.state == attWaiting) {
		add(0.1, func() { g.completeAppend(p, history.Info, history.ClassUnavailable) })
	}
	if !g.final && !g.crashed && a.state != attRejected {
		add(0.005, func() { g.crashed, p.crashed = true, true })
	}
}

func (g *gen) invokeAppend(p *gproc) {
	l := p.log
	a := &gatt{proc: p, kind: history.Append}
	if len(p.retry) > 0 && g.chance(0.5) {
		a.values = []string{p.retry[0]}
		p.retry = p.retry[1:]
	} else if g.chance(0.1) {
		a.kind = history.AppendBulk
		for range 2 + g.rng.IntN(2) {
			a.values = append(a.values, fmt.Sprintf("%s-%s-%d", l.name[3:], p.name, p.n))
			p.n++
		}
	} else {
		a.values = []string{fmt.Sprintf("%s-%s-%d", l.name[3:], p.name, p.n)}
		p.n++
	}
	e := history.Event{Process: p.name, Type: history.Invoke, Kind: a.kind, Log: l.name}
	g.emit(e)
	txid := g.now
	for range a.values {
		a.txids = append(a.txids, txid)
	}
	g.events[len(g.events)-1] = g.withPayload(e, a, nil)
	p.att = a
	switch {
	case g.chance(0.05):
		a.state = attRejected
	case l.epoch != nil && l.epoch.alive:
		a.state, a.epoch = attQueued, l.epoch
		l.queue = append(l.queue, a)
	default:
		a.state = attWaiting
		l.waiting = append(l.waiting, a)
	}
}

// withPayload sets the value fields of an append event.
func (g *gen) withPayload(e history.Event, a *gatt, dlsns []dlog.DLSN) history.Event {
	e.Time = g.now
	if a.kind == history.Append {
		e.Value, e.TxID = a.values[0], a.txids[0]
		if dlsns != nil {
			e.DLSN = dlsns[0]
		}
		return e
	}
	for i, v := range a.values {
		r := history.Record{Value: v, TxID: a.txids[i]}
		if dlsns != nil {
			r.DLSN = dlsns[i]
		}
		e.Records = append(e.Records, r)
	}
	return e
}

func (g *gen) completeAppend(p *gproc, t history.Type, class string) {
	a := p.att
	p.att = nil
	e := history.Event{Process: p.name, Type: t, Kind: a.kind, Log: p.log.name, Error: class}
	var dlsns []dlog.DLSN
	if t == history.OK {
		for _, r := range a.recs {
			dlsns = append(dlsns, r.dlsn)
		}
		e.Epoch, e.Owner = a.epoch.id, a.epoch.owner
		if a.kind == history.Append && g.chance(0.5) {
			e.SeqID = history.Int64(a.recs[0].seqid)
		}
	} else if a.epoch != nil && class == history.ClassFenced {
		e.Epoch, e.Owner = a.epoch.id, a.epoch.owner
	}
	g.emit(e)
	g.events[len(g.events)-1] = g.withPayload(e, a, dlsns)
	if t == history.Info && a.kind == history.Append && g.chance(0.6) {
		p.retry = append(p.retry, a.values[0])
	}
	if t == history.Fail && a.kind == history.Append && g.chance(0.2) {
		p.retry = append(p.retry, a.values[0])
	}
}

func (g *gen) readerActions(p *gproc, add func(float64, func())) {
	switch p.rstate {
	case rIdle:
		if !g.final {
			add(0.3, func() { g.openReader(p) })
		}
	case rOpening:
		add(2, func() {
			if !g.final && g.chance(0.05) {
				g.emit(history.Event{Process: p.name, Type: history.Info, Kind: history.ReaderOpen, Log: p.log.name, Error: history.ClassUnavailable})
				p.rstate = rIdle
				return
			}
			g.readerOpened(p)
		})
	case rOpen:
		if r := g.nextFor(p); r != nil {
			add(3, func() { g.deliver(p, r) })
		}
		if g.final {
			add(1, func() { g.closeReader(p) })
			return
		}
		add(0.05, func() {
			g.emit(history.Event{Process: p.name, Type: history.Info, Kind: history.Read, Log: p.log.name, Session: p.session, Error: history.ClassUnavailable})
			p.rstate = rIdle
		})
		add(0.03, func() { g.closeReader(p) })
	case rClosing:
		add(2, func() {
			g.emit(history.Event{Process: p.name, Type: history.OK, Kind: history.ReaderClose, Session: p.session})
			p.rstate = rIdle
		})
	}
}

func (g *gen) openReader(p *gproc) {
	l := p.log
	pos := history.Position{At: history.AtStart}
	switch x := g.rng.Float64(); {
	case p.hasLast && x < 0.5:
		pos = history.Position{At: history.AfterDLSN, DLSN: p.last}
	case x < 0.65 && len(l.records) > 0:
		r := l.records[g.rng.IntN(len(l.records))]
		pos = history.Position{At: history.AtDLSN, DLSN: r.dlsn}
		if g.chance(0.3) {
			pos.DLSN.SlotID += 1 + g.rng.Int64N(3) // may not exist
		}
	case x < 0.8 && len(l.records) > 0:
		r := l.records[g.rng.IntN(len(l.records))]
		pos = history.Position{At: history.AtTxID, TxID: max(0, r.txid-g.rng.Int64N(2))}
	case x < 0.9:
		pos = history.Position{At: history.AtEnd}
	}
	p.pos = pos
	p.rstate = rOpening
	g.emit(history.Event{Process: p.name, Type: history.Invoke, Kind: history.ReaderOpen, Log: l.name, Position: &pos})
}

func (g *gen) readerOpened(p *gproc) {
	p.sessions++
	p.session = fmt.Sprintf("%s-s%d", p.name, p.sessions)
	p.hasAfter, p.hasTxID, p.endCursor = false, false, false
	switch p.pos.At {
	case history.AtDLSN:
		// >= d is > the position just before it; slots make that easy.
		p.after, p.hasAfter = p.pos.DLSN, true
		p.endCursor = true // reuse as "inclusive"
	case history.AfterDLSN:
		p.after, p.hasAfter = p.pos.DLSN, true
	case history.AtTxID:
		p.txid, p.hasTxID = p.pos.TxID, true
	case history.AtEnd:
		// After the last readable record.
		if l := p.log; l.readable > 0 {
			p.after, p.hasAfter = l.records[l.readable-1].dlsn, true
		}
	}
	p.rstate = rOpen
	g.emit(history.Event{Process: p.name, Type: history.OK, Kind: history.ReaderOpen, Log: p.log.name, Session: p.session})
}

// nextFor returns the record session p delivers next, if it is readable.
func (g *gen) nextFor(p *gproc) *grec {
	recs := p.log.records
	var i int
	switch {
	case p.hasTxID:
		i = sort.Search(len(recs), func(i int) bool { return recs[i].txid >= p.txid })
	case p.hasAfter && p.endCursor:
		i = sort.Search(len(recs), func(i int) bool { return !recs[i].dlsn.Less(p.after) })
	case p.hasAfter:
		i = sort.Search(len(recs), func(i int) bool { return p.after.Less(recs[i].dlsn) })
	}
	if i < len(recs) && recs[i].entry.acked {
		return recs[i]
	}
	return nil
}

func (g *gen) deliver(p *gproc, r *grec) {
	g.emit(history.Event{
		Process: p.name, Type: history.OK, Kind: history.Read, Log: p.log.name, Session: p.session,
		Value: r.value, DLSN: r.dlsn, TxID: r.txid, SeqID: history.Int64(r.seqid),
	})
	p.after, p.hasAfter, p.hasTxID, p.endCursor = r.dlsn, true, false, false
	p.last, p.hasLast = r.dlsn, true
}

func (g *gen) closeReader(p *gproc) {
	p.rstate = rClosing
	g.emit(history.Event{Process: p.name, Type: history.Invoke, Kind: history.ReaderClose, Session: p.session})
}

func (g *gen) truncatorActions(p *gproc, add func(float64, func())) {
	l := p.log
	if !p.busy {
		if g.final {
			return
		}
		// Targets are readable records past the first, so that the
		// truncation deletes something.
		if n := l.readable; n >= 2 {
			add(0.05, func() {
				p.target = l.records[1+g.rng.IntN(n-1)].dlsn
				p.busy = true
				g.emit(history.Event{Process: p.name, Type: history.Invoke, Kind: history.Truncate, Log: l.name, DLSN: p.target})
			})
		}
		return
	}
	add(1, func() {
		p.busy = false
		e := history.Event{Process: p.name, Kind: history.Truncate, Log: l.name, DLSN: p.target}
		switch x := g.rng.Float64(); {
		case x < 0.8 || g.final:
			e.Type = history.OK
			g.truncate(l, p.target)
		case x < 0.9:
			e.Type, e.Error = history.Info, history.ClassUnavailable
			if g.chance(0.5) {
				g.truncate(l, p.target)
			}
		default:
			e.Type, e.Error = history.Fail, "invalid-argument"
		}
		g.emit(e)
	})
}

func (g *gen) truncate(l *glog, target dlog.DLSN) {
	if !l.trunc.Less(target) {
		return
	}
	l.trunc = target
	i := sort.Search(len(l.records), func(i int) bool { return !l.records[i].dlsn.Less(target) })
	l.records = l.records[i:]
	l.readable -= i // targets are readable, so everything before them is
}

// finish heals everything, lets every operation complete, closes the
// writers (if configured) and readers.
func (g *gen) finish() {
	g.final = true
	for range 100000 {
		if g.quiet() {
			break
		}
		g.step()
	}
	if !g.quiet() {
		panic(fmt.Sprintf("seed %d: simulation did not quiesce", g.cfg.seed))
	}
	for _, l := range g.logs {
		if g.cfg.closeWriters {
			e := l.epoch
			g.emit(history.Event{Process: l.owner.name, Type: history.Invoke, Kind: history.WriterClose, Log: l.name})
			g.emit(history.Event{Process: l.owner.name, Type: history.OK, Kind: history.WriterClose, Log: l.name, Epoch: e.id, Owner: e.owner})
			e.alive = false
			l.seal(e)
		} else {
			e := l.epoch
			l.segs = append(l.segs, history.Segment{LSSN: e.lssn, State: history.InProgress, StartSeqID: history.Int64(e.startSeq), Epoch: e.id})
		}
	}
}

// quiet reports whether nothing is left to do in the final phase.
func (g *gen) quiet() bool {
	for _, l := range g.logs {
		if l.down || l.heal || len(l.queue) > 0 || len(l.waiting) > 0 || l.owner.busy {
			return false
		}
		if l.epoch.acked < len(l.epoch.entries) {
			return false
		}
	}
	for _, p := range g.procs {
		switch {
		case p.role == roleWriter && p.att != nil && !p.crashed:
			return false
		case p.role == roleReader && p.rstate != rIdle:
			return false
		case p.role == roleTruncator && p.busy:
			return false
		}
	}
	return true
}

func (g *gen) drains() history.Drains {
	out := history.Drains{}
	for _, l := range g.logs {
		d := &history.Drain{Log: l.name, Time: g.now + 1, Truncation: l.trunc, Segments: l.segs}
		for _, r := range l.records {
			d.Records = append(d.Records, history.DrainRecord{DLSN: r.dlsn, Value: r.value, TxID: r.txid, SeqID: r.seqid})
		}
		out[l.name] = d
	}
	return out
}
