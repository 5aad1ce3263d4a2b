package namespace

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dlog-io/dlog"
)

// TestMetrics: the namespace registers its collectors and counts writes,
// reads and rolls per log.
func TestMetrics(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	reg := prometheus.NewRegistry()
	n := openNS(t, c, func(cfg *Config) {
		cfg.Registerer = reg
		cfg.SegmentRollBytes = 1 << 10
	})
	ctx := deadline(t, time.Minute)
	createLog(t, n, "m")
	w, err := n.OpenWriter(ctx, "m", WriterOptions{})
	must(t, err, "open writer")
	for i := range 50 {
		_, err := w.Write(ctx, dlog.Record{TxID: int64(i), Payload: payload(uint64(i), 100)})
		must(t, err, "write")
	}
	must(t, w.Close(ctx), "close")
	r, err := n.OpenReader(ctx, "m", AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	readN(t, ctx, r, 50)
	r.Close()
	if got := value(t, n.metrics.recordsWritten.WithLabelValues("m")); got != 50 {
		t.Fatalf("records written %v", got)
	}
	if got := value(t, n.metrics.recordsRead.WithLabelValues("m")); got != 50 {
		t.Fatalf("records read %v", got)
	}
	if got := value(t, n.metrics.bytesWritten.WithLabelValues("m")); got != 5000 {
		t.Fatalf("bytes written %v", got)
	}
	if got := value(t, n.metrics.rolls); got < 2 {
		t.Fatalf("rolls %v", got)
	}
	families, err := reg.Gather()
	must(t, err, "gather")
	names := map[string]bool{}
	for _, f := range families {
		names[f.GetName()] = true
	}
	for _, want := range []string{"dlog_log_write_latency_seconds", "dlog_log_records_written_total", "dlog_log_segment_rolls_total", "dlog_log_reader_lag_entries", "dlog_ledger_add_latency_seconds"} {
		if !names[want] {
			t.Errorf("metric %s not registered", want)
		}
	}
}

// value reads a counter or gauge.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	must(t, m.Write(&out), "read metric")
	switch {
	case out.Counter != nil:
		return out.Counter.GetValue()
	case out.Gauge != nil:
		return out.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither a counter nor a gauge", m.Desc())
	return 0
}
