package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/nemesis"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// healCtx bounds a heal step (a restart) that must complete even when the
// nemesis's time is up.
func healCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
}

// The scenarios of `dlog verify`. Each nemesis loops until its context
// ends; pauses between steps are deliberate pacing.

var _ = register(&Scenario{
	Name:       "baseline",
	Summary:    "no faults: the workload, the drain and the checker alone",
	Guarantees: "G1-G7 without faults (a failing baseline is a harness or system bug)",
	Nemesis: func(ctx context.Context, r *Run) error {
		<-ctx.Done()
		return nil
	},
})

var _ = register(&Scenario{
	Name:       "bookie-kill",
	Summary:    "SIGKILL a bookie of a current ensemble every few seconds, restart it on the same directory after 2-6 s",
	Guarantees: "G1 (Qa-1 bookies lost), ensemble changes, G8",
	Cluster:    func(c *ClusterConfig) { c.Bookies = 4 },
	Nemesis: func(ctx context.Context, r *Run) error {
		for r.Wait(ctx, r.Jitter(2*time.Second, 5*time.Second)) {
			b := r.pickBookie(ctx)
			if b == nil {
				continue
			}
			name := "kill " + b.Proc.Name()
			r.Start(name)
			if err := b.Proc.Kill(); err != nil {
				return err
			}
			r.Wait(ctx, r.Jitter(2*time.Second, 6*time.Second))
			hctx, cancel := healCtx(ctx)
			err := r.RestartBookie(hctx, b)
			cancel()
			if err != nil {
				return err
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name:       "qa-bookies-kill",
	Summary:    "SIGKILL Qa bookies of one write set at once (2 of 3: writes must stall, never ack with fewer than Qa copies), restart them with their data",
	Guarantees: "G1, G8",
	Nemesis: func(ctx context.Context, r *Run) error {
		for r.Wait(ctx, r.Jitter(3*time.Second, 6*time.Second)) {
			ens := r.Ensemble(ctx, logName(0))
			if len(ens) < 2 {
				ens = r.C.Bookies
			}
			r.Rng.Shuffle(len(ens), func(i, j int) { ens[i], ens[j] = ens[j], ens[i] })
			victims := ens[:r.C.cfg.AckQuorum]
			name := "kill-qa"
			for _, b := range victims {
				name += " " + b.Proc.Name()
			}
			r.Start(name)
			var wg sync.WaitGroup
			for _, b := range victims {
				wg.Go(func() { _ = b.Proc.Kill() })
			}
			wg.Wait()
			r.Wait(ctx, r.Jitter(3*time.Second, 8*time.Second))
			hctx, cancel := healCtx(ctx)
			for _, b := range victims {
				wg.Go(func() { _ = r.RestartBookie(hctx, b) })
			}
			wg.Wait()
			cancel()
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name:       "owner-kill",
	Summary:    "chase the owner: SIGKILL whichever agent owns the hot log, restart it 1-3 s later, repeat",
	Guarantees: "G1, G3, G5 (takeover recovers the dead owner's segment), G8",
	Cluster:    func(c *ClusterConfig) { c.Owners = 3 },
	Workload:   func(w *WorkloadConfig) { w.ConcentrateLog0 = 4 },
	Nemesis: func(ctx context.Context, r *Run) error {
		for r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second)) {
			a := r.Owner(ctx, logName(0))
			if a == nil || !a.Proc.Running() {
				continue
			}
			name := "kill-owner " + a.Name
			r.Start(name)
			if err := a.Proc.Kill(); err != nil {
				return err
			}
			r.Wait(ctx, r.Jitter(time.Second, 3*time.Second))
			hctx, cancel := healCtx(ctx)
			err := a.Proc.Restart(hctx)
			cancel()
			if err != nil {
				return err
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name:       "owner-pause",
	Summary:    "zombie writer: SIGSTOP the hot log's owner for 1.5-3x its lease, let another agent take over, then SIGCONT it",
	Guarantees: "G5 (the resumed owner gets no ack for the taken-over segment), G1",
	Workload:   func(w *WorkloadConfig) { w.ConcentrateLog0 = 4; w.OpTimeout = 2 * time.Second },
	Nemesis: func(ctx context.Context, r *Run) error {
		ttl := r.C.cfg.SessionTTL
		for r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second)) {
			a := r.Owner(ctx, logName(0))
			if a == nil || !a.Proc.Running() {
				continue
			}
			name := "pause-owner " + a.Name
			r.Start(name)
			if err := a.Proc.Pause(); err != nil {
				return err
			}
			r.Wait(ctx, r.Jitter(ttl*3/2, ttl*3))
			_ = a.Proc.Resume()
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name:       "owner-etcd-partition",
	Summary:    "cut the hot log's owner from every etcd member (it still reaches the bookies) for 2-3x its lease, then heal",
	Guarantees: "G5 (lease loss without storage loss), G7, G8",
	Workload:   func(w *WorkloadConfig) { w.ConcentrateLog0 = 4; w.OpTimeout = 2 * time.Second },
	Nemesis: func(ctx context.Context, r *Run) error {
		ttl := r.C.cfg.SessionTTL
		for r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second)) {
			a := r.Owner(ctx, logName(0))
			if a == nil {
				continue
			}
			name := "partition " + a.Name + " from etcd"
			r.Start(name)
			r.Cut(a.Name, r.EtcdNames()...)
			r.Wait(ctx, r.Jitter(ttl*2, ttl*3))
			for _, e := range r.EtcdNames() {
				r.C.Net.SetLink(a.Name, e, nemesis.Fault{})
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "etcd-leader-loss",
	Summary: "3 etcd members: SIGKILL the etcd leader together with a bookie of a current ensemble (an ensemble " +
		"change during the election), restart both after 3-6 s",
	Guarantees: "G1, G7 (ensemble-change CAS across a leader change), G8",
	Cluster:    func(c *ClusterConfig) { c.Etcd = 3; c.Bookies = 4 },
	Nemesis: func(ctx context.Context, r *Run) error {
		for r.Wait(ctx, r.Jitter(3*time.Second, 6*time.Second)) {
			li := r.C.EtcdLeader(ctx)
			b := r.pickBookie(ctx)
			if li < 0 || b == nil {
				continue
			}
			e := r.C.Etcd[li]
			name := "kill etcd leader " + e.Name() + " and " + b.Proc.Name()
			r.Start(name)
			var wg sync.WaitGroup
			wg.Go(func() { _ = e.Kill() })
			wg.Go(func() { _ = b.Proc.Kill() })
			wg.Wait()
			r.Wait(ctx, r.Jitter(3*time.Second, 6*time.Second))
			hctx, cancel := healCtx(ctx)
			err := e.Restart(hctx)
			if err == nil {
				err = r.RestartBookie(hctx, b)
			}
			cancel()
			if err != nil {
				return err
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name:       "etcd-quorum-loss",
	Summary:    "3 etcd members: SIGKILL two of them (no quorum) for 3-8 s, then restart them",
	Guarantees: "G1, G7 (writes stall without loss or split ownership), G8",
	Cluster:    func(c *ClusterConfig) { c.Etcd = 3 },
	Nemesis: func(ctx context.Context, r *Run) error {
		for r.Wait(ctx, r.Jitter(4*time.Second, 8*time.Second)) {
			idx := r.Rng.Perm(len(r.C.Etcd))[:2]
			name := "kill " + r.C.Etcd[idx[0]].Name() + " " + r.C.Etcd[idx[1]].Name()
			r.Start(name)
			var wg sync.WaitGroup
			for _, i := range idx {
				wg.Go(func() { _ = r.C.Etcd[i].Kill() })
			}
			wg.Wait()
			r.Wait(ctx, r.Jitter(3*time.Second, 8*time.Second))
			hctx, cancel := healCtx(ctx)
			errs := make([]error, len(idx))
			for k, i := range idx {
				wg.Go(func() { errs[k] = r.C.Etcd[i].Restart(hctx) })
			}
			wg.Wait()
			cancel()
			if err := errors.Join(errs...); err != nil {
				return err
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "wiped-bookie",
	Summary: "SIGKILL a bookie of a current ensemble, wipe its disk and restart it: it must refuse its old " +
		"identity; it comes back as a new identity at the same address while other bookies keep being killed",
	Guarantees: "G1 (one lost disk, Qa-1), bookie identity, recovery never trusts the wiped bookie",
	Cluster:    func(c *ClusterConfig) { c.Bookies = 4 },
	Nemesis: func(ctx context.Context, r *Run) error {
		var wiped *Bookie
		if !r.Wait(ctx, r.Jitter(2*time.Second, 5*time.Second)) {
			return nil
		}
		if wiped = r.pickBookie(ctx); wiped == nil {
			return errors.New("no bookie to wipe")
		}
		name := "wipe " + wiped.Proc.Name()
		r.Start(name)
		if err := wiped.Proc.Kill(); err != nil {
			return err
		}
		if err := wiped.Proc.Wipe(); err != nil {
			return err
		}
		r.Wait(ctx, r.Jitter(time.Second, 3*time.Second))
		hctx, cancel := healCtx(ctx)
		err := r.RestartBookie(hctx, wiped) // refused, then replaced
		cancel()
		if err != nil {
			return err
		}
		r.Stop(name)
		// Other bookies die and come back, so recoveries and ensemble
		// changes meet the new identity at the old address.
		for r.Wait(ctx, r.Jitter(3*time.Second, 6*time.Second)) {
			if err := r.killAndRestartBookie(ctx, wiped); err != nil {
				return err
			}
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "coordinated-crash",
	Summary: "SIGKILL every process at once (etcd, bookies, agents), restart all on the same directories: " +
		"the fsync-before-ack proof",
	Guarantees: "G1 (every acknowledged record survives a whole-cluster crash), G8",
	Bug:        "ack-before-fsync",
	// A longer group-commit wait keeps records queued before their write
	// for longer: no effect on a correct bookie, a wider window for the
	// ack-before-fsync bug.
	Cluster: func(c *ClusterConfig) { c.BookieArgs = []string{"--journal-max-group-wait", "20ms"} },
	Nemesis: func(ctx context.Context, r *Run) error {
		for r.Wait(ctx, r.Jitter(3*time.Second, 6*time.Second)) {
			procs := r.C.Sup.Processes()
			r.Start("crash everything")
			var wg sync.WaitGroup
			for _, p := range procs {
				if p.Running() {
					wg.Go(func() { _ = p.Kill() })
				}
			}
			wg.Wait()
			r.Wait(ctx, r.Jitter(500*time.Millisecond, 2*time.Second))
			hctx, cancel := healCtx(ctx)
			err := r.HealAll(hctx) // restarts everything and records the heal
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "roll-truncate",
	Summary: "small segments (32 KiB), truncation every ~2 s and a collector every second, with slow readers " +
		"lagging in old segments, while bookies are killed",
	Guarantees: "G1 with truncation, G6 across segment boundaries and truncated data, G7 (truncation monotonic)",
	Cluster: func(c *ClusterConfig) {
		c.Bookies = 4
		c.SegmentRollBytes = 32 << 10
		c.GCInterval = time.Second
	},
	Workload: func(w *WorkloadConfig) {
		w.TruncateEvery = 2 * time.Second
		w.TruncateKeep = 300
		w.SlowReaders = 2
		w.SlowReaderDelay = 30 * time.Millisecond
	},
	Nemesis: func(ctx context.Context, r *Run) error {
		for r.Wait(ctx, r.Jitter(4*time.Second, 8*time.Second)) {
			if err := r.killAndRestartBookie(ctx); err != nil {
				return err
			}
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "partition-flap",
	Summary: "random link faults that come and go every 1-5 s: one-way drops, black holes and 50-150 ms delays " +
		"between agents, bookies and etcd",
	Guarantees: "G1-G7 under arbitrary partitions, G8 after each heal",
	Cluster:    func(c *ClusterConfig) { c.Bookies = 4; c.Owners = 3 },
	Nemesis: func(ctx context.Context, r *Run) error {
		var clients, servers []string
		for _, a := range r.C.Owners {
			clients = append(clients, a.Name)
		}
		for _, b := range r.C.Bookies {
			clients = append(clients, b.Proc.Name())
			servers = append(servers, b.Proc.Name())
		}
		servers = append(servers, r.EtcdNames()...)
		for r.Wait(ctx, r.Jitter(time.Second, 3*time.Second)) {
			src := clients[r.Rng.IntN(len(clients))]
			dst := servers[r.Rng.IntN(len(servers))]
			if src == dst {
				continue
			}
			var f nemesis.Fault
			switch r.Rng.IntN(4) {
			case 0:
				f = nemesis.Blackhole
			case 1:
				f = nemesis.Fault{DropTx: true}
			case 2:
				f = nemesis.Fault{DropRx: true}
			default:
				f = nemesis.Fault{Delay: 50 * time.Millisecond, Jitter: 100 * time.Millisecond}
			}
			name := fmt.Sprintf("%s->%s %s", src, dst, f)
			r.Start(name)
			r.C.Net.SetLink(src, dst, f)
			r.Wait(ctx, r.Jitter(time.Second, 5*time.Second))
			r.C.Net.SetLink(src, dst, nemesis.Fault{})
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "fence-drop",
	Summary: "BookKeeper #2614: the hot log's owner A is cut from etcd and its lock is deleted (a forced release) " +
		"while its last adds are slow to reach two bookies; B takes over at once, but its fence request to one " +
		"bookie and its recovery reads from another are lost; A's late adds then reach the bookie whose fence was lost",
	Guarantees: "G5 (recovery reads must fence; leases are only hints), G1",
	Bug:        "recovery-reads-do-not-fence",
	Cluster:    func(c *ClusterConfig) { c.AgentAddTimeout = 30 * time.Second },
	Workload: func(w *WorkloadConfig) {
		w.Logs = 2
		w.ConcentrateLog0 = 8
		w.OpTimeout = 10 * time.Second
	},
	Nemesis: func(ctx context.Context, r *Run) error {
		const delayZ, delayY = 700 * time.Millisecond, 1500 * time.Millisecond
		for r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second)) {
			log := logName(0)
			a := r.Owner(ctx, log)
			ens := r.Ensemble(ctx, log)
			if a == nil || len(ens) != 3 {
				continue
			}
			bs := r.Others(a)
			b := bs[r.Rng.IntN(len(bs))]
			r.Rng.Shuffle(len(ens), func(i, j int) { ens[i], ens[j] = ens[j], ens[i] })
			x, y, z := ens[0], ens[1], ens[2]
			name := fmt.Sprintf("fence-drop: %s loses %s to %s; %s loses the fence, %s the recovery reads",
				a.Name, log, b.Name, z.Proc.Name(), x.Proc.Name())
			r.Start(name)
			// A's adds reach X at once, Z after delayZ, Y after delayY.
			r.C.Net.SetLink(a.Name, y.Front.Name(), nemesis.Fault{Delay: delayY})
			r.C.Net.SetLink(a.Name, z.Front.Name(), nemesis.Fault{Delay: delayZ})
			err := r.Detour(z, b.Name, func(req *bookiepb.Request) cluster.Verdict {
				if rd := req.GetRead(); rd != nil && rd.EntryId == -1 && rd.Fence {
					return cluster.Drop
				}
				return cluster.Pass
			})
			if err == nil {
				err = r.Detour(x, b.Name, func(req *bookiepb.Request) cluster.Verdict {
					if rd := req.GetRead(); rd != nil && rd.EntryId >= 0 {
						return cluster.Drop
					}
					return cluster.Pass
				})
			}
			if err != nil {
				return err
			}
			r.Wait(ctx, 1500*time.Millisecond) // adds in flight on the slow links
			// No new appends: A's only traffic is the adds in flight, so
			// nothing but Y's late refusal can tell A it was fenced.
			r.W.Hold(0)
			hctx, cancel := healCtx(ctx)
			r.Cut(a.Name, r.EtcdNames()...)
			if err := r.C.StealLock(hctx, log); err != nil {
				r.Note("steal the lock of %s: %v", log, err)
			}
			if !r.AcquireUntil(hctx, b, log, 10*time.Second) {
				r.Note("%s did not take %s over from %s", b.Name, log, a.Name)
			}
			pause(hctx, delayY+time.Second) // A's late adds land; their answers reach A
			r.W.Release(0)
			cancel()
			r.removeDetours()
			for _, s := range append(r.EtcdNames(), y.Front.Name(), z.Front.Name()) {
				r.C.Net.SetLink(a.Name, s, nemesis.Fault{})
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "ensemble-change-etcd-stall",
	Summary: "BookKeeper #1591: the hot log's owner A is cut from etcd while two bookies of its ensemble die, so its " +
		"ensemble change cannot be persisted; A dies, the bookies come back and B recovers from the old metadata",
	Guarantees: "G1 (no ack on an ensemble metadata does not know), G7",
	Bug:        "ack-before-ensemble-cas",
	Cluster: func(c *ClusterConfig) {
		c.Bookies = 5
		c.AgentAddTimeout = 30 * time.Second
	},
	Workload: func(w *WorkloadConfig) { w.Logs = 2; w.ConcentrateLog0 = 6 },
	Nemesis: func(ctx context.Context, r *Run) error {
		ttl := r.C.cfg.SessionTTL
		for r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second)) {
			log := logName(0)
			a := r.Owner(ctx, log)
			ens := r.Ensemble(ctx, log)
			if a == nil || len(ens) != 3 {
				continue
			}
			r.Rng.Shuffle(len(ens), func(i, j int) { ens[i], ens[j] = ens[j], ens[i] })
			x, y, z := ens[0], ens[1], ens[2]
			name := fmt.Sprintf("etcd stall: %s cut from etcd, %s and %s killed, %s slow", a.Name, x.Proc.Name(), y.Proc.Name(), z.Proc.Name())
			r.Start(name)
			r.C.Net.SetLink(a.Name, z.Front.Name(), nemesis.Fault{Delay: 6 * time.Second})
			r.Wait(ctx, time.Second)
			r.Cut(a.Name, r.EtcdNames()...)
			var wg sync.WaitGroup
			wg.Go(func() { _ = x.Proc.Kill() })
			wg.Go(func() { _ = y.Proc.Kill() })
			wg.Wait()
			hctx, cancel := healCtx(ctx)
			pause(hctx, 1200*time.Millisecond) // the ensemble change runs; its CAS cannot land
			_ = a.Proc.Kill()
			wg.Go(func() { _ = r.RestartBookie(hctx, x) })
			wg.Go(func() { _ = r.RestartBookie(hctx, y) })
			wg.Wait()
			for _, e := range r.EtcdNames() {
				r.C.Net.SetLink(a.Name, e, nemesis.Fault{})
			}
			r.C.Net.SetLink(a.Name, z.Front.Name(), nemesis.Fault{})
			others := r.Others(a)
			if !r.AcquireUntil(hctx, others[r.Rng.IntN(len(others))], log, 4*ttl+10*time.Second) {
				r.Note("no agent took %s over after %s died", log, a.Name)
			}
			err := a.Proc.Restart(hctx)
			cancel()
			if err != nil {
				return err
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "concurrent-recoveries",
	Summary: "the owner is paused; two agents race to take over; the winner is paused in the middle of its " +
		"recovery (its links slowed) and the third recovers the same segments; then both resume",
	Guarantees: "G5, G7 (one CAS wins; a completed segment never changes)",
	Cluster:    func(c *ClusterConfig) { c.Owners = 3; c.AgentAddTimeout = 10 * time.Second },
	Workload:   func(w *WorkloadConfig) { w.ConcentrateLog0 = 4; w.OpTimeout = 3 * time.Second },
	Nemesis: func(ctx context.Context, r *Run) error {
		ttl := r.C.cfg.SessionTTL
		for r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second)) {
			log := logName(0)
			a := r.Owner(ctx, log)
			if a == nil {
				continue
			}
			rivals := r.Others(a)
			name := fmt.Sprintf("concurrent recoveries of %s (owner %s paused)", log, a.Name)
			r.Start(name)
			for _, x := range rivals {
				for _, b := range r.C.Bookies {
					r.C.Net.SetLink(x.Name, b.Front.Name(), nemesis.Fault{Delay: 100 * time.Millisecond})
				}
			}
			if err := a.Proc.Pause(); err != nil {
				return err
			}
			hctx, cancel := healCtx(ctx)
			rctx, stopRace := context.WithCancel(hctx)
			var wg sync.WaitGroup
			for _, x := range rivals {
				wg.Go(func() { r.AcquireUntil(rctx, x, log, 4*ttl+5*time.Second) })
			}
			// Pause the first rival that gets the lock: it is then in the
			// middle of recovering the paused owner's segment.
			var winner *Owner
			waitUntil(hctx, 4*ttl+5*time.Second, func() bool {
				o := r.Owner(hctx, log)
				if o != nil && o != a {
					winner = o
					return true
				}
				return false
			})
			if winner != nil {
				_ = winner.Proc.Pause()
				third := rivals[0]
				if third == winner {
					third = rivals[1]
				}
				if r.WaitOwner(hctx, log, 4*ttl+5*time.Second, func(o *Owner) bool { return o == third }) != third {
					r.Note("%s did not take %s over from the paused %s", third.Name, log, winner.Name)
				}
				_ = winner.Proc.Resume()
			}
			stopRace()
			wg.Wait()
			_ = a.Proc.Resume()
			cancel()
			for _, x := range rivals {
				for _, b := range r.C.Bookies {
					r.C.Net.SetLink(x.Name, b.Front.Name(), nemesis.Fault{})
				}
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "reader-tail-crash",
	Summary: "tailing readers close behind the writer while two bookies answer the owner slowly; the owner and " +
		"the fast bookie die together, so recovery seals the segment before entries only that bookie had",
	Guarantees: "G6 (readers never read past the LAC or a sealed end), G4",
	Bug:        "reader-past-lac",
	HarnessBug: true,
	Cluster:    func(c *ClusterConfig) { c.AgentAddTimeout = 10 * time.Second },
	Workload:   func(w *WorkloadConfig) { w.Logs = 2; w.ConcentrateLog0 = 6; w.Readers = 6 },
	Nemesis: func(ctx context.Context, r *Run) error {
		ttl := r.C.cfg.SessionTTL
		for r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second)) {
			log := logName(0)
			a := r.Owner(ctx, log)
			ens := r.Ensemble(ctx, log)
			if a == nil || len(ens) != 3 {
				continue
			}
			r.Rng.Shuffle(len(ens), func(i, j int) { ens[i], ens[j] = ens[j], ens[i] })
			x, y, z := ens[0], ens[1], ens[2]
			name := fmt.Sprintf("crash %s and %s with %s, %s slow", a.Name, x.Proc.Name(), y.Proc.Name(), z.Proc.Name())
			r.Start(name)
			for _, b := range []*Bookie{y, z} {
				r.C.Net.SetLink(a.Name, b.Front.Name(), nemesis.Fault{Delay: 300 * time.Millisecond})
			}
			r.Wait(ctx, 2*time.Second)
			var wg sync.WaitGroup
			wg.Go(func() { _ = a.Proc.Kill() })
			wg.Go(func() { _ = x.Proc.Kill() })
			wg.Wait()
			hctx, cancel := healCtx(ctx)
			others := r.Others(a)
			if !r.AcquireUntil(hctx, others[r.Rng.IntN(len(others))], log, 4*ttl+10*time.Second) {
				r.Note("no agent took %s over after %s died", log, a.Name)
			}
			for _, b := range []*Bookie{y, z} {
				r.C.Net.SetLink(a.Name, b.Front.Name(), nemesis.Fault{})
			}
			err := r.RestartBookie(hctx, x)
			if err == nil {
				err = a.Proc.Restart(hctx)
			}
			cancel()
			if err != nil {
				return err
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "disk-full",
	Summary: "one bookie has a small disk quota and goes read-only under 1 KiB records; truncation and " +
		"collection free space again; other bookies are killed now and then",
	Guarantees: "G1, G4/P9 (writes to a full bookie fail cleanly, ensembles move away), G8",
	Cluster: func(c *ClusterConfig) {
		c.Bookies = 4
		c.SegmentRollBytes = 256 << 10
		c.GCInterval = time.Second
		c.BookieArgsFor = func(i int) []string {
			if i != 0 {
				return nil
			}
			return []string{"--disk-quota-bytes", "12000000", "--journal-file-size-bytes", "1048576",
				"--disk-check-interval", "250ms", "--gc-interval", "2s", "--entry-log-max-file-size-bytes", "1048576"}
		}
	},
	Workload: func(w *WorkloadConfig) {
		w.PayloadPad = 1024
		w.TruncateEvery = 3 * time.Second
		w.TruncateKeep = 1000
	},
	Nemesis: func(ctx context.Context, r *Run) error {
		for r.Wait(ctx, r.Jitter(6*time.Second, 10*time.Second)) {
			b := r.pickBookie(ctx, r.C.Bookies[0])
			if b == nil {
				continue
			}
			name := "kill " + b.Proc.Name()
			r.Start(name)
			_ = b.Proc.Kill()
			r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second))
			hctx, cancel := healCtx(ctx)
			err := r.RestartBookie(hctx, b)
			cancel()
			if err != nil {
				return err
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "corrupt-bookie",
	Summary: "BookKeeper #2908: the hot log's owner and one bookie die with acknowledged entries past the LAC; a " +
		"second bookie's copies of them are bit-flipped on disk; recovery runs while the first bookie is down",
	Guarantees: "G1 (a checksum error is not \"no such entry\"), G4 (corrupt data is never delivered)",
	Bug:        "io-error-as-no-entry",
	Cluster: func(c *ClusterConfig) {
		c.AgentAddTimeout = 30 * time.Second
		c.BookieArgs = []string{"--flush-interval", "100ms"}
	},
	Workload: func(w *WorkloadConfig) { w.Logs = 2; w.ConcentrateLog0 = 6 },
	Nemesis: func(ctx context.Context, r *Run) error {
		ttl := r.C.cfg.SessionTTL
		for r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second)) {
			log := logName(0)
			a := r.Owner(ctx, log)
			ens := r.Ensemble(ctx, log)
			ledgerID := r.openLedger(ctx, log)
			if a == nil || len(ens) != 3 || ledgerID < 0 {
				continue
			}
			r.Rng.Shuffle(len(ens), func(i, j int) { ens[i], ens[j] = ens[j], ens[i] })
			x, y, z := ens[0], ens[1], ens[2]
			name := fmt.Sprintf("corrupt %s's tail of ledger %d; %s and %s down, %s behind", x.Proc.Name(), ledgerID, a.Name, y.Proc.Name(), z.Proc.Name())
			r.Start(name)
			// Z lags, so the newest entries are acknowledged by X and Y only.
			r.C.Net.SetLink(a.Name, z.Front.Name(), nemesis.Fault{Delay: 3 * time.Second})
			r.Wait(ctx, 1500*time.Millisecond)
			hctx, cancel := healCtx(ctx)
			var wg sync.WaitGroup
			wg.Go(func() { _ = a.Proc.Kill() })
			wg.Go(func() { _ = y.Proc.Kill() })
			wg.Wait()
			pause(hctx, 600*time.Millisecond) // X checkpoints the tail into its entry log
			_ = x.Proc.Kill()
			ids, err := corruptLastEntries(x.Dir, ledgerID, 64)
			if err != nil {
				cancel()
				return err
			}
			if len(ids) > 0 {
				r.Note("%s: corrupted entries %d..%d of ledger %d", x.Proc.Name(), ids[0], ids[len(ids)-1], ledgerID)
			}
			if err := r.RestartBookie(hctx, x); err != nil {
				cancel()
				return err
			}
			r.C.Net.SetLink(a.Name, z.Front.Name(), nemesis.Fault{})
			others := r.Others(a)
			b := others[r.Rng.IntN(len(others))]
			took := make(chan bool, 1)
			go func() { took <- r.AcquireUntil(hctx, b, log, 4*ttl+20*time.Second) }()
			// Y stays down for a while: a correct recovery must wait for it.
			pause(hctx, 4*time.Second)
			errY := r.RestartBookie(hctx, y)
			if !<-took {
				r.Note("%s did not take %s over", b.Name, log)
			}
			errA := a.Proc.Restart(hctx)
			cancel()
			if err := errors.Join(errY, errA); err != nil {
				return err
			}
			r.Stop(name)
		}
		return nil
	},
})

var _ = register(&Scenario{
	Name: "hung-bookie-recovery",
	Summary: "SIGSTOP one bookie of the hot log's ensemble, then SIGKILL the log's owner: another owner must " +
		"recover the segment (fence and read) from the others while the bookie stays hung; SIGCONT it after",
	Guarantees: "G5 (recovery needs Qw-Qa+1 answers, so one hung bookie cannot block it: BookKeeper #1067), G1",
	Cluster:    func(c *ClusterConfig) { c.Owners, c.Bookies = 3, 4 },
	Workload:   func(w *WorkloadConfig) { w.ConcentrateLog0 = 4 },
	Nemesis: func(ctx context.Context, r *Run) error {
		log := logName(0)
		var took []time.Duration
		for r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second)) {
			a := r.Owner(ctx, log)
			ens := r.Ensemble(ctx, log)
			if a == nil || !a.Proc.Running() || len(ens) == 0 {
				continue
			}
			z := ens[r.Rng.IntN(len(ens))]
			if !z.Proc.Running() {
				continue
			}
			others := r.Others(a)
			b := others[r.Rng.IntN(len(others))]
			name := fmt.Sprintf("hang %s, kill owner %s of %s", z.Proc.Name(), a.Name, log)
			r.Start(name)
			if err := z.Proc.Pause(); err != nil {
				return err
			}
			if err := a.Proc.Kill(); err != nil {
				_ = z.Proc.Resume()
				return err
			}
			hctx, cancel := healCtx(ctx)
			start := time.Now()
			// b is asked to take over; through the proxy tier the
			// workload's clients may make another owner do it first.
			var by *Owner
			ok := waitUntil(hctx, hungRecoveryBound, func() bool {
				_ = r.Acquire(hctx, b, log)
				by = r.Owner(hctx, log)
				return by != nil && by != a
			})
			if ok {
				took = append(took, time.Since(start))
			}
			resumeErr := z.Proc.Resume()
			restartErr := a.Proc.Restart(hctx)
			cancel()
			if ctx.Err() != nil {
				break
			}
			if !ok {
				return fmt.Errorf("%w: no owner took %s over from %s within %v while %s was hung: "+
					"recovery waits for a hung bookie", ErrStuck, log, a.Name, hungRecoveryBound, z.Proc.Name())
			}
			if err := errors.Join(resumeErr, restartErr); err != nil {
				return err
			}
			r.Stop(name)
		}
		if len(took) > 0 {
			slices.Sort(took)
			r.Note("takeovers with a hung bookie: %d, median %v, max %v", len(took), took[len(took)/2].Round(time.Millisecond),
				took[len(took)-1].Round(time.Millisecond))
		}
		return nil
	},
})

// hungRecoveryBound is how long a takeover may take while one bookie of
// the ensemble hangs: the lease, fencing and recovery reads on a loaded
// machine, far below "until the bookie comes back" (never, here).
const hungRecoveryBound = 30 * time.Second
