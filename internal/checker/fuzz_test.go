package checker

import (
	"bytes"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/history"
)

// FuzzCheck: whatever history and drain files load, checking them never
// panics and the report is self-consistent.
func FuzzCheck(f *testing.F) {
	for _, seed := range []uint64{1, 2} {
		events, drains := generate(genConfig{seed: seed, logs: 1, writers: 2, readers: 1, steps: 60, failovers: 1, truncation: true, closeWriters: seed == 1})
		var hb, db bytes.Buffer
		if err := history.Write(&hb, events); err != nil {
			f.Fatal(err)
		}
		w := history.NewDrainWriter(&db)
		for _, name := range sortedLogs(drains) {
			if err := w.WriteDrain(drains[name]); err != nil {
				f.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			f.Fatal(err)
		}
		f.Add(hb.Bytes(), db.Bytes())
		f.Add(hb.Bytes(), []byte{})
	}
	f.Fuzz(func(t *testing.T, hist, drain []byte) {
		h, err := history.Load(bytes.NewReader(hist))
		if err != nil {
			return
		}
		var drains history.Drains
		if len(drain) > 0 {
			if drains, err = history.LoadDrains(bytes.NewReader(drain)); err != nil {
				return
			}
		}
		rep := Check(h, drains, Options{PorcupineTimeout: time.Second, PorcupineMaxOps: 64})
		failed := false
		for _, p := range rep.Properties {
			if p.Count < len(p.Examples) {
				t.Fatalf("%s: %d examples for count %d", p.Name, len(p.Examples), p.Count)
			}
			failed = failed || p.Failed()
		}
		if rep.Valid == failed {
			t.Fatalf("Valid = %v but failed = %v", rep.Valid, failed)
		}
	})
}
