package checker

import (
	"bytes"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/history"
)

// largeConfig makes a history of roughly a million events.
func largeConfig() genConfig {
	return genConfig{seed: 42, logs: 4, writers: 4, readers: 3, steps: 1_100_000, failovers: 20, truncation: true, closeWriters: true}
}

// TestLargeHistory: a history of ~10^6 events loads and checks in
// seconds (porcupine excluded: it is bounded separately).
func TestLargeHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("large history: skipped with -short")
	}
	events, drains := generate(largeConfig())
	var buf bytes.Buffer
	if err := history.Write(&buf, events); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h, err := history.Load(&buf)
	if err != nil {
		t.Fatal(err)
	}
	loaded := time.Since(start)
	start = time.Now()
	rep := Check(h, drains, Options{PorcupineTimeout: -1})
	checked := time.Since(start)
	t.Logf("%d events (%d MB): load %v, check %v", len(events), buf.Cap()>>20, loaded, checked)
	if !rep.Valid {
		t.Fatalf("violations %v", rep.Failed())
	}
	// With porcupine (its default bounds) on the append order and the
	// ownership register: still bounded, still clean.
	start = time.Now()
	rep = Check(h, drains, Options{})
	t.Logf("with porcupine: check %v (%s)", time.Since(start), linNote(rep.Linearizability))
	if !rep.Valid {
		t.Fatalf("violations with porcupine %v", rep.Failed())
	}
}

func BenchmarkCheck(b *testing.B) {
	cfg := largeConfig()
	cfg.steps = 100_000
	events, drains := generate(cfg)
	h, err := history.Validate(events)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(events)), "events/op")
	for b.Loop() {
		Check(h, drains, Options{PorcupineTimeout: -1})
	}
}

func BenchmarkLoad(b *testing.B) {
	cfg := largeConfig()
	cfg.steps = 100_000
	events, _ := generate(cfg)
	var buf bytes.Buffer
	if err := history.Write(&buf, events); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportMetric(float64(len(events)), "events/op")
	for b.Loop() {
		if _, err := history.Load(bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
