package history

import (
	"fmt"

	"github.com/dlog-io/dlog"
)

// Type says where an event stands in an operation's life, in Jepsen's
// vocabulary: an invocation, or one of three completions.
type Type uint8

// Types. The zero value is invalid.
const (
	// Invoke: the client is about to call the operation.
	Invoke Type = iota + 1
	// OK: the operation took effect and the client knows how.
	OK
	// Fail: the operation definitely had no effect (a definite error).
	Fail
	// Info: the outcome is unknown (an indeterminate error, or an event
	// that is only information, like a nemesis step).
	Info
)

var typeNames = [...]string{Invoke: "invoke", OK: "ok", Fail: "fail", Info: "info"}

// String returns the text form ("invoke", "ok", "fail", "info").
func (t Type) String() string {
	if t >= Invoke && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Valid reports whether t is one of the four types.
func (t Type) Valid() bool { return t >= Invoke && t <= Info }

// IsCompletion reports whether t ends an operation (ok, fail or info).
func (t Type) IsCompletion() bool { return t >= OK && t <= Info }

// MarshalText implements encoding.TextMarshaler.
func (t Type) MarshalText() ([]byte, error) {
	if !t.Valid() {
		return nil, fmt.Errorf("history: invalid type %d", uint8(t))
	}
	return []byte(typeNames[t]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Type) UnmarshalText(b []byte) error {
	for i, n := range typeNames {
		if i != 0 && n == string(b) {
			*t = Type(i)
			return nil
		}
	}
	return fmt.Errorf("history: unknown type %q", printable(string(b)))
}

// Kind is what an event is about.
type Kind uint8

// Kinds. The zero value is invalid. Kinds up to WriterClose are operations
// (an invoke followed by at most one completion by the same process); the
// others are single events.
const (
	// Append: one record appended. Invoke: Log, Value, TxID. OK: DLSN
	// (and Epoch, Owner, SeqID when known).
	Append Kind = iota + 1
	// AppendBulk: several records appended by one call, all or nothing.
	// Invoke: Log, Records (Value, TxID). OK: Records with DLSN set.
	AppendBulk
	// ReaderOpen: a reader session starts. Invoke: Log, Position.
	// OK: Session (a new, unique id).
	ReaderOpen
	// ReaderClose: a reader session ends (whatever the outcome).
	// Invoke: Session.
	ReaderClose
	// Truncate: everything before DLSN is to be deleted.
	// Invoke: Log, DLSN (the new truncation point).
	Truncate
	// WriterOpen: a writer acquires a log. OK: Epoch, Owner, and the DLSN
	// of the first position of its new segment when known.
	WriterOpen
	// WriterClose: a writer releases a log (sealing its segment).
	WriterClose

	// Read: a reader session delivered one record (type ok: Session, Log,
	// DLSN, Value, TxID, SeqID) or failed (type fail or info: Session,
	// Error); a failed read ends the session.
	Read
	// FenceObserved: a writer learned, outside any operation, that its
	// epoch was fenced or lost ownership. Type info; Log, Epoch.
	FenceObserved
	// NemesisStart and NemesisStop bracket an injected fault. Type info;
	// Fault names it. A NemesisStop is a heal.
	NemesisStart
	NemesisStop
)

var kindNames = [...]string{
	Append: "append", AppendBulk: "append-bulk", ReaderOpen: "reader-open",
	ReaderClose: "reader-close", Truncate: "truncate", WriterOpen: "writer-open",
	WriterClose: "writer-close", Read: "read", FenceObserved: "fence-observed",
	NemesisStart: "nemesis-start", NemesisStop: "nemesis-stop",
}

// String returns the text form, e.g. "append-bulk".
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k >= Append && k <= NemesisStop }

// IsOperation reports whether events of kind k come as an invoke followed
// by at most one completion of the same process.
func (k Kind) IsOperation() bool { return k >= Append && k <= WriterClose }

// MarshalText implements encoding.TextMarshaler.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("history: invalid kind %d", uint8(k))
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if i != 0 && n == string(b) {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("history: unknown kind %q", printable(string(b)))
}

// PositionKind says how a reader session's start position is given.
type PositionKind uint8

// Position kinds. The zero value is invalid.
const (
	// AtDLSN: the first record at or after DLSN.
	AtDLSN PositionKind = iota + 1
	// AfterDLSN: the first record strictly after DLSN (a resume from the
	// last delivered DLSN).
	AfterDLSN
	// AtTxID: the first record whose txid is >= TxID.
	AtTxID
	// AtStart: the first untruncated record.
	AtStart
	// AtEnd: the first record appended after the session opened.
	AtEnd
)

var positionNames = [...]string{AtDLSN: "dlsn", AfterDLSN: "after", AtTxID: "txid", AtStart: "start", AtEnd: "end"}

// String returns the text form, e.g. "after".
func (p PositionKind) String() string {
	if p >= AtDLSN && p <= AtEnd {
		return positionNames[p]
	}
	return fmt.Sprintf("position(%d)", uint8(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p PositionKind) MarshalText() ([]byte, error) {
	if p < AtDLSN || p > AtEnd {
		return nil, fmt.Errorf("history: invalid position kind %d", uint8(p))
	}
	return []byte(positionNames[p]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *PositionKind) UnmarshalText(b []byte) error {
	for i, n := range positionNames {
		if i != 0 && n == string(b) {
			*p = PositionKind(i)
			return nil
		}
	}
	return fmt.Errorf("history: unknown position kind %q", printable(string(b)))
}

// Position is where a reader session asks to start.
type Position struct {
	At   PositionKind `json:"at"`
	DLSN dlog.DLSN    `json:"dlsn,omitzero"` // AtDLSN, AfterDLSN
	TxID int64        `json:"txid,omitempty"`
}

// String formats p for humans, e.g. "after 3:10:0".
func (p Position) String() string {
	switch p.At {
	case AtDLSN, AfterDLSN:
		return p.At.String() + " " + p.DLSN.String()
	case AtTxID:
		return fmt.Sprintf("txid %d", p.TxID)
	}
	return p.At.String()
}

func (p Position) validate() error {
	switch p.At {
	case AtDLSN, AfterDLSN:
		if !p.DLSN.IsValid() {
			return fmt.Errorf("position %s needs a valid dlsn", p.At)
		}
	case AtTxID:
		if p.TxID < 0 {
			return fmt.Errorf("position txid %d is negative", p.TxID)
		}
	case AtStart, AtEnd:
	default:
		return fmt.Errorf("invalid position kind %d", uint8(p.At))
	}
	return nil
}

// Record is one record of an append-bulk operation.
type Record struct {
	Value string    `json:"value"`
	TxID  int64     `json:"txid,omitempty"`
	DLSN  dlog.DLSN `json:"dlsn,omitzero"` // set on the ok completion
}

// Event is one line of a history. Which fields are set depends on Kind and
// Type; see the package documentation for the table.
type Event struct {
	// Time is a monotonic timestamp in nanoseconds from one clock shared
	// by every process of the run; events of a history never go back in
	// time.
	Time int64 `json:"time"`
	// Process is the client that performed the event ("w3", "r1",
	// "nemesis"). A process runs at most one operation at a time.
	Process string `json:"process"`
	Type    Type   `json:"type"`
	Kind    Kind   `json:"kind"`
	// Log is the log's full name, "namespace/log".
	Log string `json:"log,omitempty"`
	// Value is the unique id of an appended or delivered payload.
	Value string `json:"value,omitempty"`
	TxID  int64  `json:"txid,omitempty"`
	// DLSN is the position an append got or a read delivered, or the
	// target of a truncate.
	DLSN dlog.DLSN `json:"dlsn,omitzero"`
	// SeqID is the record's sequence id, when the API reported it.
	SeqID *int64 `json:"seqid,omitempty"`
	// Records holds the records of an append-bulk.
	Records []Record `json:"records,omitempty"`
	// Position is the requested start of a reader session.
	Position *Position `json:"position,omitempty"`
	// Session is the reader session id.
	Session string `json:"session,omitempty"`
	// Epoch identifies the writer epoch (writer session / ownership) that
	// answered, when known; Owner is its proxy address or writer id.
	Epoch string `json:"epoch,omitempty"`
	Owner string `json:"owner,omitempty"`
	// Error is the error class of a fail or info completion (see
	// ErrorClass); Message is the error text.
	Error   string `json:"error,omitempty"`
	Message string `json:"msg,omitempty"`
	// Fault names the fault of a nemesis event.
	Fault string `json:"fault,omitempty"`
}

// Clone returns a deep copy of e.
func (e Event) Clone() Event {
	if e.SeqID != nil {
		v := *e.SeqID
		e.SeqID = &v
	}
	if e.Records != nil {
		e.Records = append([]Record(nil), e.Records...)
	}
	if e.Position != nil {
		p := *e.Position
		e.Position = &p
	}
	return e
}

// String formats e compactly for humans (reports, test failures).
func (e Event) String() string {
	s := fmt.Sprintf("%d %s %s %s", e.Time, e.Process, e.Type, e.Kind)
	if e.Log != "" {
		s += " log=" + e.Log
	}
	if e.Value != "" {
		s += " value=" + e.Value
	}
	if e.DLSN.IsValid() {
		s += " dlsn=" + e.DLSN.String()
	}
	if e.TxID != 0 {
		s += fmt.Sprintf(" txid=%d", e.TxID)
	}
	if e.SeqID != nil {
		s += fmt.Sprintf(" seqid=%d", *e.SeqID)
	}
	for _, r := range e.Records {
		s += " rec=" + r.Value
		if r.DLSN.IsValid() {
			s += "@" + r.DLSN.String()
		}
	}
	if e.Position != nil {
		s += " from=" + e.Position.String()
	}
	if e.Session != "" {
		s += " session=" + e.Session
	}
	if e.Epoch != "" {
		s += " epoch=" + e.Epoch
	}
	if e.Owner != "" {
		s += " owner=" + e.Owner
	}
	if e.Error != "" {
		s += " error=" + e.Error
	}
	if e.Fault != "" {
		s += " fault=" + e.Fault
	}
	return s
}

// Int64 returns a pointer to v, for SeqID.
func Int64(v int64) *int64 { return &v }

// printable keeps control bytes out of error messages.
func printable(s string) string {
	const limit = 64
	b := []rune{}
	for _, r := range s {
		if len(b) == limit {
			b = append(b, '…')
			break
		}
		if r < 0x20 || r == 0x7f {
			r = '?'
		}
		b = append(b, r)
	}
	return string(b)
}
