package verify

import (
	"context"
	"time"
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
