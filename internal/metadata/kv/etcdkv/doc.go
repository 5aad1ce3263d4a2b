// Package etcdkv is the etcd backend of the kv seam, over
// go.etcd.io/etcd/client/v3.
//
// # Error classification
//
// etcd and gRPC errors are mapped onto the kv sentinels:
//
//   - kv.ErrUnavailable (retryable; for a write the outcome is unknown): the
//     ctx ended, gRPC Unavailable / DeadlineExceeded / Canceled / Aborted,
//     and etcd's "no leader", "leader changed", "not leader", "server
//     stopped", "too many requests" and every "request timed out" variant.
//     In particular, during a leader change a write can fail with "request
//     timed out" although it was (or will be) applied: the client does not
//     retry writes, and neither does this package; the caller retries with
//     a CAS, which tells whether the first attempt landed.
//   - kv.ErrLeaseNotFound: etcd's "requested lease not found".
//   - kv.ErrCompacted: a watch or read below the compacted revision.
//   - kv.ErrInvalid: gRPC InvalidArgument (too many ops, duplicate key,
//     request too large): nothing was written.
//   - kv.ErrClosed: the client was closed.
//
// Anything else is returned unwrapped (for example "database space
// exceeded"): neither retryable nor known to be definite.
//
// # Concurrency
//
// KV is safe for concurrent use. Each Watch owns one goroutine, stopped by
// its ctx or by Close, which waits for them.
package etcdkv
