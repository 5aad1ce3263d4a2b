// Package sandbox runs a whole dlog cluster in one process: an embedded
// single-member etcd, N real bookies (each with its own directory and
// loopback port) and one proxy, plus one HTTP endpoint serving every
// component's Prometheus metrics, /healthz and /readyz. It is what
// `dlog sandbox` runs, and what tests and benchmarks start in-process.
//
// # Usage
//
//	cfg := sandbox.DefaultConfig(dir)
//	cfg.ListenAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
//	sb, err := sandbox.Start(ctx, cfg)
//	if err != nil { ... }
//	defer sb.Close()
//	c, err := client.New(ctx, client.DefaultConfig(sb.Addr()))
//
// # Durability and restarts
//
// Nothing is weakened for the sandbox: bookies fsync before they
// acknowledge and etcd fsyncs its log, so a kill -9 of the process loses
// no acknowledged record. Start on a directory used before brings back
// every log and record. The bookies keep their ids and ports across
// restarts (their identity cookies name them), so the directory records
// the addresses it chose on first start.
//
// When the sandbox starts, nothing of an earlier run of it can be alive
// (the directory is locked, so two sandboxes never share it), so it
// revokes every etcd lease left behind by a crashed run: bookie and proxy
// registrations and writer locks then vanish at once instead of after
// their TTL, and the new proxy takes every log over immediately
// (recovering and fencing what the crashed run left in progress).
//
// # Directory layout
//
//	<Dir>/sandbox.lock     flock(2)-held while a sandbox runs on Dir
//	<Dir>/sandbox.json     the addresses chosen on first start (State)
//	<Dir>/etcd/            the embedded etcd member's data
//	<Dir>/bookie-<i>/      bookie i's data and journal (i from 1)
//
// # Replication
//
// New segments' ledgers use E = min(3, bookies), Qw = E and Qa = 2 for
// three or more bookies (3/3/2), 2/2/2 for two (every entry on both
// bookies; writes stop while one is down, but an acknowledged record
// always has two copies) and 1/1/1 for one. Config overrides them.
//
// # Concurrency
//
// Start returns once every component serves; Close stops them in reverse
// order (HTTP, proxy, bookies, metadata client, etcd) and waits for every
// goroutine they started. Methods are safe for concurrent use.
package sandbox
