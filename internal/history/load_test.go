package history

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dlog-io/dlog"
)

// sample is a small valid history that uses every kind.
func sample() []Event {
	d := func(l, e, s int64) dlog.DLSN { return dlog.DLSN{LSSN: l, EntryID: e, SlotID: s} }
	return []Event{
		{Time: 1, Process: "o1", Type: Invoke, Kind: WriterOpen, Log: "ns/a"},
		{Time: 2, Process: "o1", Type: OK, Kind: WriterOpen, Log: "ns/a", Epoch: "e1", Owner: "127.0.0.1:7000", DLSN: d(1, 0, 0)},
		{Time: 3, Process: "w1", Type: Invoke, Kind: Append, Log: "ns/a", Value: "w1-0", TxID: 10},
		{Time: 3, Process: "w2", Type: Invoke, Kind: AppendBulk, Log: "ns/a", Records: []Record{{Value: "w2-0", TxID: 11}, {Value: "w2-1", TxID: 11}}},
		{Time: 4, Process: "w1", Type: OK, Kind: Append, Log: "ns/a", Value: "w1-0", TxID: 10, DLSN: d(1, 0, 0), Epoch: "e1", SeqID: Int64(0)},
		{Time: 5, Process: "w2", Type: OK, Kind: AppendBulk, Log: "ns/a", Records: []Record{{Value: "w2-0", TxID: 11, DLSN: d(1, 1, 0)}, {Value: "w2-1", TxID: 11, DLSN: d(1, 1, 1)}}, Epoch: "e1"},
		{Time: 6, Process: "w1", Type: Invoke, Kind: Append, Log: "ns/a", Value: "w1-1", TxID: 12},
		{Time: 7, Process: "w1", Type: Fail, Kind: Append, Log: "ns/a", Value: "w1-1", TxID: 12, Error: "over-capacity", Message: "dlog: over capacity"},
		{Time: 8, Process: "w1", Type: Invoke, Kind: Append, Log: "ns/a", Value: "w1-2", TxID: 13},
		{Time: 9, Process: "nemesis", Type: Info, Kind: NemesisStart, Fault: "kill proxy-1"},
		{Time: 10, Process: "w1", Type: Info, Kind: Append, Log: "ns/a", Value: "w1-2", TxID: 13, Error: "fenced", Epoch: "e1"},
		{Time: 10, Process: "o1", Type: Info, Kind: FenceObserved, Log: "ns/a", Epoch: "e1", Error: "fenced"},
		{Time: 11, Process: "nemesis", Type: Info, Kind: NemesisStop, Fault: "kill proxy-1"},
		{Time: 12, Process: "r1", Type: Invoke, Kind: ReaderOpen, Log: "ns/a", Position: &Position{At: AtTxID, TxID: 11}},
		{Time: 13, Process: "r1", Type: OK, Kind: ReaderOpen, Log: "ns/a", Session: "r1-1"},
		{Time: 14, Process: "r1", Type: OK, Kind: Read, Log: "ns/a", Session: "r1-1", Value: "w2-0", TxID: 11, DLSN: d(1, 1, 0), SeqID: Int64(1)},
		{Time: 15, Process: "r1", Type: Info, Kind: Read, Log: "ns/a", Session: "r1-1", Error: "unavailable"},
		{Time: 16, Process: "r1", Type: Invoke, Kind: ReaderOpen, Log: "ns/a", Position: &Position{At: AfterDLSN, DLSN: d(1, 1, 0)}},
		{Time: 17, Process: "r1", Type: OK, Kind: ReaderOpen, Log: "ns/a", Session: "r1-2"},
		{Time: 18, Process: "r1", Type: Invoke, Kind: ReaderClose, Session: "r1-2"},
		{Time: 19, Process: "r1", Type: OK, Kind: ReaderClose, Session: "r1-2"},
		{Time: 20, Process: "t1", Type: Invoke, Kind: Truncate, Log: "ns/a", DLSN: d(1, 1, 0)},
		{Time: 21, Process: "t1", Type: OK, Kind: Truncate, Log: "ns/a", DLSN: d(1, 1, 0)},
		{Time: 22, Process: "w3", Type: Invoke, Kind: Append, Log: "ns/a", Value: "w3-0"},
	}
}

func TestRoundTrip(t *testing.T) {
	events := sample()
	var buf bytes.Buffer
	if err := Write(&buf, events); err != nil {
		t.Fatal(err)
	}
	text := buf.String()
	h, err := Load(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.Events, events) {
		t.Fatalf("round trip changed events:\n got %v\nwant %v", h.Events, events)
	}
	if len(h.Ops) != 10 {
		t.Errorf("ops = %d, want 10", len(h.Ops))
	}
	if last := h.Ops[len(h.Ops)-1]; !last.Pending() {
		t.Errorf("last op should be pending: %+v", last)
	}
	// The text form is stable: writing again gives the same bytes.
	var again bytes.Buffer
	if err := Write(&again, h.Events); err != nil {
		t.Fatal(err)
	}
	if again.String() != text {
		t.Errorf("second encoding differs")
	}
	if !strings.Contains(text, `"dlsn":"1:1:1"`) || !strings.Contains(text, `"type":"invoke","kind":"append-bulk"`) {
		t.Errorf("unexpected text form:\n%s", text)
	}
}

func TestValidateRejects(t *testing.T) {
	d := dlog.InitialDLSN
	inv := func(p string, k Kind) Event {
		return Event{Time: 1, Process: p, Type: Invoke, Kind: k, Log: "ns/a", Value: "v"}
	}
	open := []Event{
		{Time: 1, Process: "r", Type: Invoke, Kind: ReaderOpen, Log: "ns/a", Position: &Position{At: AtStart}},
		{Time: 1, Process: "r", Type: OK, Kind: ReaderOpen, Log: "ns/a", Session: "s"},
	}
	withOpen := func(more ...Event) []Event { return append(append([]Event(nil), open...), more...) }
	tests := []struct {
		name   string
		events []Event
		line   int
		msg    string
	}{
		{"zero type", []Event{{Time: 1, Process: "p", Kind: Append}}, 1, "invalid type"},
		{"zero kind", []Event{{Time: 1, Process: "p", Type: Invoke}}, 1, "invalid kind"},
		{"no process", []Event{{Time: 1, Type: Invoke, Kind: Append}}, 1, "missing process"},
		{"time goes back", []Event{{Time: 5, Process: "n", Type: Info, Kind: NemesisStart}, {Time: 4, Process: "n", Type: Info, Kind: NemesisStop}}, 2, "before the previous"},
		{"two ops in flight", []Event{inv("w", Append), inv("w", Append)}, 2, "in flight"},
		{"completion without invoke", []Event{{Time: 1, Process: "w", Type: OK, Kind: Append, DLSN: d}}, 1, "nothing in flight"},
		{"completion of other kind", []Event{inv("w", Append), {Time: 1, Process: "w", Type: OK, Kind: Truncate}}, 2, "in flight"},
		{"completion of other value", []Event{inv("w", Append), {Time: 1, Process: "w", Type: OK, Kind: Append, Value: "x", DLSN: d}}, 2, "differs"},
		{"completion of other log", []Event{inv("w", Append), {Time: 1, Process: "w", Type: OK, Kind: Append, Log: "ns/b", DLSN: d}}, 2, "differs"},
		{"append ok without dlsn", []Event{inv("w", Append), {Time: 1, Process: "w", Type: OK, Kind: Append}}, 2, "dlsn"},
		{"append without value", []Event{{Time: 1, Process: "w", Type: Invoke, Kind: Append, Log: "ns/a"}}, 1, "without a value"},
		{"append without log", []Event{{Time: 1, Process: "w", Type: Invoke, Kind: Append, Value: "v"}}, 1, "without a log"},
		{"bulk count mismatch", []Event{
			{Time: 1, Process: "w", Type: Invoke, Kind: AppendBulk, Log: "ns/a", Records: []Record{{Value: "a"}, {Value: "b"}}},
			{Time: 1, Process: "w", Type: OK, Kind: AppendBulk, Records: []Record{{Value: "a", DLSN: d}}},
		}, 2, "records"},
		{"read outside a session", []Event{{Time: 1, Process: "r", Type: OK, Kind: Read, Session: "s", DLSN: d, Value: "v"}}, 1, "unknown session"},
		{"read by another process", withOpen(Event{Time: 1, Process: "x", Type: OK, Kind: Read, Session: "s", DLSN: d, Value: "v"}), 3, "by process"},
		{"read after session failed", withOpen(
			Event{Time: 1, Process: "r", Type: Info, Kind: Read, Session: "s", Error: "unavailable"},
			Event{Time: 1, Process: "r", Type: OK, Kind: Read, Session: "s", DLSN: d, Value: "v"}), 4, "after it ended"},
		{"read after close", withOpen(
			Event{Time: 1, Process: "r", Type: Invoke, Kind: ReaderClose, Session: "s"},
			Event{Time: 1, Process: "r", Type: OK, Kind: ReaderClose, Session: "s"},
			Event{Time: 1, Process: "r", Type: OK, Kind: Read, Session: "s", DLSN: d, Value: "v"}), 5, "after it ended"},
		{"read as invoke", withOpen(Event{Time: 1, Process: "r", Type: Invoke, Kind: Read, Session: "s"}), 3, "single events"},
		{"read without dlsn", withOpen(Event{Time: 1, Process: "r", Type: OK, Kind: Read, Session: "s", Value: "v"}), 3, "dlsn"},
		{"session reused", withOpen(
			Event{Time: 1, Process: "r", Type: Invoke, Kind: ReaderOpen, Log: "ns/a", Position: &Position{At: AtEnd}},
			Event{Time: 1, Process: "r", Type: OK, Kind: ReaderOpen, Session: "s"}), 4, "reused"},
		{"reader-open without position", []Event{{Time: 1, Process: "r", Type: Invoke, Kind: ReaderOpen, Log: "ns/a"}}, 1, "position"},
		{"bad position", []Event{{Time: 1, Process: "r", Type: Invoke, Kind: ReaderOpen, Log: "ns/a", Position: &Position{At: AtDLSN}}}, 1, "valid dlsn"},
		{"truncate without target", []Event{{Time: 1, Process: "t", Type: Invoke, Kind: Truncate, Log: "ns/a"}}, 1, "dlsn"},
		{"nemesis not info", []Event{{Time: 1, Process: "n", Type: OK, Kind: NemesisStart}}, 1, "type info"},
		{"fence without epoch", []Event{{Time: 1, Process: "o", Type: Info, Kind: FenceObserved}}, 1, "epoch"},
		{"negative seqid", withOpen(Event{Time: 1, Process: "r", Type: OK, Kind: Read, Session: "s", DLSN: d, Value: "v", SeqID: Int64(-1)}), 3, "seqid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Validate(tt.events)
			var le *LineError
			if !errors.As(err, &le) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a LineError wrapping ErrInvalid", err)
			}
			if le.Line != tt.line || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want line %d containing %q", err, tt.line, tt.msg)
			}
		})
	}
}

func TestLoadRejectsText(t *testing.T) {
	tests := []struct {
		name, text string
	}{
		{"not json", "hello\n"},
		{"unknown field", `{"time":1,"process":"n","type":"info","kind":"nemesis-start","bogus":1}` + "\n"},
		{"unknown type", `{"time":1,"process":"n","type":"maybe","kind":"nemesis-start"}` + "\n"},
		{"unknown kind", `{"time":1,"process":"n","type":"info","kind":"dance"}` + "\n"},
		{"bad dlsn", `{"time":1,"process":"w","type":"invoke","kind":"truncate","log":"a","dlsn":"0:0:0"}` + "\n"},
		{"trailing data", `{"time":1,"process":"n","type":"info","kind":"nemesis-start"} {}` + "\n"},
		{"blank line", `{"time":1,"process":"n","type":"info","kind":"nemesis-start"}` + "\n\n"},
		{"null", "null\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Load(strings.NewReader(tt.text)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}
