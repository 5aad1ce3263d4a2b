package history

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dlog-io/dlog"
)

func sampleDrains() []*Drain {
	return []*Drain{
		{
			Log: "ns/a", Time: 99, Truncation: dlog.DLSN{LSSN: 2},
			Segments: []Segment{
				{LSSN: 1, State: Completed, LastEntryID: 4, StartSeqID: Int64(0), Epoch: "e1"},
				{LSSN: 2, State: Completed, LastEntryID: -1, Epoch: "e2"},
				{LSSN: 3, State: InProgress},
			},
			Records: []DrainRecord{
				{DLSN: dlog.DLSN{LSSN: 3}, Value: "w1-9", TxID: 0, SeqID: 0},
				{DLSN: dlog.DLSN{LSSN: 3, EntryID: 1}, Value: "w1-10", TxID: 5, SeqID: 6},
			},
		},
		{Log: "ns/b"},
		{Log: "ns/c", Error: "dlog: corrupt data"},
	}
}

func TestDrainRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewDrainWriter(&buf)
	for _, d := range sampleDrains() {
		if err := w.WriteDrain(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := LoadDrains(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range sampleDrains() {
		if !reflect.DeepEqual(got[want.Log], want) {
			t.Errorf("drain %s:\n got %+v\nwant %+v", want.Log, got[want.Log], want)
		}
	}
	if len(got) != 3 {
		t.Errorf("got %d drains", len(got))
	}
}

func TestDrainWriterMisuse(t *testing.T) {
	w := NewDrainWriter(&bytes.Buffer{})
	if err := w.Add(DrainRecord{}); err == nil {
		t.Error("Add without Begin succeeded")
	}
	if err := w.End(nil); err == nil {
		t.Error("End without Begin succeeded")
	}
	_ = w.Begin("ns/a", 0, dlog.DLSN{}, nil)
	if err := w.Begin("ns/b", 0, dlog.DLSN{}, nil); err == nil {
		t.Error("nested Begin succeeded")
	}
	if err := w.Close(); err == nil {
		t.Error("Close with an open drain succeeded")
	}
}

func TestLoadDrainsRejects(t *testing.T) {
	begin := `{"drain":"begin","log":"a"}` + "\n"
	rec := `{"log":"a","dlsn":"1:0:0","value":"v"}` + "\n"
	end := func(n string) string { return `{"drain":"end","log":"a","count":` + n + "}\n" }
	tests := []struct{ name, text string }{
		{"record before begin", rec},
		{"missing end", begin + rec},
		{"count mismatch", begin + rec + end("2")},
		{"end without count", begin + `{"drain":"end","log":"a"}` + "\n"},
		{"second drain", begin + end("0") + begin + end("0")},
		{"nested begin", begin + `{"drain":"begin","log":"b"}` + "\n"},
		{"record of other log", begin + `{"log":"b","dlsn":"1:0:0","value":"v"}` + "\n" + end("1")},
		{"record without value", begin + `{"log":"a","dlsn":"1:0:0"}` + "\n" + end("1")},
		{"record without dlsn", begin + `{"log":"a","value":"v"}` + "\n" + end("1")},
		{"bad mark", `{"drain":"middle","log":"a"}` + "\n"},
		{"no log", `{"drain":"begin"}` + "\n"},
		{"segment twice", `{"drain":"begin","log":"a","segments":[{"lssn":1,"state":"completed","last_entry":1},{"lssn":1,"state":"completed","last_entry":1}]}` + "\n"},
		{"segment without state", `{"drain":"begin","log":"a","segments":[{"lssn":1,"last_entry":1}]}` + "\n"},
		{"unknown field", `{"drain":"begin","log":"a","x":1}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := LoadDrains(strings.NewReader(tt.text)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}
