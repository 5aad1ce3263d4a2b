package proxy

import (
	"container/list"
	"fmt"
	"slices"

	"github.com/dlog-io/dlog"
)

// producerTable is one owned log's dedup state for idempotent writes:
// for each producer, the runs of recent sequences that are in the log
// (with their DLSNs and txids) and the writes still in flight. It is pure
// state — no I/O, no goroutines, no clock — guarded by its stream's
// mutex.
//
// Rules (doc.go has the contract): a sequence above everything known for
// its producer is new; one inside a remembered run is a duplicate (its
// original DLSN is the answer); one inside an in-flight write must wait
// for that write; any other sequence at or below the producer's last is
// too old (a definite error). The table is rebuilt by a new owner from
// the records at the end of the log (apply), so what it knows survives
// failover up to that window.
type producerTable struct {
	maxProducers int
	maxRuns      int
	byID         map[string]*list.Element // of *producer
	lru          *list.List               // front: most recently used
}

type producer struct {
	id       string
	ackedMax int64 // highest sequence known to be in the log; -1: none
	runs     []seqRun
	inflight []*pendingOp // ascending by first
}

// seqRun is n consecutive sequences whose records sit in consecutive slots
// of one entry and share a txid.
type seqRun struct {
	first int64
	n     int64
	dlsn  dlog.DLSN // of the first
	txid  int64
}

func (r seqRun) last() int64 { return r.first + r.n - 1 }

// pendingOp is an in-flight write of sequences first..first+n-1. done is
// closed once its outcome is folded into the table.
type pendingOp struct {
	producer string
	first, n int64
	done     chan struct{}
}

// verdict is what the table says about an incoming write.
type verdict struct {
	// dups are the results of the leading sequences already in the log;
	// the rest of the write (if any) is new.
	dups []writeResult
	// wait is set when a leading sequence belongs to a write in flight:
	// wait for it, then ask again.
	wait *pendingOp
	// tooOld is set when a leading sequence is neither remembered nor in
	// flight.
	tooOld error
}

func newProducerTable(maxProducers, maxRuns int) *producerTable {
	return &producerTable{maxProducers: maxProducers, maxRuns: maxRuns, byID: make(map[string]*list.Element), lru: list.New()}
}

func (t *producerTable) get(id string, create bool) *producer {
	if el, ok := t.byID[id]; ok {
		t.lru.MoveToFront(el)
		return el.Value.(*producer)
	}
	if !create {
		return nil
	}
	p := &producer{id: id, ackedMax: -1}
	t.byID[id] = t.lru.PushFront(p)
	t.evict()
	return p
}

// evict forgets the least recently used producers beyond the bound,
// never one with a write in flight.
func (t *producerTable) evict() {
	for el := t.lru.Back(); el != nil && len(t.byID) > t.maxProducers; {
		prev := el.Prev()
		if p := el.Value.(*producer); len(p.inflight) == 0 {
			t.lru.Remove(el)
			delete(t.byID, p.id)
		}
		el = prev
	}
}

// len is the number of producers remembered.
func (t *producerTable) len() int { return len(t.byID) }

// lastLocked is the producer's highest sequence accepted or known.
func (p *producer) last() int64 {
	last := p.ackedMax
	if k := len(p.inflight); k > 0 {
		last = max(last, p.inflight[k-1].first+p.inflight[k-1].n-1)
	}
	return last
}

// check classifies a write of n sequences from first.
func (t *producerTable) check(id string, first, n int64) verdict {
	p := t.get(id, false)
	if p == nil {
		return verdict{}
	}
	last := p.last()
	var v verdict
	for seq := first; seq < first+n && seq <= last; seq++ {
		if op := p.inflightFor(seq); op != nil {
			return verdict{wait: op}
		}
		r, ok := p.find(seq)
		if !ok {
			return verdict{tooOld: fmt.Errorf("producer %q sequence %d: last known %d, remembered runs %s", id, seq, last, p.describeRuns())}
		}
		off := seq - r.first
		v.dups = append(v.dups, writeResult{dlsn: dlog.DLSN{LSSN: r.dlsn.LSSN, EntryID: r.dlsn.EntryID, SlotID: r.dlsn.SlotID + off}, txid: r.txid, duplicate: true})
	}
	return v
}

func (p *producer) inflightFor(seq int64) *pendingOp {
	for _, op := range p.inflight {
		if seq >= op.first && seq < op.first+op.n {
			return op
		}
	}
	return nil
}

func (p *producer) find(seq int64) (seqRun, bool) {
	i, found := slices.BinarySearchFunc(p.runs, seq, func(r seqRun, s int64) int {
		switch {
		case r.last() < s:
			return -1
		case r.first > s:
			return 1
		}
		return 0
	})
	if !found {
		return seqRun{}, false
	}
	return p.runs[i], true
}

func (p *producer) describeRuns() string {
	if len(p.runs) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d..%d", p.runs[0].first, p.runs[len(p.runs)-1].last())
}

// begin records a write of n sequences from first as in flight. The
// caller checked it with check first (no overlap with what is known).
func (t *producerTable) begin(id string, first, n int64) *pendingOp {
	p := t.get(id, true)
	op := &pendingOp{producer: id, first: first, n: n, done: make(chan struct{})}
	i, _ := slices.BinarySearchFunc(p.inflight, first, func(o *pendingOp, f int64) int {
		switch {
		case o.first < f:
			return -1
		case o.first > f:
			return 1
		}
		return 0
	})
	p.inflight = slices.Insert(p.inflight, i, op)
	return op
}

// finish folds an in-flight write's outcome: results[i] is sequence
// op.first+i (an error leaves that sequence unknown). It closes op.done.
func (t *producerTable) finish(op *pendingOp, results []writeResult) {
	defer close(op.done)
	el, ok := t.byID[op.producer]
	if !ok {
		return
	}
	p := el.Value.(*producer)
	if i := slices.Index(p.inflight, op); i >= 0 {
		p.inflight = slices.Delete(p.inflight, i, i+1)
	}
	for i, r := range results {
		if r.err == nil {
			p.add(op.first+int64(i), r.dlsn, r.txid, t.maxRuns)
		}
	}
	t.evict()
}

// apply records that sequence seq of producer id is in the log at d (a
// new owner reading the end of the log, in log order).
func (t *producerTable) apply(id string, seq int64, d dlog.DLSN, txid int64) {
	t.get(id, true).add(seq, d, txid, t.maxRuns)
}

// add inserts one known sequence, merging it into a neighbouring run when
// contiguous, and drops the oldest runs beyond maxRuns.
func (p *producer) add(seq int64, d dlog.DLSN, txid int64, maxRuns int) {
	p.ackedMax = max(p.ackedMax, seq)
	i, found := slices.BinarySearchFunc(p.runs, seq, func(r seqRun, s int64) int {
		switch {
		case r.last() < s:
			return -1
		case r.first > s:
			return 1
		}
		return 0
	})
	if found {
		return // known already (a rebuild overlapping what was folded)
	}
	extends := func(r seqRun, seq int64, d dlog.DLSN, txid int64) bool {
		return seq == r.first+r.n && txid == r.txid && d.LSSN == r.dlsn.LSSN && d.EntryID == r.dlsn.EntryID && d.SlotID == r.dlsn.SlotID+r.n
	}
	switch {
	case i > 0 && extends(p.runs[i-1], seq, d, txid):
		p.runs[i-1].n++
		// The grown run may now touch the next one.
		if i < len(p.runs) {
			prev, next := p.runs[i-1], p.runs[i]
			if extends(prev, next.first, next.dlsn, next.txid) {
				p.runs[i-1].n += next.n
				p.runs = slices.Delete(p.runs, i, i+1)
			}
		}
	case i < len(p.runs) && extends(seqRun{first: seq, n: 1, dlsn: d, txid: txid}, p.runs[i].first, p.runs[i].dlsn, p.runs[i].txid):
		p.runs[i] = seqRun{first: seq, n: p.runs[i].n + 1, dlsn: d, txid: txid}
	default:
		p.runs = slices.Insert(p.runs, i, seqRun{first: seq, n: 1, dlsn: d, txid: txid})
	}
	if over := len(p.runs) - maxRuns; over > 0 {
		p.runs = slices.Delete(p.runs, 0, over)
	}
}
