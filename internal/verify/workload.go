package verify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
)

// WorkloadConfig shapes the client traffic of a run.
type WorkloadConfig struct {
	// Logs is the number of logs ("l0", "l1", ...). Default 4.
	Logs int
	// WritersPerLog is the number of concurrent writer clients per log,
	// each with one append in flight. Default 2.
	WritersPerLog int
	// Readers is the number of tailing reader clients (spread over the
	// logs); every fourth one also seeks to random acknowledged DLSNs.
	// Default 4.
	Readers int
	// SlowReaders read with SlowReaderDelay between records, so they lag
	// behind in old segments. Default 0.
	SlowReaders     int
	SlowReaderDelay time.Duration
	// PayloadPad is the filler bytes per record. Default 64.
	PayloadPad int
	// OpTimeout bounds one append or truncate. Default 5 s.
	OpTimeout time.Duration
	// TruncateEvery truncates every log this often to a recently
	// acknowledged position, keeping TruncateKeep records (0: never).
	TruncateEvery time.Duration
	TruncateKeep  int
	// WriteInterval paces each writer client (0: as fast as acks come).
	WriteInterval time.Duration
	// ConcentrateLog0 sends this many extra writer clients to log l0, the
	// "hot" log scenarios aim at.
	ConcentrateLog0 int
}

func (w *WorkloadConfig) defaults() {
	if w.Logs == 0 {
		w.Logs = 4
	}
	if w.WritersPerLog == 0 {
		w.WritersPerLog = 2
	}
	if w.Readers == 0 {
		w.Readers = 4
	}
	if w.PayloadPad == 0 {
		w.PayloadPad = 64
	}
	if w.OpTimeout == 0 {
		w.OpTimeout = 5 * time.Second
	}
	if w.SlowReaderDelay == 0 {
		w.SlowReaderDelay = 20 * time.Millisecond
	}
	if w.TruncateKeep == 0 {
		w.TruncateKeep = 500
	}
}

func logName(i int) string { return fmt.Sprintf("l%d", i) }

// histLog is a log's name in the history: "namespace/log".
func histLog(log string) string { return namespaceName + "/" + log }

// Workload drives writer, reader and truncating clients against a Target
// and records every operation in a history.
type Workload struct {
	cfg    WorkloadConfig
	target Target
	rec    *history.Recorder
	logs   []string
	seed   uint64
	txids  []atomic.Int64
	acked  []ackRing
	writes struct{ ok, fail, info atomic.Int64 }
	reads  atomic.Int64
	// lastOK is the time (UnixNano) of the last acknowledged append per log.
	lastOK []atomic.Int64
	// gates hold new appends to a log while a nemesis stages a fault
	// (nil: open).
	gates []atomic.Pointer[chan struct{}]

	stopWriters context.CancelFunc
	wgWriters   sync.WaitGroup
	stopReaders context.CancelFunc
	wgReaders   sync.WaitGroup
	readersAt   []atomic.Pointer[dlog.DLSN] // per reader: last delivered
	readerLog   []int
	readerTails []bool // tailing readers (not slow, not seeking)
}

// ackRing keeps recent acknowledged DLSNs of one log (truncation targets,
// seek positions) and the highest one.
type ackRing struct {
	mu   sync.Mutex
	buf  []dlog.DLSN
	next int
	max  dlog.DLSN
}

func (r *ackRing) add(d dlog.DLSN) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) < 4096 {
		r.buf = append(r.buf, d)
	} else {
		r.buf[r.next] = d
		r.next = (r.next + 1) % len(r.buf)
	}
	if r.max.Less(d) {
		r.max = d
	}
}

// back returns the DLSN acknowledged about k acks ago (sorted order among
// those kept), and false if fewer are kept.
func (r *ackRing) back(k int) (dlog.DLSN, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) <= k {
		return dlog.DLSN{}, false
	}
	i := (r.next - 1 - k + 2*len(r.buf)) % len(r.buf)
	if len(r.buf) < 4096 {
		i = len(r.buf) - 1 - k
	}
	return r.buf[i], true
}

func (r *ackRing) random(rng *rand.Rand) (dlog.DLSN, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		return dlog.DLSN{}, false
	}
	return r.buf[rng.IntN(len(r.buf))], true
}

func (r *ackRing) highest() dlog.DLSN {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.max
}

// NewWorkload returns a workload over the given logs.
func NewWorkload(cfg WorkloadConfig, target Target, rec *history.Recorder, seed uint64) *Workload {
	cfg.defaults()
	w := &Workload{cfg: cfg, target: target, rec: rec, seed: seed}
	for i := range cfg.Logs {
		w.logs = append(w.logs, logName(i))
	}
	w.txids = make([]atomic.Int64, cfg.Logs)
	w.acked = make([]ackRing, cfg.Logs)
	w.lastOK = make([]atomic.Int64, cfg.Logs)
	w.gates = make([]atomic.Pointer[chan struct{}], cfg.Logs)
	return w
}

// Logs returns the log names.
func (w *Workload) Logs() []string { return w.logs }

// Start starts every client; they run until StopWriters / StopReaders.
func (w *Workload) Start(ctx context.Context) {
	wctx, wcancel := context.WithCancel(ctx)
	rctx, rcancel := context.WithCancel(ctx)
	w.stopWriters, w.stopReaders = wcancel, rcancel
	n := 0
	for li := range w.logs {
		k := w.cfg.WritersPerLog
		if li == 0 {
			k += w.cfg.ConcentrateLog0
		}
		for range k {
			proc := fmt.Sprintf("w%d", n)
			n++
			w.wgWriters.Go(func() { w.writer(wctx, proc, li) })
		}
	}
	if w.cfg.TruncateEvery > 0 {
		w.wgWriters.Go(func() { w.truncator(wctx) })
	}
	nr := w.cfg.Readers + w.cfg.SlowReaders
	w.readersAt = make([]atomic.Pointer[dlog.DLSN], nr)
	w.readerLog = make([]int, nr)
	w.readerTails = make([]bool, nr)
	for i := range nr {
		w.readerLog[i] = i % len(w.logs)
		slow := i >= w.cfg.Readers
		w.readerTails[i] = !slow && i%4 != 3
		w.wgReaders.Go(func() { w.reader(rctx, i, slow) })
	}
}

// StopWriters stops the writer and truncating clients and waits for them
// (an append in flight is cancelled: it ends indeterminate).
func (w *Workload) StopWriters() {
	w.stopWriters()
	w.wgWriters.Wait()
}

// StopReaders stops the readers and waits for them.
func (w *Workload) StopReaders() {
	w.stopReaders()
	w.wgReaders.Wait()
}

// Hold stops new appends to log i (those in flight go on) until Release.
func (w *Workload) Hold(i int) {
	ch := make(chan struct{})
	w.gates[i].CompareAndSwap(nil, &ch)
}

// Release lets appends to log i go on.
func (w *Workload) Release(i int) {
	if g := w.gates[i].Swap(nil); g != nil {
		close(*g)
	}
}

// Counts returns acknowledged, failed and indeterminate appends so far.
func (w *Workload) Counts() (ok, fail, info, reads int64) {
	return w.writes.ok.Load(), w.writes.fail.Load(), w.writes.info.Load(), w.reads.Load()
}

// LastOK returns when log i last got an acknowledged append (zero if
// never).
func (w *Workload) LastOK(i int) time.Time {
	if ns := w.lastOK[i].Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// ReadersCaughtUp reports whether every tailing reader delivered its
// log's highest acknowledged DLSN.
func (w *Workload) ReadersCaughtUp() bool {
	for i := range w.readersAt {
		if !w.readerTails[i] {
			continue
		}
		want := w.acked[w.readerLog[i]].highest()
		if !want.IsValid() {
			continue
		}
		got := w.readersAt[i].Load()
		if got == nil || got.Less(want) {
			return false
		}
	}
	return true
}

func (w *Workload) rng(salt uint64) *rand.Rand {
	return rand.New(rand.NewPCG(w.seed, salt))
}

func (w *Workload) writer(ctx context.Context, proc string, li int) {
	log := w.logs[li]
	hl := histLog(log)
	rng := w.rng(hashString(proc))
	for seq := 1; ctx.Err() == nil; seq++ {
		if g := w.gates[li].Load(); g != nil {
			select {
			case <-*g:
			case <-ctx.Done():
				return
			}
		}
		value := fmt.Sprintf("%s-%d", proc, seq)
		txid := w.txids[li].Add(1)
		op := w.rec.InvokeAppend(proc, hl, value, txid)
		octx, cancel := context.WithTimeout(ctx, w.cfg.OpTimeout)
		res, err := w.target.Write(octx, log, value, txid, w.cfg.PayloadPad)
		cancel()
		if err == nil {
			_ = op.OK(history.Event{DLSN: res.DLSN, Epoch: res.Epoch, Owner: res.Owner})
			w.writes.ok.Add(1)
			w.acked[li].add(res.DLSN)
			w.lastOK[li].Store(time.Now().UnixNano())
			if w.cfg.WriteInterval > 0 {
				pause(ctx, w.cfg.WriteInterval)
			}
			continue
		}
		op.SetEpoch(res.Epoch, res.Owner)
		_ = op.Error(err)
		if dlog.IsDefinite(err) {
			w.writes.fail.Add(1)
		} else {
			w.writes.info.Add(1)
		}
		// Back off a little so an unavailable system is not hammered.
		pause(ctx, time.Duration(10+rng.IntN(90))*time.Millisecond)
	}
}

func (w *Workload) truncator(ctx context.Context) {
	rng := w.rng(7)
	proc := "t0"
	for {
		if !pause(ctx, w.cfg.TruncateEvery/2+time.Duration(rng.Int64N(int64(w.cfg.TruncateEvery)))) {
			return
		}
		li := rng.IntN(len(w.logs))
		d, ok := w.acked[li].back(w.cfg.TruncateKeep)
		if !ok {
			continue
		}
		log := w.logs[li]
		op := w.rec.InvokeTruncate(proc, histLog(log), d)
		octx, cancel := context.WithTimeout(ctx, w.cfg.OpTimeout)
		res, err := w.target.Truncate(octx, log, d)
		cancel()
		op.SetEpoch(res.Epoch, res.Owner)
		_ = op.Done(history.Event{DLSN: d}, err)
	}
}

func (w *Workload) reader(ctx context.Context, i int, slow bool) {
	proc := fmt.Sprintf("r%d", i)
	li := w.readerLog[i]
	log, hl := w.logs[li], histLog(w.logs[li])
	rng := w.rng(hashString(proc))
	seeker := !slow && i%4 == 3
	pos := history.Position{At: history.AtStart}
	session := 0
	for ctx.Err() == nil {
		session++
		sid := fmt.Sprintf("%s-%d", proc, session)
		op := w.rec.InvokeReaderOpen(proc, hl, pos)
		octx, cancel := context.WithTimeout(ctx, w.cfg.OpTimeout)
		r, err := w.target.OpenReader(octx, log, pos)
		cancel()
		if err != nil {
			_ = op.Error(err)
			pause(ctx, time.Duration(50+rng.IntN(200))*time.Millisecond)
			continue
		}
		_ = op.OK(history.Event{Session: sid})
		delivered, last := w.readSession(ctx, proc, sid, hl, r, i, slow, seeker, rng)
		r.Close()
		if delivered > 0 {
			pos = history.Position{At: history.AfterDLSN, DLSN: last}
		}
		if seeker && ctx.Err() == nil {
			if d, ok := w.acked[li].random(rng); ok {
				pos = history.Position{At: history.AtDLSN, DLSN: d}
			}
		}
		if ctx.Err() == nil {
			pause(ctx, time.Duration(20+rng.IntN(100))*time.Millisecond)
		}
	}
}

// readSession delivers records until an error, the context's end, or (a
// seeker) a random number of records; it records how the session ended.
func (w *Workload) readSession(ctx context.Context, proc, sid, hl string, r LogReader, i int, slow, seeker bool, rng *rand.Rand) (int, dlog.DLSN) {
	limit := -1
	if seeker {
		limit = 50 + rng.IntN(500)
	}
	var last dlog.DLSN
	n := 0
	for {
		rec, err := r.Next(ctx)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				w.closeSession(proc, sid)
				return n, last
			}
			_ = w.rec.ReadError(proc, sid, hl, err)
			return n, last
		}
		_ = w.rec.Deliver(proc, sid, hl, rec, ValueOf(rec.Payload))
		w.reads.Add(1)
		n++
		last = rec.DLSN
		d := rec.DLSN
		w.readersAt[i].Store(&d)
		if slow && !pause(ctx, w.cfg.SlowReaderDelay) {
			w.closeSession(proc, sid)
			return n, last
		}
		if limit > 0 && n >= limit {
			w.closeSession(proc, sid)
			return n, last
		}
	}
}

func (w *Workload) closeSession(proc, sid string) {
	op := w.rec.Invoke(history.Event{Process: proc, Kind: history.ReaderClose, Session: sid})
	_ = op.OK(history.Event{})
}

// pause waits d or until ctx ends; it reports whether ctx is still live.
// It is deliberate pacing of clients, never synchronisation.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
