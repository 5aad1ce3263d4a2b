// Package verify is dlog's fault-proof harness, the engine of `dlog
// verify`: it runs a fault scenario against a multi-process cluster on
// loopback, records what the clients did and saw, drains every log and
// checks the history against dlog's guarantees (package checker). See
// docs/verification.md for the scenarios, the properties and the findings.
//
// # Usage
//
//	sc, _ := verify.Lookup("owner-kill")
//	res := verify.Execute(ctx, verify.RunConfig{
//		Scenario: sc, Binary: "/path/to/dlog", Dir: dir, Duration: time.Minute,
//	})
//	if res.Failed() { ... res.Report, res.Notes, res.Dir ... }
//	verify.WriteSummary(os.Stdout, [][]*verify.RunResult{{res}}, false)
//
// # Pieces
//
//   - Cluster (cluster.go): etcd members, bookies and owners as processes
//     (internal/nemesis), each server behind a fault proxy, plus the
//     harness's own metadata store and namespace.
//   - Owners: writer agents (agent.go, `dlog verify-agent`: the library
//     embedded in a process that serves the harness over HTTP/JSON) or dlog
//     proxies. Targets (target.go, target_proxy.go) are how the workload
//     reaches them: following "owned" redirects between agents, or through
//     the client package.
//   - Workload (workload.go): writer, reader and truncating clients that
//     record every operation with internal/history.
//   - Scenario (scenario.go, scenarios.go): a cluster shape, a workload and
//     a nemesis; faults.go and corrupt.go hold the nemeses' tools.
//   - Execute (run.go): cluster, warm-up, nemesis, heal, liveness, seal,
//     drain (drain.go), metadata watch (meta.go), checker, recovery times;
//     report.go aggregates and prints.
//
// # Concurrency
//
// Execute runs one scenario and owns everything it starts: the cluster's
// processes and links, the workload's client goroutines (stopped and waited
// for before the drain), the metadata watch goroutines and the HTTP
// clients; it returns after all of them ended. Several Executes may run
// concurrently in one process with different directories, except for
// scenarios whose bug lives in the harness's readers (they switch a
// process-wide bug on). A nemesis runs on the goroutine that called
// Execute; Run's methods are safe for concurrent use by the goroutines a
// nemesis starts itself. An agent (RunAgent) serves requests concurrently;
// takeovers of one log are serialised.
package verify
