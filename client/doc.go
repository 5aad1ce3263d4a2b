// Package client is the Go client of the dlog service: it talks to dlog
// proxies (gRPC over cleartext HTTP/2 by default, with connect-go) and
// does the routing a proxy deployment needs, so applications only name
// logs.
//
//	c, err := client.New(ctx, client.DefaultConfig("10.0.0.1:7000", "10.0.0.2:7000"))
//	if err != nil { ... }
//	defer c.Close()
//	res, err := c.Write(ctx, "orders", dlog.Record{Payload: b})
//	switch {
//	case err == nil:            // res.DLSN, res.TxID
//	case dlog.IsDefinite(err):  // not written: errors.Is(err, dlog.ErrLogNotFound), ...
//	default:                    // may be in the log
//	}
//	r, err := c.OpenReader(ctx, "orders", client.AtDLSN(from), client.ReadOptions{Follow: true})
//	defer r.Close()
//	for rec, err := range r.All(ctx) { ... }
//
// # Routing
//
// The client discovers the live proxies (AdminService.ListProxies, every
// Config.DiscoveryInterval; Config.Servers are the seeds) and puts them on
// a consistent-hash ring with virtual nodes, so every client sends a log
// to the same proxy and, when that proxy fails, to the same next one.
// Writes go to the log's owner: the ownership cache (log → proxy, learned
// from answers and redirects), else the ring among proxies taking new
// logs. A redirect (CODE_REDIRECT) is followed up to Config.MaxRedirects
// times; a proxy that will not take the log (CODE_STREAM_UNAVAILABLE) is
// skipped for that call; a proxy that cannot be reached is skipped by
// every call for Config.Blackout. Reads and metadata calls use the ring
// over all proxies (any proxy serves them). Deadlines come from ctx (each
// attempt is also bounded by Config.AttemptTimeout).
//
// # Retries
//
// A call is sent again only where that is safe: reads, idempotent
// operations (truncate, subscriptions, release, heartbeat) and tagged
// writes. A write is tagged when its Record carries ProducerID and
// Sequence, or — with Config.Idempotence, the default — with one of the
// client's producer ids: every request in flight holds a producer id of
// its own (a request of several records, WriteBulk or coalesced Writes,
// takes consecutive sequences), so each id has one request at a time and
// its sequences reach the proxies in order. A tagged write whose outcome is unknown (a proxy died,
// the log was fenced, a timeout) is retried with the same tag, on the new
// owner after a failover, which answers with the original position
// (WriteResult.Duplicate) if it is already in the log. The guarantee has a
// window (see docs/api.md, "Idempotent writes"). Untagged writes are never
// resent after they may have reached a proxy.
//
// # Errors
//
// Every error a proxy returns matches the dlog sentinel of its reason with
// errors.Is (dlog.ErrTxIDOutOfOrder, dlog.ErrLogNotFound, ...), agrees with
// dlog.IsDefinite, and is an *Error (errors.As) carrying the status code; a
// redirect that could not be followed is a *dlog.OwnedError. Failures to
// reach any proxy are indeterminate dlog.ErrUnavailable.
//
// # Concurrency and goroutines
//
// A Client is safe for concurrent use. It runs one goroutine (discovery,
// when enabled) and one per write request in flight that coalesces
// concurrent Writes of a log (Config.BatchWrites; at most
// Config.BatchesInFlight per log), all stopped by Close (writes still in
// flight then fail). Each Reader runs one goroutine that
// holds its stream and reads one response ahead (so it applies HTTP/2 flow
// control to the proxy when the application is slow), stopped by
// Reader.Close; Next is for one goroutine at a time.
//
// This package imports neither etcd nor the log core: only the API stubs,
// the root dlog types and connect.
package client
