package ledgerstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reg              prometheus.Registerer
	collectors       []prometheus.Collector
	flushSeconds     prometheus.Histogram
	syncSeconds      prometheus.Histogram
	commitSeconds    prometheus.Histogram
	flushBytes       prometheus.Counter
	flushErrors      prometheus.Counter
	readsFromCache   prometheus.Counter
	readsFromLog     prometheus.Counter
	compactedBytes   prometheus.Counter
	logsRemoved      prometheus.Counter
	writeCacheBytes  prometheus.GaugeFunc
	entryLogBytes    prometheus.GaugeFunc
	gaugesConfigured bool
	store            *Store
}

func newMetrics() *metrics {
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 16) // 0.5 ms .. ~16 s
	m := &metrics{
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dlog_ledgerstore_flush_seconds", Help: "Duration of a write cache flush (entry log write+sync and index commit).", Buckets: buckets}),
		syncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dlog_ledgerstore_entrylog_sync_seconds", Help: "Duration of the entry log fsync of a flush.", Buckets: buckets}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dlog_ledgerstore_index_commit_seconds", Help: "Duration of the synced index batch of a flush.", Buckets: buckets}),
		flushBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_ledgerstore_flushed_bytes_total", Help: "Entry log bytes written by flushes."}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_ledgerstore_flush_errors_total", Help: "Flushes that failed."}),
		readsFromCache: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_ledgerstore_reads_write_cache_total", Help: "Entries served from the write cache."}),
		readsFromLog: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_ledgerstore_reads_entry_log_total", Help: "Entries served from entry logs."}),
		compactedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_ledgerstore_compaction_copied_bytes_total", Help: "Live bytes copied by compaction."}),
		logsRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dlog_ledgerstore_entry_logs_removed_total", Help: "Entry logs removed by garbage collection."}),
	}
	m.writeCacheBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dlog_ledgerstore_write_cache_bytes", Help: "Bytes in the write cache (both halves)."}, m.cacheBytes)
	m.entryLogBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "dlog_ledgerstore_entry_log_bytes", Help: "Bytes in entry log files."}, m.logBytes)
	m.collectors = []prometheus.Collector{m.flushSeconds, m.syncSeconds, m.commitSeconds, m.flushBytes,
		m.flushErrors, m.readsFromCache, m.readsFromLog, m.compactedBytes, m.logsRemoved,
		m.writeCacheBytes, m.entryLogBytes}
	return m
}

// register adds the collectors to reg (nil: no-op), all or none.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, r := range m.collectors[:i] {
				reg.Unregister(r)
			}
			return fmt.Errorf("ledgerstore: register metrics: %w", err)
		}
	}
	m.reg = reg
	return nil
}

func (m *metrics) setGauges(s *Store) { m.store = s }

func (m *metrics) cacheBytes() float64 {
	s := m.store
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.mu.active.bytes
	if s.mu.flushing != nil {
		n += s.mu.flushing.cache.bytes
	}
	return float64(n)
}

func (m *metrics) logBytes() float64 {
	if m.store == nil || m.store.logs == nil {
		return 0
	}
	return float64(m.store.logs.TotalBytes())
}

func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

// pebbleLogger routes pebble's logging to slog: info at debug level (pebble
// is chatty), errors at error level.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...))
	}
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
}

// Fatalf is called by pebble for unrecoverable states; pebble expects it
// not to return.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "fatal", true)
	panic(errors.New("ledgerstore: pebble fatal: " + msg))
}
