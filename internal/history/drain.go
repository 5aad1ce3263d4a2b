package history

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/dlog-io/dlog"
)

// SegmentState is a segment's state in the final metadata.
type SegmentState uint8

// Segment states. The zero value is invalid.
const (
	// Completed: sealed, with a final LastEntryID.
	Completed SegmentState = iota + 1
	// InProgress: still open; nothing is known about its end.
	InProgress
)

var segmentStateNames = [...]string{Completed: "completed", InProgress: "in-progress"}

// String returns "completed" or "in-progress".
func (s SegmentState) String() string {
	if s == Completed || s == InProgress {
		return segmentStateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s SegmentState) MarshalText() ([]byte, error) {
	if s != Completed && s != InProgress {
		return nil, fmt.Errorf("history: invalid segment state %d", uint8(s))
	}
	return []byte(segmentStateNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *SegmentState) UnmarshalText(b []byte) error {
	for i, n := range segmentStateNames {
		if i != 0 && n == string(b) {
			*s = SegmentState(i)
			return nil
		}
	}
	return fmt.Errorf("history: unknown segment state %q", printable(string(b)))
}

// Segment is one log segment as the final metadata describes it.
type Segment struct {
	LSSN  int64        `json:"lssn"`
	State SegmentState `json:"state"`
	// LastEntryID is the sealed last entry id of a completed segment; -1
	// for a segment sealed empty.
	LastEntryID int64 `json:"last_entry"`
	// StartSeqID is the sequence id of the segment's first record, when
	// known.
	StartSeqID *int64 `json:"start_seqid,omitempty"`
	// Epoch is the writer epoch that created the segment, when known.
	Epoch string `json:"epoch,omitempty"`
}

// DrainRecord is one record of a final drain read.
type DrainRecord struct {
	DLSN  dlog.DLSN `json:"dlsn"`
	Value string    `json:"value"`
	TxID  int64     `json:"txid"`
	SeqID int64     `json:"seqid"`
}

// Drain is the final read of one log, taken after every fault healed and
// every writer closed: every record from the earliest untruncated position
// to the end, in read order, plus the final metadata.
type Drain struct {
	Log string
	// Time is when the drain started (same clock as the history), 0 if
	// unknown.
	Time int64
	// Truncation is the log's final truncation point: records before it
	// are deleted. The zero DLSN means the log was never truncated.
	Truncation dlog.DLSN
	Segments   []Segment
	Records    []DrainRecord
	// Error is set when the drain did not reach the end of the log.
	Error string
}

// Drains maps a log name to its drain.
type Drains map[string]*Drain

// drainLine is one line of a drain file: a "begin" header, a record (Mark
// empty) or an "end" footer.
type drainLine struct {
	Mark       string    `json:"drain,omitempty"`
	Log        string    `json:"log"`
	Time       int64     `json:"time,omitempty"`
	Truncation dlog.DLSN `json:"truncation,omitzero"`
	Segments   []Segment `json:"segments,omitempty"`
	Count      *int      `json:"count,omitempty"`
	Error      string    `json:"error,omitempty"`

	DLSN  dlog.DLSN `json:"dlsn,omitzero"`
	Value string    `json:"value,omitempty"`
	TxID  int64     `json:"txid,omitempty"`
	SeqID int64     `json:"seqid,omitempty"`
}

const (
	markBegin = "begin"
	markEnd   = "end"
)

// DrainWriter writes a drain file: for each log a header line
// {"drain":"begin",...}, one line per record, and a footer
// {"drain":"end","count":N}. Logs must not interleave. Not safe for
// concurrent use.
type DrainWriter struct {
	bw    *bufio.Writer
	enc   *json.Encoder
	log   string
	count int
	open  bool
	err   error
}

// NewDrainWriter returns a DrainWriter writing to w; Close flushes it.
func NewDrainWriter(w io.Writer) *DrainWriter {
	bw := bufio.NewWriterSize(w, 256<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	return &DrainWriter{bw: bw, enc: enc}
}

func (w *DrainWriter) write(l *drainLine) error {
	if w.err == nil {
		if err := w.enc.Encode(l); err != nil {
			w.err = fmt.Errorf("history: drain: %w", err)
		}
	}
	return w.err
}

// Begin starts the drain of log. time is the drain's start (0: unknown).
func (w *DrainWriter) Begin(log string, time int64, truncation dlog.DLSN, segments []Segment) error {
	if w.open {
		return fmt.Errorf("history: drain of %s begun before the drain of %s ended", log, w.log)
	}
	w.log, w.count, w.open = log, 0, true
	return w.write(&drainLine{Mark: markBegin, Log: log, Time: time, Truncation: truncation, Segments: segments})
}

// Add writes the next record of the current drain.
func (w *DrainWriter) Add(r DrainRecord) error {
	if !w.open {
		return errors.New("history: drain record outside Begin/End")
	}
	w.count++
	return w.write(&drainLine{Log: w.log, DLSN: r.DLSN, Value: r.Value, TxID: r.TxID, SeqID: r.SeqID})
}

// End ends the current drain. A non-nil readErr says the drain could not
// read to the end of the log; the checker reports it.
func (w *DrainWriter) End(readErr error) error {
	if !w.open {
		return errors.New("history: drain End without Begin")
	}
	w.open = false
	n := w.count
	l := &drainLine{Mark: markEnd, Log: w.log, Count: &n}
	if readErr != nil {
		l.Error = readErr.Error()
		if l.Error == "" {
			l.Error = "drain failed"
		}
	}
	return w.write(l)
}

// WriteDrain writes a whole drain.
func (w *DrainWriter) WriteDrain(d *Drain) error {
	if err := w.Begin(d.Log, d.Time, d.Truncation, d.Segments); err != nil {
		return err
	}
	for _, r := range d.Records {
		if err := w.Add(r); err != nil {
			return err
		}
	}
	var err error
	if d.Error != "" {
		err = errors.New(d.Error)
	}
	return w.End(err)
}

// Close flushes the output. It fails if a drain is still open.
func (w *DrainWriter) Close() error {
	if w.err == nil {
		if err := w.bw.Flush(); err != nil {
			w.err = fmt.Errorf("history: drain: %w", err)
		}
	}
	if w.err == nil && w.open {
		return fmt.Errorf("history: drain of %s not ended", w.log)
	}
	return w.err
}

// LoadDrains reads a drain file. Every log must be begun once, its records
// must follow its header and its footer's count must match; a missing
// footer (a drain cut short) is an error. Record order is kept as read:
// the checker, not the loader, judges it.
func LoadDrains(r io.Reader) (Drains, error) {
	out := Drains{}
	var cur *Drain
	line := 0
	err := scanLines(r, func(b []byte) error {
		line++
		var l drainLine
		if err := decodeStrict(b, &l); err != nil {
			return &LineError{Line: line, Err: invalidf("%v", err)}
		}
		if err := addDrainLine(out, &cur, &l); err != nil {
			return &LineError{Line: line, Err: err}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, invalidf("drain of %s has no end line", printable(cur.Log))
	}
	return out, nil
}

func addDrainLine(out Drains, cur **Drain, l *drainLine) error {
	if l.Log == "" {
		return invalidf("drain line without a log")
	}
	switch l.Mark {
	case markBegin:
		if *cur != nil {
			return invalidf("drain of %s begins inside the drain of %s", printable(l.Log), printable((*cur).Log))
		}
		if out[l.Log] != nil {
			return invalidf("second drain of %s", printable(l.Log))
		}
		if l.Truncation != (dlog.DLSN{}) && !l.Truncation.IsValid() {
			return invalidf("invalid truncation point")
		}
		seen := map[int64]bool{}
		for _, s := range l.Segments {
			switch {
			case s.LSSN < 1:
				return invalidf("segment lssn %d < 1", s.LSSN)
			case seen[s.LSSN]:
				return invalidf("segment %d listed twice", s.LSSN)
			case s.State != Completed && s.State != InProgress:
				return invalidf("segment %d has no state", s.LSSN)
			case s.State == Completed && s.LastEntryID < -1:
				return invalidf("segment %d last entry %d < -1", s.LSSN, s.LastEntryID)
			}
			seen[s.LSSN] = true
		}
		d := &Drain{Log: l.Log, Time: l.Time, Truncation: l.Truncation}
		if len(l.Segments) > 0 {
			d.Segments = l.Segments
		}
		out[l.Log] = d
		*cur = d
	case markEnd:
		d := *cur
		switch {
		case d == nil || d.Log != l.Log:
			return invalidf("drain end of %s without its begin", printable(l.Log))
		case l.Count == nil:
			return invalidf("drain end of %s without a count", printable(l.Log))
		case *l.Count != len(d.Records):
			return invalidf("drain end of %s counts %d records, read %d", printable(l.Log), *l.Count, len(d.Records))
		}
		d.Error = l.Error
		*cur = nil
	case "":
		d := *cur
		switch {
		case d == nil || d.Log != l.Log:
			return invalidf("drain record of %s outside its begin and end", printable(l.Log))
		case !l.DLSN.IsValid():
			return invalidf("drain record without a valid dlsn")
		case l.Value == "":
			return invalidf("drain record without a value")
		case l.SeqID < 0:
			return invalidf("negative seqid")
		}
		d.Records = append(d.Records, DrainRecord{DLSN: l.DLSN, Value: l.Value, TxID: l.TxID, SeqID: l.SeqID})
	default:
		return invalidf("unknown drain mark %q", printable(l.Mark))
	}
	return nil
}
