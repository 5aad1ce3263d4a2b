package checker

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
)

func writeFiles(t *testing.T, events []history.Event, drains history.Drains) (string, string) {
	t.Helper()
	dir := t.TempDir()
	hp, dp := filepath.Join(dir, "history.jsonl"), filepath.Join(dir, "drain.jsonl")
	var hb bytes.Buffer
	if err := history.Write(&hb, events); err != nil {
		t.Fatal(err)
	}
	var db bytes.Buffer
	w := history.NewDrainWriter(&db)
	for _, name := range sortedLogs(drains) {
		if err := w.WriteDrain(drains[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hp, hb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dp, db.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return hp, dp
}

func sortedLogs(ds history.Drains) []string {
	var out []string
	for k := range ds {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestCheckFilesMatchesCheck: going through the files gives the same
// report as checking in memory, for clean and mutated histories.
func TestCheckFilesMatchesCheck(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *subject) bool
	}{
		{"clean", func(*subject) bool { return true }},
		{"reader skip", mutationNamed("a reader skips a record").apply},
		{"swapped order", swapOrdered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := uint64(0); seed < 50; seed++ {
				s := newSubject(seed)
				if !tt.mutate(s) {
					continue
				}
				h, err := history.Validate(s.events)
				if err != nil {
					t.Fatal(err)
				}
				opts := Options{PorcupineTimeout: -1}
				want := Check(h, s.drains, opts)
				hp, dp := writeFiles(t, s.events, s.drains)
				got, err := CheckFiles(hp, dp, opts)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d: CheckFiles and Check differ:\n%s\n%s", seed, table(got), table(want))
				}
				return
			}
			t.Fatal("no applicable seed")
		})
	}
}

func TestCheckFilesErrors(t *testing.T) {
	dir := t.TempDir()
	good, _ := writeFiles(t, nil, history.Drains{})
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		history, dran string
		want          error
	}{
		{"missing history", filepath.Join(dir, "none"), "", os.ErrNotExist},
		{"malformed history", bad, "", history.ErrInvalid},
		{"missing drain", good, filepath.Join(dir, "none"), os.ErrNotExist},
		{"malformed drain", good, bad, history.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := CheckFiles(tt.history, tt.dran, Options{}); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := CheckFiles(good, "", Options{PorcupineMaxOps: -1}); err == nil {
		t.Fatal("invalid options accepted")
	}
}

// TestRecorderToChecker drives the real recording API the way dlog verify
// will and checks the files it produced.
func TestRecorderToChecker(t *testing.T) {
	dir := t.TempDir()
	hf, err := os.Create(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var clock int64
	rec := history.NewRecorder(hf, history.RecorderConfig{Clock: func() int64 { clock += 100; return clock }})
	open := rec.Invoke(history.Event{Process: "o1", Kind: history.WriterOpen, Log: lg})
	_ = open.OK(history.Event{Epoch: "e1", Owner: "127.0.0.1:7000"})
	var dlsns []dlog.DLSN
	for i, v := range []string{"w1-0", "w1-1", "w1-2"} {
		op := rec.InvokeAppend("w1", lg, v, int64(i))
		at := d(1, int64(i), 0)
		_ = op.Done(history.Event{DLSN: at, Epoch: "e1"}, nil)
		dlsns = append(dlsns, at)
	}
	failed := rec.InvokeAppend("w1", lg, "w1-3", 3)
	_ = failed.Error(dlog.ErrRecordTooLarge)
	lost := rec.InvokeAppend("w1", lg, "w1-4", 4)
	lost.SetEpoch("e1", "127.0.0.1:7000")
	_ = lost.Error(dlog.ErrFenced)
	_ = rec.NemesisStart("kill proxy")
	_ = rec.NemesisStop("kill proxy")
	ro := rec.InvokeReaderOpen("r1", lg, history.Position{At: history.AtStart})
	_ = ro.OK(history.Event{Session: "r1-1"})
	for i, at := range dlsns {
		_ = rec.Deliver("r1", "r1-1", lg, dlog.ReadRecord{DLSN: at, TxID: int64(i), SequenceID: int64(i)}, []string{"w1-0", "w1-1", "w1-2"}[i])
	}
	_ = rec.ReadError("r1", "r1-1", lg, dlog.ErrUnavailable)
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := hf.Close(); err != nil {
		t.Fatal(err)
	}
	df, err := os.Create(filepath.Join(dir, "drain.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	dw := history.NewDrainWriter(df)
	_ = dw.Begin(lg, clock+1, dlog.DLSN{}, []history.Segment{{LSSN: 1, State: history.Completed, LastEntryID: 2, StartSeqID: history.Int64(0), Epoch: "e1"}})
	for i, at := range dlsns {
		_ = dw.Add(history.DrainRecord{DLSN: at, Value: []string{"w1-0", "w1-1", "w1-2"}[i], TxID: int64(i), SeqID: int64(i)})
	}
	_ = dw.End(nil)
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := df.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := CheckFiles(filepath.Join(dir, "history.jsonl"), filepath.Join(dir, "drain.jsonl"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Valid {
		t.Fatalf("violations %v\n%s", rep.Failed(), table(rep))
	}
	tot := rep.Stats.Total
	if tot.AppendsOK != 3 || tot.AppendsFail != 1 || tot.AppendsInfo != 1 || tot.ResolvedAbsent != 1 || tot.Reads != 3 || tot.ReaderSessions != 1 {
		t.Fatalf("stats %+v", tot)
	}
	if rep.Stats.LastHeal == nil || tot.FirstOKAfterHeal != nil {
		t.Fatalf("liveness: last heal %v, first ok after heal %v", rep.Stats.LastHeal, tot.FirstOKAfterHeal)
	}
}

func TestReportJSONAndTable(t *testing.T) {
	s := newSubject(0)
	if !swapOrdered(s) {
		t.Fatal("mutation not applicable")
	}
	h, err := history.Validate(s.events)
	if err != nil {
		t.Fatal(err)
	}
	viz := filepath.Join(t.TempDir(), "porcupine.html")
	rep := Check(h, s.drains, Options{VisualizationPath: viz, MaxExamples: 2})
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rep) {
		t.Fatalf("report JSON round trip differs")
	}
	if rep.Linearizability.Visualization != viz {
		t.Fatalf("visualization not written: %+v", rep.Linearizability)
	}
	if html, err := os.ReadFile(viz); err != nil || !bytes.Contains(html, []byte("<html")) {
		t.Fatalf("visualization file: %v, %d bytes", err, len(html))
	}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FAIL", "append-order", "G3/P5", "illegal", "visualization of"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	for _, p := range rep.Properties {
		if len(p.Examples) > 2 {
			t.Errorf("%s kept %d examples", p.Name, len(p.Examples))
		}
	}
}

func TestPorcupineBounds(t *testing.T) {
	events, drains := generate(genConfig{seed: 3, logs: 1, writers: 3, readers: 1, steps: 600})
	h, err := history.Validate(events)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    Options
		verdict string
	}{
		{"default", Options{}, VerdictOK},
		{"partitions too large are skipped", Options{PorcupineMaxOps: 1}, VerdictSkipped},
		{"no time left is unknown", Options{PorcupineTimeout: time.Nanosecond}, VerdictUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := Check(h, drains, tt.opts)
			if !rep.Valid {
				t.Fatalf("unbounded porcupine must not fail the run: %v", rep.Failed())
			}
			if got := rep.Linearizability.Logs[0].Verdict; got != tt.verdict {
				t.Fatalf("verdict %s, want %s (%+v)", got, tt.verdict, rep.Linearizability.Logs[0])
			}
		})
	}
	rep := Check(h, drains, Options{PorcupineTimeout: -1})
	if rep.Linearizability.Enabled || rep.Property(PropAppendLinearizable).Note != "porcupine disabled" {
		t.Fatalf("disabled porcupine: %+v", rep.Linearizability)
	}
}

// TestPartitionsCutAtQuiescentPoints: every operation of a partition is
// invoked after every operation of earlier partitions completed, and
// floors are the maxima of earlier partitions.
func TestPartitionsCutAtQuiescentPoints(t *testing.T) {
	for seed := range uint64(30) {
		events, _ := generate(defaultGenConfig(seed))
		h, err := history.Validate(events)
		if err != nil {
			t.Fatal(err)
		}
		m := build(h, nil, DefaultOptions())
		for _, name := range m.order {
			var acked []*attempt
			for _, a := range m.logs[name].attempts {
				if a.status == stOK {
					acked = append(acked, a)
				}
			}
			parts := partitions(acked, map[string]int{})
			var maxRet int64 = -1 << 62
			var maxD dlog.DLSN
			n := 0
			for _, p := range parts {
				for _, op := range p {
					if op.Call <= maxRet {
						t.Fatalf("seed %d: operation called at %d before an earlier partition returned (%d)", seed, op.Call, maxRet)
					}
					if f := op.Input.(appendInput).floor; f != maxD {
						t.Fatalf("seed %d: floor %s, want %s", seed, f, maxD)
					}
				}
				for _, op := range p {
					maxRet = max(maxRet, op.Return)
					maxD = maxDLSN(maxD, op.Output.(dlog.DLSN))
				}
				n += len(p)
			}
			if n != len(acked) {
				t.Fatalf("seed %d: partitions hold %d of %d ops", seed, n, len(acked))
			}
		}
	}
}

func mutationNamed(name string) mutation {
	for _, m := range mutations {
		if m.name == name {
			return m
		}
	}
	panic("no mutation " + name)
}
