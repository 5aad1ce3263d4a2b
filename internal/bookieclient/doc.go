// Package bookieclient is the client side of the bookie RPC protocol
// (proto/dlog/bookie/v1/bookie.proto): one gRPC connection and one
// bidirectional, pipelined stream per bookie address. Requests carry a
// client-chosen txn id that the bookie echoes; many requests are in flight
// on a stream at once and their answers may come back in any order.
//
//	c, err := bookieclient.New(bookieclient.DefaultConfig())
//	...
//	c.AddAsync(ctx, "bookie-1:3181", &bookiepb.AddRequest{Entry: e, MasterKey: key},
//		func(err error) { ... }) // err == nil: durable on that bookie
//
// # Framing
//
// The stream is the protocol's Batches method: each gRPC message carries a
// batch of requests (Requests) or of answers (Responses). A caller encodes
// its request on its own goroutine (bookiepb.AppendRequest) into the
// stream's queue, framed as a member of a Requests message, and returns:
// Go and AddAsync never wait for the network, nor for gRPC flow control.
// The stream's sender goroutine, woken when the queue goes from empty to
// not empty, yields to goroutines ready to run while they keep queueing
// (callers woken by the answers just received), then sends everything
// queued as Requests messages of up to 32 KiB (a larger request alone).
// It never waits for more: an idle client's request leaves at once.
// Answers are decoded by bookiepb.DecodeResponses.
//
// Opening a stream waits for the bookie's response headers (one round
// trip). A peer that ends the stream at once (UNIMPLEMENTED from a peer
// without Batches, or any other refusal) has handled nothing: the open
// fails, and so do the requests waiting for it (ErrUnavailable).
//
// # Errors
//
// Every non-OK status maps to a sentinel (ErrFenced, ErrNoEntry, ...). The
// distinction that recovery depends on is IsExplicitNegative: only
// ErrNoEntry and ErrNoLedger say "not there"; I/O errors, checksum errors,
// timeouts and broken connections are unknown.
//
// A request may name the bookie it is meant for (Request.expected_bookie_id;
// AddAsyncTo for adds): a bookie with another id at that address refuses it
// with ErrWrongBookie and does nothing, so that a writer replaces the
// member it meant instead of counting a stranger's ack.
//
// Entries read back are verified (bookiepb.Entry.Verify) before they are
// returned; a bad one is ErrBadResponse.
//
// # Concurrency
//
// A Client is safe for concurrent use. Each stream has two goroutines,
// started when the stream opens and ended when it breaks or the Client
// closes (Close waits for both): the receive loop, which completes calls,
// and the sender. Callbacks run on the receive goroutine, on the caller's
// goroutine, on a context.AfterFunc goroutine or on a timer's; they must
// not block. Pending requests per bookie are bounded
// (Config.MaxPendingPerBookie), and so are the bytes queued and not yet
// handed to gRPC (64 MiB per stream); beyond either, calls fail at once
// with ErrOverloaded.
//
// Lock order: Client.mu, then nothing; conn.mu, then nothing. Callbacks
// never run under a lock.
package bookieclient
