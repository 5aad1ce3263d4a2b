package bookie

import (
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// metrics are the bookie's own Prometheus collectors (the journal and the
// ledger store register theirs: fsync latency and group size come from
// dlog_journal_fdatasync_seconds and dlog_journal_group_records).
type metrics struct {
	reg         prometheus.Registerer
	addSeconds  prometheus.Histogram
	readSeconds prometheus.Histogram
	requests    *prometheus.CounterVec
	inFlight    prometheus.GaugeFunc
	longPolls   prometheus.Gauge
	readOnly    prometheus.Gauge
	limbo       prometheus.GaugeFunc
	flushErrors prometheus.Counter

	// counted caches requests' children: WithLabelValues hashes its labels
	// on every call, and every request is counted. A child is created on
	// its first use, so only label pairs that happened are exported.
	counted [opCount][statusCount]atomic.Pointer[counter]
}

// statusCount bounds the statuses counted through the cache.
const statusCount = int(bookiepb.Status_STATUS_WRONG_BOOKIE) + 1

type counter struct{ prometheus.Counter }

// count counts one answered request.
func (m *metrics) count(o op, status bookiepb.Status) {
	if int(status) < 0 || int(status) >= statusCount || o >= opCount {
		m.requests.WithLabelValues(o.String(), status.String()).Inc()
		return
	}
	slot := &m.counted[o][status]
	c := slot.Load()
	if c == nil {
		// Racing creators get the same child from the vector.
		c = &counter{m.requests.WithLabelValues(o.String(), status.String())}
		slot.Store(c)
	}
	c.Inc()
}

// newMetrics makes the collectors; inFlight and limbo are read at every
// scrape.
func newMetrics(inFlight, limbo func() float64) *metrics {
	buckets := prometheus.ExponentialBuckets(50e-6, 2, 17) // 50 µs .. ~3.3 s
	return &metrics{
		addSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dlog_bookie_add_seconds", Help: "Time from receiving an add to answering it.", Buckets: buckets}),
		readSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dlog_bookie_read_seconds", Help: "Time from receiving a read to answering it (fencing included).", Buckets: buckets}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dlog_bookie_requests_total", Help: "Requests answered, by operation and status."}, []string{"op", "status"}),
		inFlight: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dlog_bookie_requests_in_flight", Help: "Requests received and not yet answered."}, inFlight),
		longPolls: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dlog_bookie_long_poll_waiters", Help: "ReadLAC long polls being held."}),
		readOnly: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dlog_bookie_read_only", Help: "1 while the bookie refuses adds (disk near full, or journal or store failed)."}),
		limbo: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dlog_bookie_limbo", Help: "1 while the bookie is in limbo (a journal cut may have lost acknowledged entries; see Dir/LIMBO)."}, limbo),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_bookie_checkpoint_errors_total", Help: "Checkpoints (ledger store flushes) that failed."}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.addSeconds, m.readSeconds, m.requests, m.inFlight, m.longPolls, m.readOnly, m.limbo, m.flushErrors}
}

// register adds every collector to reg (nil: none), all or nothing.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	cs := m.collectors()
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, d := range cs[:i] {
				reg.Unregister(d)
			}
			return fmt.Errorf("bookie: register metrics: %w", err)
		}
	}
	m.reg = reg
	return nil
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors() {
		m.reg.Unregister(c)
	}
}
