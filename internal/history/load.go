package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
)

// MaxLineBytes bounds one line of a history or drain file.
const MaxLineBytes = 64 << 20

// ErrInvalid is wrapped by every error that Load, LoadDrains and Validate
// return for malformed input.
var ErrInvalid = errors.New("history: invalid")

// History is a validated history: its events in file order plus the
// operations they form.
type History struct {
	// Events in file (and time) order. Line n of the file is Events[n-1].
	Events []Event
	// Ops pairs every invoke with its completion, in invoke order.
	Ops []Op
}

// Op is one operation: indexes into History.Events of its invoke and of
// its completion (-1 if the history ended while it was in flight, which
// the checker treats like info).
type Op struct {
	Invoke   int
	Complete int
}

// Pending reports whether the operation never completed.
func (o Op) Pending() bool { return o.Complete < 0 }

// LineError locates a validation error.
type LineError struct {
	Line int // 1-based; Events[Line-1]
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("history: line %d: %v", e.Line, e.Err) }

// Unwrap returns the cause, which wraps ErrInvalid.
func (e *LineError) Unwrap() error { return e.Err }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// Load reads a JSONL history and validates it (see Validate). Line n of
// the input becomes Events[n-1]; blank lines and unknown fields are errors.
// Lines are decoded in parallel batches (all goroutines end before Load
// returns).
func Load(r io.Reader) (*History, error) {
	var events []Event
	var batch lineBatch
	flush := func() error {
		start := len(events)
		events = slices.Grow(events, batch.n())[:start+batch.n()]
		if err := batch.decode(events[start:], start); err != nil {
			return err
		}
		batch.reset()
		return nil
	}
	err := scanLines(r, func(b []byte) error {
		batch.add(b)
		if batch.n() == loadBatchLines {
			return flush()
		}
		return nil
	})
	if err == nil && batch.n() > 0 {
		err = flush()
	}
	if err != nil {
		return nil, err
	}
	return Validate(events)
}

const loadBatchLines = 8192

// lineBatch holds copies of consecutive lines.
type lineBatch struct {
	buf  []byte
	ends []int
}

func (b *lineBatch) n() int { return len(b.ends) }

func (b *lineBatch) add(line []byte) {
	b.buf = append(b.buf, line...)
	b.ends = append(b.ends, len(b.buf))
}

func (b *lineBatch) reset() { b.buf, b.ends = b.buf[:0], b.ends[:0] }

func (b *lineBatch) line(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]]
}

// decode decodes the batch into out (len(out) == b.n()); first is the
// index of the batch's first line in the file. It returns the error of the
// earliest bad line.
func (b *lineBatch) decode(out []Event, first int) error {
	n := b.n()
	workers := min(runtime.GOMAXPROCS(0), 1+n/512)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				if err := decodeEvent(b.line(i), &out[i]); err != nil {
					errs[w] = &LineError{Line: first + i + 1, Err: err}
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func decodeEvent(line []byte, e *Event) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return invalidf("blank line")
	}
	if err := decodeStrict(line, e); err != nil {
		return invalidf("%v", err)
	}
	if len(e.Records) == 0 {
		e.Records = nil // "records":[] means none
	}
	return nil
}

func scanLines(r io.Reader, f func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	for sc.Scan() {
		if err := f(sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return invalidf("line longer than %d bytes", MaxLineBytes)
		}
		return err
	}
	return nil
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

type inflight struct {
	op   int // index into ops
	kind Kind
	log  string
}

type sessionState struct {
	process string
	log     string
	open    bool
}

// Validate checks that events form a well-formed history and pairs its
// operations. It does not copy events; the returned History refers to the
// same slice. The rules:
//   - every event has a known Type and Kind, a Process, and a Time that is
//     not negative and not before the previous event's;
//   - an operation's invoke finds its process idle; its completion (ok,
//     fail or info) matches the process's operation in flight by kind and
//     (when both are set) log and value;
//   - read deliveries, fence-observed and nemesis events are single
//     events: a read needs a session that its process opened (reader-open
//     ok) and that is not yet closed or failed; fence-observed and nemesis
//     events are of type info;
//   - fields a kind needs are present: an append invoke has Log and Value,
//     an append ok a DLSN, an append-bulk ok one DLSN per record, a
//     reader-open invoke a Position, its ok a Session never used before, a
//     truncate invoke a DLSN, a delivered record a DLSN and Value.
//
// Operations still in flight at the end are allowed (Op.Complete == -1).
func Validate(events []Event) (*History, error) {
	h := &History{Events: events}
	busy := map[string]inflight{}
	sessions := map[string]*sessionState{}
	var last int64
	for i := range events {
		e := &events[i]
		if err := validateOne(h, e, i, last, busy, sessions); err != nil {
			return nil, &LineError{Line: i + 1, Err: err}
		}
		last = e.Time
	}
	return h, nil
}

func validateOne(h *History, e *Event, i int, last int64, busy map[string]inflight, sessions map[string]*sessionState) error {
	switch {
	case !e.Type.Valid():
		return invalidf("invalid type %d", uint8(e.Type))
	case !e.Kind.Valid():
		return invalidf("invalid kind %d", uint8(e.Kind))
	case e.Process == "":
		return invalidf("missing process")
	case e.Time < 0:
		return invalidf("negative time %d", e.Time)
	case e.Time < last:
		return invalidf("time %d is before the previous event's %d", e.Time, last)
	}
	if e.Position != nil {
		if err := e.Position.validate(); err != nil {
			return invalidf("%v", err)
		}
	}
	if e.SeqID != nil && *e.SeqID < 0 {
		return invalidf("negative seqid %d", *e.SeqID)
	}
	if !e.Kind.IsOperation() {
		return validateSingle(e, sessions)
	}
	if e.Type == Invoke {
		if cur, ok := busy[e.Process]; ok {
			inv := h.Events[h.Ops[cur.op].Invoke]
			return invalidf("process %s invokes %s while its %s (line %d) is in flight", e.Process, e.Kind, inv.Kind, h.Ops[cur.op].Invoke+1)
		}
		if err := validateInvoke(e, sessions); err != nil {
			return err
		}
		busy[e.Process] = inflight{op: len(h.Ops), kind: e.Kind, log: e.Log}
		h.Ops = append(h.Ops, Op{Invoke: i, Complete: -1})
		return nil
	}
	cur, ok := busy[e.Process]
	if !ok {
		return invalidf("process %s completes %s with nothing in flight", e.Process, e.Kind)
	}
	inv := &h.Events[h.Ops[cur.op].Invoke]
	switch {
	case cur.kind != e.Kind:
		return invalidf("process %s completes %s but its %s is in flight", e.Process, e.Kind, cur.kind)
	case e.Log != "" && inv.Log != "" && e.Log != inv.Log:
		return invalidf("completion log %q differs from invoke log %q", e.Log, inv.Log)
	case e.Value != "" && inv.Value != "" && e.Value != inv.Value:
		return invalidf("completion value %q differs from invoke value %q", e.Value, inv.Value)
	}
	if err := validateCompletion(e, inv, sessions); err != nil {
		return err
	}
	delete(busy, e.Process)
	h.Ops[cur.op].Complete = i
	return nil
}

func validateSingle(e *Event, sessions map[string]*sessionState) error {
	switch e.Kind {
	case Read:
		if e.Type == Invoke {
			return invalidf("read deliveries are single events (ok, fail or info), not invokes")
		}
		s := sessions[e.Session]
		switch {
		case e.Session == "":
			return invalidf("read without a session")
		case s == nil:
			return invalidf("read in unknown session %q", printable(e.Session))
		case !s.open:
			return invalidf("read in session %q after it ended", printable(e.Session))
		case s.process != e.Process:
			return invalidf("read in session %q of process %s by process %s", printable(e.Session), s.process, e.Process)
		case e.Log != "" && e.Log != s.log:
			return invalidf("read of log %q in a session of log %q", e.Log, s.log)
		}
		if e.Type != OK {
			s.open = false // a failed read ends the session
			return nil
		}
		if !e.DLSN.IsValid() || e.Value == "" {
			return invalidf("delivered record needs a dlsn and a value")
		}
	case FenceObserved, NemesisStart, NemesisStop:
		if e.Type != Info {
			return invalidf("%s events have type info", e.Kind)
		}
		if e.Kind == FenceObserved && e.Epoch == "" {
			return invalidf("fence-observed without an epoch")
		}
	}
	return nil
}

func validateInvoke(e *Event, sessions map[string]*sessionState) error {
	needLog := func() error {
		if e.Log == "" {
			return invalidf("%s invoke without a log", e.Kind)
		}
		return nil
	}
	switch e.Kind {
	case Append:
		if e.Value == "" {
			return invalidf("append invoke without a value")
		}
		return needLog()
	case AppendBulk:
		if len(e.Records) == 0 {
			return invalidf("append-bulk invoke without records")
		}
		for _, r := range e.Records {
			if r.Value == "" {
				return invalidf("append-bulk record without a value")
			}
		}
		return needLog()
	case ReaderOpen:
		if e.Position == nil {
			return invalidf("reader-open invoke without a position")
		}
		if e.Session != "" {
			if sessions[e.Session] != nil {
				return invalidf("reader session %q reused", printable(e.Session))
			}
		}
		return needLog()
	case ReaderClose:
		s := sessions[e.Session]
		if s == nil || s.process != e.Process {
			return invalidf("reader-close of unknown session %q", printable(e.Session))
		}
	case Truncate:
		if !e.DLSN.IsValid() {
			return invalidf("truncate invoke without a valid dlsn")
		}
		return needLog()
	case WriterOpen, WriterClose:
		return needLog()
	}
	return nil
}

func validateCompletion(e, inv *Event, sessions map[string]*sessionState) error {
	switch e.Kind {
	case Append:
		if e.Type == OK && !e.DLSN.IsValid() {
			return invalidf("append ok without a valid dlsn")
		}
	case AppendBulk:
		if e.Type == OK {
			if len(e.Records) != len(inv.Records) {
				return invalidf("append-bulk ok has %d records, invoke had %d", len(e.Records), len(inv.Records))
			}
			for j, r := range e.Records {
				if !r.DLSN.IsValid() {
					return invalidf("append-bulk ok record %d without a valid dlsn", j)
				}
				if r.Value != "" && r.Value != inv.Records[j].Value {
					return invalidf("append-bulk ok record %d value %q differs from invoke %q", j, r.Value, inv.Records[j].Value)
				}
			}
		}
	case ReaderOpen:
		id := e.Session
		if id == "" {
			id = inv.Session
		}
		if e.Type == OK {
			if id == "" {
				return invalidf("reader-open ok without a session")
			}
			if sessions[id] != nil {
				return invalidf("reader session %q reused", printable(id))
			}
			sessions[id] = &sessionState{process: e.Process, log: inv.Log, open: true}
		}
	case ReaderClose:
		if s := sessions[inv.Session]; s != nil {
			s.open = false
		}
	}
	return nil
}

// Write writes events as JSONL, one object per line.
func Write(w io.Writer, events []Event) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return fmt.Errorf("history: event %d: %w", i, err)
		}
	}
	return bw.Flush()
}
