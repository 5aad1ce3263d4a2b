package proxy

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus collectors. Per-log series carry a
// "log" label "<namespace>/<log>": fine for thousands of logs per proxy.
type metrics struct {
	rpcs          *prometheus.CounterVec   // method, code
	rpcLatency    *prometheus.HistogramVec // method
	writeRecords  *prometheus.CounterVec   // log
	writeBytes    *prometheus.CounterVec   // log (bytes in)
	writeLatency  prometheus.Histogram     // accepted → acknowledged, per record batch
	pendingWrites prometheus.Gauge
	rejected      *prometheus.CounterVec // reason
	dedup         *prometheus.CounterVec // result: duplicate, too-old
	ownership     *prometheus.CounterVec // event: acquired, released, failed, lost, probation
	ownedLogs     prometheus.Gauge
	redirects     prometheus.Counter
	readRecords   *prometheus.CounterVec // log, source: cache, bookies
	readBytes     *prometheus.CounterVec // log (bytes out)
	bookieRecords *prometheus.CounterVec // log: records pulled from namespace readers
	bookieEntries *prometheus.CounterVec // log: distinct entries among them
	readers       prometheus.Gauge
	cachedLogs    prometheus.Gauge
	cacheBytes    prometheus.Gauge
	cacheFallback prometheus.Counter // readers that fell out of a cache window
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "rpcs_total", Help: "RPCs answered, by method and status code.",
		}, []string{"method", "code"}),
		rpcLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "rpc_duration_seconds",
			Help:    "Time to answer unary RPCs (streams: time to the end of the stream), by method.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
		}, []string{"method"}),
		writeRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "write_records_total", Help: "Records acknowledged to clients, per log.",
		}, []string{"log"}),
		writeBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "write_bytes_total", Help: "Payload bytes acknowledged (bytes in), per log.",
		}, []string{"log"}),
		writeLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "write_latency_seconds",
			Help:    "Time from a write being handed to the log writer to its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 20),
		}),
		pendingWrites: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "pending_writes", Help: "Records handed to log writers and not yet acknowledged.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "rejected_total",
			Help: "Requests refused before doing anything, by reason (rate-limit, pending, draining, probation, too-many-logs, readers).",
		}, []string{"reason"}),
		dedup: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "idempotent_retries_total",
			Help: "Idempotent writes answered from the dedup table, by result (duplicate, too-old).",
		}, []string{"result"}),
		ownership: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "ownership_changes_total",
			Help: "Log ownership events: acquired, released, failed (writer error), probation, redirected (lost the race).",
		}, []string{"event"}),
		ownedLogs: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "owned_logs", Help: "Logs this proxy owns.",
		}),
		redirects: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "redirects_total", Help: "Requests answered with CODE_REDIRECT.",
		}),
		readRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "read_records_total",
			Help: "Records sent to readers, per log and source (cache: the shared tail cache; bookies: a reader's own catch-up reads).",
		}, []string{"log", "source"}),
		readBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "read_bytes_total", Help: "Payload bytes sent to readers (bytes out), per log.",
		}, []string{"log"}),
		bookieRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "bookie_records_read_total",
			Help: "Records the proxy's log readers (tail caches and catch-up readers) fetched from bookies, per log.",
		}, []string{"log"}),
		bookieEntries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "bookie_entries_read_total",
			Help: "Entries the proxy's log readers fetched from bookies, per log.",
		}, []string{"log"}),
		readers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "readers", Help: "Open Read streams.",
		}),
		cachedLogs: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "cached_logs", Help: "Logs with a tail cache.",
		}),
		cacheBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "cache_bytes", Help: "Bytes held by tail caches.",
		}),
		cacheFallback: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dlog", Subsystem: "proxy", Name: "cache_fallbacks_total",
			Help: "Readers that fell behind a tail cache's window and went back to reading bookies.",
		}),
	}
	if reg != nil {
		m.rpcs = register(reg, m.rpcs)
		m.rpcLatency = register(reg, m.rpcLatency)
		m.writeRecords = register(reg, m.writeRecords)
		m.writeBytes = register(reg, m.writeBytes)
		m.writeLatency = register(reg, m.writeLatency)
		m.pendingWrites = register(reg, m.pendingWrites)
		m.rejected = register(reg, m.rejected)
		m.dedup = register(reg, m.dedup)
		m.ownership = register(reg, m.ownership)
		m.ownedLogs = register(reg, m.ownedLogs)
		m.redirects = register(reg, m.redirects)
		m.readRecords = register(reg, m.readRecords)
		m.readBytes = register(reg, m.readBytes)
		m.bookieRecords = register(reg, m.bookieRecords)
		m.bookieEntries = register(reg, m.bookieEntries)
		m.readers = register(reg, m.readers)
		m.cachedLogs = register(reg, m.cachedLogs)
		m.cacheBytes = register(reg, m.cacheBytes)
		m.cacheFallback = register(reg, m.cacheFallback)
	}
	return m
}

// register registers c, or returns the collector already registered
// under the same description (proxies sharing a registry share it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
