package namespace

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the namespace's Prometheus collectors. Per-log series carry
// a "log" label (one series per log and namespace instance: fine for
// hundreds of logs, too many for millions).
type metrics struct {
	writeLatency   prometheus.Histogram
	recordsWritten *prometheus.CounterVec
	bytesWritten   *prometheus.CounterVec
	writeErrors    *prometheus.CounterVec
	recordsRead    *prometheus.CounterVec
	bytesRead      *prometheus.CounterVec
	readerLag      *prometheus.GaugeVec
	rolls          prometheus.Counter
	recoveries     *prometheus.CounterVec
	heals          *prometheus.CounterVec
	gcSegments     prometheus.Counter
	entryRecords   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		writeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dlog", Subsystem: "log", Name: "write_latency_seconds",
			Help:    "Time from a write being accepted to its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
		recordsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "log", Name: "records_written_total", Help: "Records acknowledged.",
		}, []string{"log"}),
		bytesWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "log", Name: "bytes_written_total", Help: "Payload bytes acknowledged.",
		}, []string{"log"}),
		writeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "log", Name: "write_errors_total", Help: "Writes that failed, by class.",
		}, []string{"class"}),
		recordsRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "log", Name: "records_read_total", Help: "Records delivered to readers.",
		}, []string{"log"}),
		bytesRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "log", Name: "bytes_read_total", Help: "Payload bytes delivered to readers.",
		}, []string{"log"}),
		readerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "dlog", Subsystem: "log", Name: "reader_lag_entries",
			Help: "Entries between the last one a reader read and the LAC it knows, per log (the latest reader to report).",
		}, []string{"log"}),
		rolls: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "log", Name: "segment_rolls_total", Help: "Segments rolled by writers.",
		}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "log", Name: "segment_recoveries_total",
			Help: "In-progress segments recovered by opening writers, by outcome (completed, deleted-empty).",
		}, []string{"outcome"}),
		heals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "log", Name: "writer_heals_total",
			Help: "Writers that recovered their own broken segment, by outcome (ok, fenced).",
		}, []string{"outcome"}),
		gcSegments: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "log", Name: "gc_segments_deleted_total", Help: "Segments deleted by retention and truncation.",
		}),
		entryRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dlog", Subsystem: "log", Name: "entry_records",
			Help: "Records per entry sent by writers.", Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}),
	}
	if reg != nil {
		m.writeLatency = register(reg, m.writeLatency)
		m.recordsWritten = register(reg, m.recordsWritten)
		m.bytesWritten = register(reg, m.bytesWritten)
		m.writeErrors = register(reg, m.writeErrors)
		m.recordsRead = register(reg, m.recordsRead)
		m.bytesRead = register(reg, m.bytesRead)
		m.readerLag = register(reg, m.readerLag)
		m.rolls = register(reg, m.rolls)
		m.recoveries = register(reg, m.recoveries)
		m.heals = register(reg, m.heals)
		m.gcSegments = register(reg, m.gcSegments)
		m.entryRecords = register(reg, m.entryRecords)
	}
	return m
}

// register registers c, or returns the collector already registered
// under the same description (namespaces sharing a registerer share it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
