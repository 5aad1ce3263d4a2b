package journal

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the journal's Prometheus collectors. They are always
// created (updating them is cheap) and registered only when the Config has
// a Registerer.
type metrics struct {
	reg          prometheus.Registerer
	syncSeconds  prometheus.Histogram
	groupRecords prometheus.Histogram
	records      prometheus.Counter
	bytes        prometheus.Counter
	failed       prometheus.Gauge
	queueBytes   prometheus.GaugeFunc
	queueRecords prometheus.GaugeFunc
}

// queue reports the records and framed bytes waiting for the next group
// commit, read at scrape time.
func newMetrics(reg prometheus.Registerer, queue func() (records, bytes int)) (*metrics, error) {
	m := &metrics{
		queueBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dlog_journal_queue_bytes",
			Help: "Framed record bytes queued for the next group commit (bounded by MaxQueueBytes).",
		}, func() float64 { _, b := queue(); return float64(b) }),
		queueRecords: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dlog_journal_queue_records",
			Help: "Records queued for the next group commit.",
		}, func() float64 { n, _ := queue(); return float64(n) }),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dlog_journal_fdatasync_seconds",
			Help:    "Duration of journal fdatasync calls.",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 18), // 25 µs .. ~3.3 s
		}),
		groupRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dlog_journal_group_records",
			Help:    "Records per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 .. 8192
		}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_journal_records_total",
			Help: "Records made durable.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_journal_bytes_total",
			Help: "Framed record bytes made durable.",
		}),
		failed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dlog_journal_failed",
			Help: "1 once the journal has failed (a write or sync error); it then acknowledges nothing.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var done []prometheus.Collector
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return nil, fmt.Errorf("journal: register metrics: %w", err)
		}
		done = append(done, c)
	}
	m.reg = reg
	return m, nil
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.syncSeconds, m.groupRecords, m.records, m.bytes, m.failed, m.queueBytes, m.queueRecords}
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors() {
		m.reg.Unregister(c)
	}
}
