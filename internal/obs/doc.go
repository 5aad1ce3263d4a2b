// Package obs is what every dlog server process exposes for operators: a
// Prometheus registry, an HTTP server with /metrics, /healthz and /readyz,
// and structured logging set up from flags (log/slog, text or JSON).
//
// /healthz answers 200 while the process serves HTTP at all (liveness).
// /readyz answers 200 only when every registered readiness check passes and
// 503 with the failing checks' messages otherwise (e.g. a bookie whose
// journal failed, or a proxy not yet registered in metadata).
//
// Concurrency: a Server owns one goroutine (the HTTP listener loop); Close
// shuts it down and waits for it.
package obs
