// Package nemesis runs the components of a dlog cluster as separate OS
// processes on loopback and injects faults into them, for the fault-proof
// harness (package verify) and for tests that need real processes.
//
// # Processes
//
// Build compiles the dlog binary once (optionally with -tags dlogbugs, so
// bug switches can be set through DLOG_BUGS). A Supervisor starts
// processes from a Spec (name, arguments, environment, data directories),
// waits until each prints its ready line (dlog servers print a JSON object
// with "event":"listening" under -o json), and then injects process
// faults:
//
//	sup, _ := nemesis.NewSupervisor(nemesis.SupervisorConfig{Binary: bin, LogDir: dir})
//	defer sup.Close()
//	p, err := sup.Start(ctx, nemesis.Spec{Name: "bookie-0", Args: args, DataDirs: []string{d}})
//	p.Kill()          // SIGKILL to the process group, reaped
//	p.Restart(ctx)    // same arguments, same directories
//	p.Pause()         // SIGSTOP; p.Resume() is SIGCONT
//	p.Wipe()          // remove the data directories (process stopped)
//
// Every process runs in its own process group and (Linux) gets SIGKILL
// when the supervising process dies, so an aborted run leaves nothing
// behind. Each process's stdout and stderr go to LogDir/<name>.log across
// all its runs, with a header line per start and exit.
//
// # Network
//
// A Net holds one Front (a TCP proxy) per server. A server advertises its
// front's shared address; a client process can instead get a listener of
// its own (Front.AddrFor). Every connection belongs to a link (source
// process, server): on a per-source listener by construction, on the
// shared listener by looking the client's socket up in /proc/net/tcp and
// /proc/<pid>/fd (Linux; elsewhere the source is UnknownSource and only
// wildcard rules apply). Faults are per link and per direction:
//
//	n.SetLink("agent-a", "etcd-0", nemesis.Blackhole)              // a cut from etcd
//	n.SetLink("agent-b", "bookie-1", nemesis.Fault{DropTx: true})  // one-way loss
//	n.SetLink(nemesis.AnySource, "bookie-2", nemesis.Fault{Delay: 200 * time.Millisecond})
//	n.SetLink("agent-a", "bookie-0", nemesis.Fault{PauseTx: true}) // held, then delivered
//	n.HealAll()
//
// Dropped bytes leave a hole in a TCP byte stream, so a connection that
// lost bytes never forwards in that direction again and is closed when the
// fault is lifted: the peers see a dead connection and reconnect, as after
// a real partition, and never a corrupted stream. No root, tc or iptables
// is needed; delay and loss come from the proxy (this kernel has no
// netem).
//
// Front.SetSourceTarget routes one source's connections elsewhere, e.g.
// through a bookie-protocol proxy (internal/cluster.Proxy) that drops
// chosen messages such as fence requests.
//
// # Concurrency
//
// Supervisor, Process, Net and Front are safe for concurrent use. Each
// process has one reaper goroutine (ends with the process); each front one
// accept goroutine per listener and, per connection, a goroutine and two
// per direction (all end on Close). Supervisor.Close kills and reaps every
// process; Net.Close closes every listener and connection and waits.
package nemesis
