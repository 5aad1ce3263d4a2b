// Package bench measures a running dlog service through the public Go
// client: write throughput and acknowledgement latency, catch-up read
// throughput, and end-to-end latency from a write call to a tailing
// reader's delivery. `dlog bench` prints what Run measures; Go benchmarks
// call Run against an in-process sandbox.
//
// # Usage
//
//	cfg := bench.DefaultConfig(bench.Write, c) // c: a *client.Client
//	cfg.Records, cfg.Concurrency, cfg.BatchRecords = 1_000_000, 32, 100
//	res, err := bench.Run(ctx, cfg)
//	fmt.Println(res.RecordsPerSecond, res.WriteLatency.P99)
//
// # What is measured
//
// Every payload starts with the time of its write call (UnixNano, 8
// bytes) and a sequence number (8 bytes); the rest is filler. Write
// latency runs from a request's send to its acknowledgement, once per
// record of the request. End-to-end latency runs from the write call to
// a reader's delivery of the record, read from the payload's timestamp:
// writers and readers share the process, so they share the clock.
// Latencies go into log-linear histograms (under 1% error); maxima are
// exact. Throughput is acknowledged (or, for Read, delivered) records and
// payload bytes over the run's elapsed time.
//
// Tailing readers are opened at the end of the log and shown a marker
// record (written until each has one) before the clock starts, so their
// start-up is not measured.
//
// # Concurrency
//
// Run starts Concurrency writer goroutines, Readers reader goroutines and
// one progress goroutine, and waits for all of them before it returns.
package bench
