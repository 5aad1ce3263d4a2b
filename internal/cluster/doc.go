// Package cluster runs a small dlog storage cluster inside a test process:
// a metadata store (the in-memory one, or a real embedded etcd) and N real
// bookies (internal/bookie) on 127.0.0.1, each in its own directory, with
// an optional fault-injecting proxy in front of each. The ledger client,
// the log layer and the fault-proof harness use it to test against real
// components.
//
// # Usage
//
//	c, err := cluster.Start(ctx, cluster.DefaultConfig(t.TempDir()))
//	if err != nil { ... }
//	defer c.Close()
//	client, err := ledger.New(ctx, c.Store(), ledger.DefaultConfig())
//	...
//	c.Kill(1)                  // stop bookie 1 (registration removed, dir kept)
//	c.Restart(ctx, 1)          // same dir, same id, same port if free
//	c.Kill(2); c.Wipe(2)       // a lost disk: Restart(2) now fails (cookie)
//	c.Replace(ctx, 2)          // slot 2 as a new, empty identity
//	p := c.Proxy(0)            // faults between every client and bookie 0
//	p.OnRequest(func(r *bookiepb.Request) cluster.Verdict {
//		if r.GetRead().GetFence() { return cluster.Drop }
//		return cluster.Pass
//	})
//
// # Proxies
//
// A Proxy speaks the bookie protocol on both sides (it is a gRPC server of
// Batches forwarding each stream to the bookie on a Batches stream of its
// own), so faults apply per request, not per batch: pass, drop or hold any
// request or response of a batch (the members that pass travel on together
// as one batch), release held ones later (each alone), or cut every
// stream. With Config.Proxies the bookies
// advertise their proxy's address, so every client goes through it; a
// client that needs its own path to a bookie can use NewProxy with the
// bookie's DirectAddr and ledger.Config.ResolveAddress.
//
// # Identities
//
// Bookie ids are bookie-<index> (and bookie-<index>-g<n> after Replace);
// they survive restarts on new ports. A wiped directory keeps its id's
// cookie in metadata, so the bookie refuses to start as the old identity
// (bookie.ErrIdentity), as a production bookie would.
//
// # Concurrency and cleanup
//
// Methods are safe for concurrent use. Start waits until every bookie is
// registered in metadata; Close stops bookies, proxies and the store and
// waits for their goroutines, so goleak finds nothing left. Tests must not
// stop anything they did not start; a Cluster owns everything it started.
package cluster
