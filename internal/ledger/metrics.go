package ledger

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the client's Prometheus collectors.
type metrics struct {
	addLatency       prometheus.Histogram
	adds             *prometheus.CounterVec // result: ok, error
	ensembleChanges  *prometheus.CounterVec // result: ok, failed
	fencedWriters    prometheus.Counter
	explicitLACs     prometheus.Counter
	recoveries       *prometheus.CounterVec // result: closed, already-closed, failed
	recoveryDuration prometheus.Histogram
	readLatency      prometheus.Histogram
	speculativeReads prometheus.Counter
	readErrors       *prometheus.CounterVec // kind: unavailable, inconsistent
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		addLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dlog_ledger_add_latency_seconds",
			Help:    "Time from AddAsync to the entry's acknowledgement (ack quorum reached and all earlier entries acknowledged).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
		adds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dlog_ledger_adds_total",
			Help: "Entries completed by ledger writers, by result.",
		}, []string{"result"}),
		ensembleChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dlog_ledger_ensemble_changes_total",
			Help: "Ensemble changes attempted by ledger writers, by result.",
		}, []string{"result"}),
		fencedWriters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_ledger_fenced_writers_total",
			Help: "Ledger writers that learned they were fenced.",
		}),
		explicitLACs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_ledger_explicit_lac_total",
			Help: "Explicit LAC rounds sent by idle writers.",
		}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dlog_ledger_recoveries_total",
			Help: "Ledger recoveries, by result.",
		}, []string{"result"}),
		recoveryDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dlog_ledger_recovery_duration_seconds",
			Help:    "Duration of ledger recoveries that closed a ledger.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		readLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "dlog_ledger_read_latency_seconds",
			Help:    "Latency of successful entry reads from bookies.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
		speculativeReads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_ledger_speculative_reads_total",
			Help: "Reads sent to a further bookie because the earlier ones were slow.",
		}),
		readErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dlog_ledger_read_errors_total",
			Help: "Entry reads that failed, by kind.",
		}, []string{"kind"}),
	}
	if reg != nil {
		m.addLatency = register(reg, m.addLatency)
		m.adds = register(reg, m.adds)
		m.ensembleChanges = register(reg, m.ensembleChanges)
		m.fencedWriters = register(reg, m.fencedWriters)
		m.explicitLACs = register(reg, m.explicitLACs)
		m.recoveries = register(reg, m.recoveries)
		m.recoveryDuration = register(reg, m.recoveryDuration)
		m.readLatency = register(reg, m.readLatency)
		m.speculativeReads = register(reg, m.speculativeReads)
		m.readErrors = register(reg, m.readErrors)
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same name (clients sharing a registry share collectors).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A conflicting registration (same name, other shape) is a
		// programming error in the embedding process; keep the metric
		// private rather than failing the client.
	}
	return c
}
