package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dlog-io/dlog"
)

func TestErrorClass(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		class string
		typ   Type
	}{
		{"nil", nil, "", OK},
		{"fenced", fmt.Errorf("write: %w", dlog.ErrFenced), ClassFenced, Info},
		{"unavailable", dlog.ErrUnavailable, ClassUnavailable, Info},
		{"corrupt", dlog.ErrCorrupt, ClassCorrupt, Info},
		{"deadline", fmt.Errorf("rpc: %w", context.DeadlineExceeded), ClassDeadline, Info},
		{"canceled", context.Canceled, ClassCanceled, Info},
		{"unknown error is indeterminate", errors.New("boom"), ClassUnknown, Info},
		{"wrapped definite made indeterminate", dlog.Indeterminate(dlog.ErrLogNotFound), ClassIndeterminate, Info},
		{"over capacity", fmt.Errorf("x: %w", dlog.ErrOverCapacity), "over-capacity", Fail},
		{"too large", dlog.ErrRecordTooLarge, "record-too-large", Fail},
		{"owned", &dlog.OwnedError{Log: "a", OwnerID: "p2"}, ClassOwned, Fail},
		{"log not found", dlog.ErrLogNotFound, "log-not-found", Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ErrorClass(tt.err); got != tt.class {
				t.Errorf("ErrorClass = %q, want %q", got, tt.class)
			}
			if got := TypeOf(tt.err); got != tt.typ {
				t.Errorf("TypeOf = %s, want %s", got, tt.typ)
			}
		})
	}
}

func fakeClock() func() int64 {
	var mu sync.Mutex
	var t int64
	return func() int64 {
		mu.Lock()
		defer mu.Unlock()
		t += 10
		return t
	}
}

// TestRecorderConcurrent records from many goroutines at once; the output
// must load and validate, with every operation paired.
func TestRecorderConcurrent(t *testing.T) {
	var buf bytes.Buffer
	rec := NewRecorder(&buf, RecorderConfig{Clock: fakeClock()})
	const writers, perWriter = 8, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			p := fmt.Sprintf("w%d", w)
			for i := range perWriter {
				op := rec.InvokeAppend(p, "ns/a", fmt.Sprintf("%s-%d", p, i), int64(i))
				var err error
				switch i % 3 {
				case 0:
					err = op.OK(Event{DLSN: dlog.DLSN{LSSN: 1, EntryID: int64(w), SlotID: int64(i)}, Epoch: "e1"})
				case 1:
					err = op.Error(dlog.ErrOverCapacity)
				default:
					err = op.Error(dlog.ErrUnavailable)
				}
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(func() {
		op := rec.InvokeReaderOpen("r1", "ns/a", Position{At: AtStart})
		if err := op.OK(Event{Session: "s1"}); err != nil {
			t.Error(err)
		}
		for i := range 20 {
			rr := dlog.ReadRecord{DLSN: dlog.DLSN{LSSN: 1, EntryID: int64(i)}, TxID: int64(i), SequenceID: int64(i)}
			if err := rec.Deliver("r1", "s1", "ns/a", rr, fmt.Sprintf("v%d", i)); err != nil {
				t.Error(err)
			}
		}
		if err := rec.ReadError("r1", "s1", "ns/a", dlog.ErrUnavailable); err != nil {
			t.Error(err)
		}
	})
	wg.Go(func() {
		_ = rec.NemesisStart("kill bookie-1")
		_ = rec.NemesisStop("kill bookie-1")
	})
	wg.Wait()
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(h.Ops), writers*perWriter+1; got != want {
		t.Fatalf("ops = %d, want %d", got, want)
	}
	var ok, fail, info int
	for _, op := range h.Ops {
		if op.Pending() {
			t.Fatalf("op %+v pending", op)
		}
		c := h.Events[op.Complete]
		if c.Kind != Append {
			continue
		}
		switch c.Type {
		case OK:
			ok++
		case Fail:
			fail++
			if c.Error != "over-capacity" {
				t.Errorf("fail class %q", c.Error)
			}
		case Info:
			info++
		}
		if c.Value == "" || c.Log != "ns/a" {
			t.Errorf("completion lacks invoke fields: %v", c)
		}
	}
	if ok != 136 || fail != 136 || info != 128 {
		t.Errorf("ok/fail/info = %d/%d/%d", ok, fail, info)
	}
}

func TestRecorderHandleMisuse(t *testing.T) {
	tests := []struct {
		name string
		run  func(r *Recorder) error
		want error
	}{
		{"completed twice", func(r *Recorder) error {
			op := r.InvokeAppend("w1", "ns/a", "v", 1)
			_ = op.OK(Event{DLSN: dlog.InitialDLSN})
			_ = op.Info(dlog.ErrUnavailable)
			return r.Close()
		}, ErrCompletedTwice},
		{"after close", func(r *Recorder) error {
			_ = r.Close()
			return r.NemesisStart("x")
		}, ErrRecorderClosed},
		{"write error is sticky", func(r *Recorder) error {
			for i := range 10000 { // overflow the buffer
				_ = r.NemesisStart(fmt.Sprint(i))
			}
			return r.Close()
		}, errBrokenWriter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w interface{ Write([]byte) (int, error) } = &bytes.Buffer{}
			if tt.want == errBrokenWriter {
				w = brokenWriter{}
			}
			r := NewRecorder(w, RecorderConfig{})
			if err := tt.run(r); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

var errBrokenWriter = errors.New("broken writer")

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errBrokenWriter }

func TestRecorderClockNeverGoesBack(t *testing.T) {
	times := []int64{50, 40, 60, 10}
	i := 0
	var buf bytes.Buffer
	r := NewRecorder(&buf, RecorderConfig{Clock: func() int64 { i++; return times[i-1] }})
	for range times {
		_ = r.NemesisStart("x")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{50, 50, 60, 60}
	for j, e := range h.Events {
		if e.Time != want[j] {
			t.Errorf("event %d time %d, want %d", j, e.Time, want[j])
		}
	}
}

func TestOKBulkAndTruncate(t *testing.T) {
	var buf bytes.Buffer
	r := NewRecorder(&buf, RecorderConfig{Clock: fakeClock()})
	op := r.Invoke(Event{Process: "w1", Kind: AppendBulk, Log: "ns/a", Records: []Record{{Value: "a", TxID: 1}, {Value: "b", TxID: 2}}})
	_ = op.OKBulk([]dlog.DLSN{{LSSN: 1}, {LSSN: 1, SlotID: 1}}, Event{Epoch: "e1"})
	tr := r.InvokeTruncate("t1", "ns/a", dlog.DLSN{LSSN: 1, SlotID: 1})
	_ = tr.OK(Event{})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	bulk := h.Events[h.Ops[0].Complete]
	if len(bulk.Records) != 2 || bulk.Records[1].DLSN.SlotID != 1 || bulk.Records[1].Value != "b" {
		t.Errorf("bulk completion %v", bulk)
	}
	if trunc := h.Events[h.Ops[1].Complete]; trunc.DLSN != (dlog.DLSN{LSSN: 1, SlotID: 1}) {
		t.Errorf("truncate completion %v", trunc)
	}
}
