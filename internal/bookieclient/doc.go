// Package bookieclient is the client side of the bookie RPC protocol
// (proto/dlog/bookie/v1/bookie.proto): one gRPC connection and one
// bidirectional, pipelined stream per bookie address. Requests carry a
// client-chosen txn id that the bookie echoes; many requests are in flight
// on a stream at once and their answers may come back in any order.
//
// # Errors
//
// Every non-OK status maps to a sentinel (ErrFenced, ErrNoEntry, ...). The
// distinction that recovery depends on is IsExplicitNegative: only
// ErrNoEntry and ErrNoLedger say "not there"; I/O errors, checksum errors,
// timeouts and broken connections are unknown.
//
// Entries read back are verified (bookiepb.Entry.Verify) before they are
// returned; a bad one is ErrBadResponse.
//
// # Concurrency
//
// A Client is safe for concurrent use. Each stream has one receive
// goroutine, started when the stream opens and ended when it breaks or the
// Client closes (Close waits for it). Callbacks run on the receive
// goroutine, on the caller's goroutine or on a context.AfterFunc goroutine;
// they must not block. Pending requests per bookie are bounded
// (Config.MaxPendingPerBookie); beyond it calls fail fast with ErrOverloaded.
package bookieclient
