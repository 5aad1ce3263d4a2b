// Package proxy is dlog's service tier: one server that is both the write
// proxy (it owns logs and appends to them for many clients) and the read
// proxy (it serves readers, sharing one tail reader per log among them),
// with the service API (proto/dlog/api/v1) on one port as gRPC, gRPC-Web
// and Connect HTTP/JSON, from the same handlers. `dlog proxy` runs it;
// `dlog sandbox` runs one in-process.
//
//	cfg := proxy.DefaultConfig("http://10.0.0.1:2379")
//	cfg.ListenAddr, cfg.HTTPAddr = ":7000", ":7080"
//	s, err := proxy.Start(ctx, cfg)
//	...
//	s.Close() // completes and releases every owned log
//
// docs/api.md is the user-facing contract (RPCs, status codes, examples).
//
// # Ownership
//
// A log has one owner. The first write (or heartbeat) a proxy gets for a
// log makes it take the log over: namespace.OpenWriter in immediate mode,
// with the proxy's id and API address as owner, which takes the writer lock
// (bound to the namespace's lease, Config.SessionTTL), recovers and fences
// what a previous owner left in progress and starts a new segment; then the
// dedup table of idempotent writes is rebuilt from the end of the log. A
// proxy that loses the race answers CODE_REDIRECT with the owner's address
// (the *dlog.OwnedError of the lock). An owner that dies or is cut off
// keeps the lock until its lease ends; the next proxy to get a write takes
// over then. A stream (one owned log) closes — its writer completes what it
// can and releases the lock — on shutdown, AdminService.Release, a delete,
// and any writer failure that leaves writes indeterminate; the next request
// takes the log over again, which settles the failure (recovery) and
// rebuilds the dedup table from what really is in the log. Repeated
// failures (ProbationErrors within ProbationWindow) put the log on
// probation: for ProbationPeriod this proxy answers CODE_STREAM_UNAVAILABLE
// instead of taking it back, so clients move it elsewhere. A draining proxy
// (AcceptNewLogs false) serves the logs it owns and refuses new ones.
//
// # Writes
//
// Per owned log a mutex orders everything that must be in one order: txid
// sequencing (a record without a txid gets max(the writer's last txid, now
// in ms)), the dedup check and the hand-off to the writer (WriteAsync,
// WriteBulkAsync: they never block on the network). Then the request waits
// for the outcome — whatever the client's deadline, because the dedup table
// and the pending counts need it, and the writer resolves every accepted
// record. Rate limits (golang.org/x/time/rate, proxy-wide and per log,
// records and bytes, all or nothing) and the pending bound per log refuse
// with CODE_OVER_CAPACITY before anything is sent.
//
// Idempotent writes (producer id, sequence) are checked against a bounded
// table per log (producers.go; pure state): remembered sequences answer
// with their original DLSN, sequences of a write in flight wait for it,
// new ones are appended, and unknown old ones are CODE_SEQUENCE_TOO_OLD.
// The tag travels with the record into the log, which is how a new owner
// knows what is there (rebuildProducers reads back the last
// IdempotencyWindowEntries entries, after recovery, so they are final).
//
// # Reads
//
// A Read stream (read.go) reads from a namespace reader of its own
// (catch-up) until its next position is covered by the log's tail cache
// (cache.go), then copies records out of the cache at its own pace; if it
// falls behind the cache's window it goes back to catch-up. The cache is one
// namespace reader at the log's end filling a window bounded in bytes;
// nobody waits for a reader, so slow readers cost neither the others nor
// memory. Positions only move forward, so switching is gap- and
// duplicate-free. Records fetched from the bookies per log are counted
// (dlog_proxy_bookie_records_read_total, dlog_proxy_bookie_entries_read_total)
// and records served per source (dlog_proxy_read_records_total{source}).
//
// # Errors
//
// Handlers return plain errors; one interceptor maps every one through
// the table of package status (code, reason, definite, redirect location)
// into a Connect error with an ErrorDetail. The Go client maps it back.
//
// # Status codes
//
//	CODE_INVALID_ARGUMENT    definite       bad request, name, DLSN
//	CODE_NOT_FOUND           definite       log, namespace, subscription, ledger
//	CODE_ALREADY_EXISTS      definite       log exists
//	CODE_TOO_LARGE           definite       record or message over the limit
//	CODE_TXID_OUT_OF_ORDER   definite       txid below the log's last
//	CODE_END_OF_STREAM       definite       sealed log
//	CODE_TRUNCATED           definite       position truncated
//	CODE_REDIRECT            definite       another proxy owns the log (location)
//	CODE_OVER_CAPACITY       definite       rate limit, pending writes, readers
//	CODE_WRITER_ACTIVE       definite       delete of an owned log without force
//	CODE_STREAM_UNAVAILABLE  definite       draining, probation, shutdown: ask another proxy
//	CODE_SEQUENCE_TOO_OLD    definite       idempotent sequence not remembered
//	CODE_FENCED              indeterminate  the log was lost mid-write
//	CODE_UNAVAILABLE         indeterminate  bookies or metadata unreachable
//	CODE_TIMEOUT             indeterminate  deadline or cancellation
//	CODE_INTERNAL            indeterminate  anything else (corrupt data too)
//
// # Goroutines
//
// Owned by the Server, started by Start or on demand, all stopped by Close
// (which cancels the server's base context, then waits for them):
//
//   - the HTTP server's accept loop (net/http; per-connection and
//     per-request goroutines are net/http's), ended by Shutdown;
//   - keepRegistered: re-registers when the registration lease ends;
//     ends with the base context;
//   - cacheJanitor: closes tail caches without readers after
//     CacheIdleTimeout and forgets stale failure (probation) records;
//     ends with the base context;
//   - one per log being taken over (stream.acquire), bounded by
//     AcquireTimeout and the base context;
//   - one per log being closed (stream.close), bounded by CloseTimeout;
//   - one per tail cache (tailCache.run: the cache's namespace reader),
//     ended by the cache's close (janitor or Close).
//
// Read and write requests run in their request goroutines; they never
// start goroutines. The namespaces, ledger client and metadata store run
// their own (see their packages). Lock order: owners.mu before stream.mu
// before the writer's; caches.mu before tailCache.mu; nss.mu alone.
package proxy
