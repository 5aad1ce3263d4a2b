package history

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlog-io/dlog"
)

// ErrRecorderClosed is returned for events recorded after Close.
var ErrRecorderClosed = errors.New("history: recorder closed")

// RecorderConfig configures a Recorder.
type RecorderConfig struct {
	// Clock returns the current time in nanoseconds. It must be monotonic
	// and shared by every process whose events are compared: for one
	// process the default (nanoseconds since NewRecorder, from Go's
	// monotonic clock) is right; processes of one run on one host should
	// pass a CLOCK_MONOTONIC reading. The Recorder never lets time go back
	// in its output even if Clock does.
	Clock func() int64
}

// Recorder writes a history as JSONL. It is safe for concurrent use; each
// event is stamped and written under one lock, so the file is in time
// order. Output is buffered: call Close (or Flush) to write it out. The
// first write error is sticky and returned by every later call.
type Recorder struct {
	clock func() int64
	mu    struct {
		sync.Mutex
		bw     *bufio.Writer
		enc    *json.Encoder
		last   int64
		err    error
		closed bool
	}
}

// NewRecorder returns a Recorder writing to w. It does not close w.
func NewRecorder(w io.Writer, cfg RecorderConfig) *Recorder {
	r := &Recorder{clock: cfg.Clock}
	if r.clock == nil {
		start := time.Now()
		r.clock = func() int64 { return int64(time.Since(start)) }
	}
	r.mu.bw = bufio.NewWriterSize(w, 256<<10)
	r.mu.enc = json.NewEncoder(r.mu.bw)
	r.mu.enc.SetEscapeHTML(false)
	return r
}

// Record stamps e with the current time and writes it. It is the raw
// primitive under the helpers; the caller is responsible for e making a
// valid history (see Validate).
func (r *Recorder) Record(e Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writeLocked(&e)
}

func (r *Recorder) writeLocked(e *Event) error {
	if r.mu.err != nil {
		return r.mu.err
	}
	if r.mu.closed {
		return ErrRecorderClosed
	}
	t := r.clock()
	if t < r.mu.last {
		t = r.mu.last
	}
	r.mu.last = t
	e.Time = t
	if err := r.mu.enc.Encode(e); err != nil {
		r.mu.err = fmt.Errorf("history: record: %w", err)
	}
	return r.mu.err
}

// Flush writes buffered events to the underlying writer.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.err == nil && !r.mu.closed {
		if err := r.mu.bw.Flush(); err != nil {
			r.mu.err = fmt.Errorf("history: flush: %w", err)
		}
	}
	return r.mu.err
}

// Close flushes and stops the recorder. Later events return
// ErrRecorderClosed. Operations still in flight stay so in the history
// (the checker treats them as indeterminate). Close is idempotent.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return r.mu.err
	}
	if r.mu.err == nil {
		if err := r.mu.bw.Flush(); err != nil {
			r.mu.err = fmt.Errorf("history: flush: %w", err)
		}
	}
	r.mu.closed = true
	return r.mu.err
}

// Invoke records the invocation described by e (Process, Kind, Log and the
// kind's inputs; Type is set to Invoke) and returns a handle to complete
// it. A recording error is returned by the handle's completion and by
// Close.
func (r *Recorder) Invoke(e Event) *OpHandle {
	e.Type = Invoke
	h := &OpHandle{r: r, inv: e.Clone()}
	_ = r.Record(e)
	return h
}

// InvokeAppend records the invocation of an append of one record.
func (r *Recorder) InvokeAppend(process, log, value string, txid int64) *OpHandle {
	return r.Invoke(Event{Process: process, Kind: Append, Log: log, Value: value, TxID: txid})
}

// InvokeReaderOpen records the opening of a reader session at pos.
func (r *Recorder) InvokeReaderOpen(process, log string, pos Position) *OpHandle {
	return r.Invoke(Event{Process: process, Kind: ReaderOpen, Log: log, Position: &pos})
}

// InvokeTruncate records a truncation of log before dlsn.
func (r *Recorder) InvokeTruncate(process, log string, dlsn dlog.DLSN) *OpHandle {
	return r.Invoke(Event{Process: process, Kind: Truncate, Log: log, DLSN: dlsn})
}

// Deliver records one record delivered by reader session session.
func (r *Recorder) Deliver(process, session, log string, rec dlog.ReadRecord, value string) error {
	return r.Record(Event{
		Process: process, Type: OK, Kind: Read, Log: log, Session: session,
		Value: value, DLSN: rec.DLSN, TxID: rec.TxID, SeqID: Int64(rec.SequenceID),
	})
}

// ReadError records that reader session session failed with err; the
// session ends. Its type is Fail or Info as TypeOf(err) says.
func (r *Recorder) ReadError(process, session, log string, err error) error {
	return r.Record(Event{
		Process: process, Type: typeOfErr(err), Kind: Read, Log: log, Session: session,
		Error: ErrorClass(err), Message: errMessage(err),
	})
}

// FenceObserved records that writer epoch epoch of log learned it was
// fenced or lost ownership outside of any operation.
func (r *Recorder) FenceObserved(process, log, epoch, owner string, err error) error {
	return r.Record(Event{
		Process: process, Type: Info, Kind: FenceObserved, Log: log, Epoch: epoch, Owner: owner,
		Error: ErrorClass(err), Message: errMessage(err),
	})
}

// NemesisStart records that fault is being injected.
func (r *Recorder) NemesisStart(fault string) error {
	return r.Record(Event{Process: "nemesis", Type: Info, Kind: NemesisStart, Fault: fault})
}

// NemesisStop records that fault was healed.
func (r *Recorder) NemesisStop(fault string) error {
	return r.Record(Event{Process: "nemesis", Type: Info, Kind: NemesisStop, Fault: fault})
}

// OpHandle completes one invoked operation. Complete it exactly once, with
// OK, Fail, Info, Error or Done; later completions are ignored and make
// Close report an error. Not safe for concurrent use.
type OpHandle struct {
	r    *Recorder
	inv  Event
	done atomic.Bool
}

// ErrCompletedTwice is recorded when an OpHandle is completed twice.
var ErrCompletedTwice = errors.New("history: operation completed twice")

// SetEpoch sets the writer epoch and owner that the completion carries
// (e.g. learned from an error) unless the completion sets its own.
func (h *OpHandle) SetEpoch(epoch, owner string) {
	h.inv.Epoch, h.inv.Owner = epoch, owner
}

// OK records success. res carries the results: DLSN (and SeqID, Epoch,
// Owner) of an append, Records with DLSNs of an append-bulk, Session of a
// reader-open, Epoch and Owner of a writer-open. Fields of the invoke
// (Log, Value, TxID) are copied into the completion.
func (h *OpHandle) OK(res Event) error {
	return h.complete(OK, res)
}

// OKBulk records the success of an append-bulk whose records got dlsns,
// in order.
func (h *OpHandle) OKBulk(dlsns []dlog.DLSN, res Event) error {
	recs := append([]Record(nil), h.inv.Records...)
	for i := range recs {
		if i < len(dlsns) {
			recs[i].DLSN = dlsns[i]
		}
	}
	res.Records = recs
	return h.complete(OK, res)
}

// Fail records a definite failure: the operation had no effect.
func (h *OpHandle) Fail(err error) error {
	return h.complete(Fail, Event{Error: ErrorClass(err), Message: errMessage(err)})
}

// Info records an indeterminate outcome: the operation may or may not have
// taken effect.
func (h *OpHandle) Info(err error) error {
	return h.complete(Info, Event{Error: ErrorClass(err), Message: errMessage(err)})
}

// Error records err classified by dlog.IsDefinite: a definite error as
// Fail, anything else as Info. A nil err is an error of the caller and
// recorded as Info with class "unknown".
func (h *OpHandle) Error(err error) error {
	return h.complete(typeOfErr(err), Event{Error: classOrUnknown(err), Message: errMessage(err)})
}

// Done records OK(res) if err is nil and Error(err) otherwise.
func (h *OpHandle) Done(res Event, err error) error {
	if err == nil {
		return h.OK(res)
	}
	return h.Error(err)
}

func (h *OpHandle) complete(t Type, res Event) error {
	if h.done.Swap(true) {
		h.r.mu.Lock()
		defer h.r.mu.Unlock()
		if h.r.mu.err == nil {
			h.r.mu.err = ErrCompletedTwice
		}
		return h.r.mu.err
	}
	e := res
	e.Type = t
	e.Process, e.Kind = h.inv.Process, h.inv.Kind
	if e.Log == "" {
		e.Log = h.inv.Log
	}
	if e.Value == "" {
		e.Value = h.inv.Value
	}
	if e.TxID == 0 {
		e.TxID = h.inv.TxID
	}
	if e.Records == nil && h.inv.Records != nil {
		e.Records = append([]Record(nil), h.inv.Records...)
	}
	if e.Session == "" {
		e.Session = h.inv.Session
	}
	if e.Epoch == "" {
		e.Epoch, e.Owner = h.inv.Epoch, h.inv.Owner
	}
	if e.Kind == Truncate && !e.DLSN.IsValid() {
		e.DLSN = h.inv.DLSN
	}
	return h.r.Record(e)
}

func typeOfErr(err error) Type {
	if t := TypeOf(err); t != OK {
		return t
	}
	return Info
}

func classOrUnknown(err error) string {
	if err == nil {
		return ClassUnknown
	}
	return ErrorClass(err)
}

func errMessage(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
