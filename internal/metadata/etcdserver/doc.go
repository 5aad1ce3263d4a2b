// Package etcdserver starts etcd members inside the current process
// (go.etcd.io/etcd/server/v3/embed): the single-node server behind
// `--metadata embedded:DIR` and `dlog sandbox`, and small multi-member
// clusters for tests.
//
// # Usage
//
//	cfg := etcdserver.DefaultConfig("/var/lib/dlog/etcd")
//	srv, err := etcdserver.Start(ctx, cfg)
//	if err != nil { ... }
//	defer srv.Close()
//	endpoints := srv.Endpoints() // e.g. ["http://127.0.0.1:41231"]
//
// # Ports
//
// A single member listens on the URLs of Config (default
// http://127.0.0.1:0, a port chosen by the kernel); Endpoints reports the
// real addresses. Members of a multi-member cluster must know each other's
// peer URLs before they start, so StartCluster picks free loopback ports
// itself (listen on port 0, note the port, close) and retries with fresh
// ports if one was taken in between.
//
// # Disk
//
// Config.Dir is etcd's data directory (member/snap, member/wal, bbolt). A
// member restarted on the same directory rejoins with all its data; the
// cluster settings of Config are then ignored by etcd, which reads them back
// from the WAL. Config.NoFsync trades durability for speed and is for tests
// only.
//
// # Concurrency
//
// Start and StartCluster block until the member (or every member) serves
// requests, or ctx ends. Close is safe to call more than once and from
// several goroutines; it stops the member and waits for every goroutine etcd
// started. Clients of the member should be closed before it (etcd otherwise
// waits for their streams to time out).
package etcdserver
