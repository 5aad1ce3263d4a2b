package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/dlog-io/dlog/internal/bugs"
)

// fsyncEIOAfter is how many journal fsyncs of the faulty bookie succeed
// after each of its starts before every further one fails with EIO.
const fsyncEIOAfter = 1000

var _ = register(&Scenario{
	Name: "fsync-eio",
	Summary: "failpoint: one bookie's journal fsyncs fail with EIO after " + strconv.Itoa(fsyncEIOAfter) +
		" (DLOG_FAILPOINTS); it must go read-only without acknowledging the failed writes; it is restarted and " +
		"fails again; another bookie is killed now and then",
	Guarantees: "G1 (an add is acknowledged only once fsynced on Qa bookies), G4, G8 (ensembles move away)",
	Failpoints: true,
	Cluster: func(c *ClusterConfig) {
		c.Bookies = 4
		c.BookieEnvFor = func(i int) []string {
			if i != 0 {
				return nil
			}
			return []string{fmt.Sprintf("%s=%s-after=%d", bugs.FailpointsEnv, bugs.JournalFsyncEIO, fsyncEIOAfter)}
		}
	},
	Nemesis: func(ctx context.Context, r *Run) error {
		b := r.C.Bookies[0]
		mw := &markerWatch{path: r.C.Sup.LogPath(b.Proc.Name())}
		if mw.count(bugs.FailpointArmedMarker) == 0 {
			return fmt.Errorf("%w: %s did not arm failpoint %s (its log has no %q line): build the cluster's dlog "+
				"with -tags dlogbugs and call bugs.WrapFS where the bookie sets up its file system",
				ErrFaultNotInjected, b.Proc.Name(), bugs.JournalFsyncEIO, bugs.FailpointArmedMarker)
		}
		fired, idle := 0, time.Duration(0)
		for ctx.Err() == nil {
			ok := waitUntilEvery(ctx, 15*time.Second, 250*time.Millisecond, func() bool {
				return mw.count(bugs.FailpointFiredMarker) > fired
			})
			if !ok {
				if ctx.Err() != nil {
					break
				}
				if idle += 15 * time.Second; fired == 0 && idle >= 45*time.Second {
					return fmt.Errorf("%w: failpoint %s armed in %s but did not fire within %v", ErrFaultNotInjected,
						bugs.JournalFsyncEIO, b.Proc.Name(), idle)
				}
				// The faulty bookie gets no adds: after its last failure the
				// ensembles moved away from it. Kill another bookie, so that
				// the ensemble changes that follow need it again.
				if err := r.killAndRestartBookie(ctx, b); err != nil {
					return err
				}
				continue
			}
			fired, idle = fired+1, 0
			name := "journal fsync EIO on " + b.Proc.Name()
			r.Start(name)
			// The bookie is read-only now; writes go on with the others,
			// sometimes one of them dies too (Qa−1 of a write set left).
			if r.Rng.IntN(2) == 0 {
				if err := r.killAndRestartBookie(ctx, b); err != nil {
					return err
				}
			} else {
				r.Wait(ctx, r.Jitter(2*time.Second, 5*time.Second))
			}
			_ = b.Proc.Kill()
			hctx, cancel := healCtx(ctx)
			err := r.RestartBookie(hctx, b)
			cancel()
			if err != nil {
				return err
			}
			r.Stop(name)
		}
		if fired == 0 {
			return fmt.Errorf("%w: failpoint %s never fired in %s", ErrFaultNotInjected, bugs.JournalFsyncEIO, b.Proc.Name())
		}
		r.Note("%s: journal fsync failed (EIO) %d times; %d read-only lines", b.Proc.Name(), fired,
			mw.count("read-only for good"))
		return nil
	},
})

// killAndRestartBookie kills a running bookie other than except (one in a
// current ensemble if possible) and restarts it 2-4 s later.
func (r *Run) killAndRestartBookie(ctx context.Context, exclude ...*Bookie) error {
	o := r.pickBookie(ctx, exclude...)
	if o == nil {
		return nil
	}
	kill := "kill " + o.Proc.Name()
	r.Start(kill)
	_ = o.Proc.Kill()
	r.Wait(ctx, r.Jitter(2*time.Second, 4*time.Second))
	hctx, cancel := healCtx(ctx)
	err := r.RestartBookie(hctx, o)
	cancel()
	if err != nil {
		return err
	}
	r.Stop(kill)
	return nil
}

// waitUntilEvery is waitUntil polling every step.
func waitUntilEvery(ctx context.Context, d, step time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || !pause(ctx, step) {
			return cond()
		}
	}
}

// markerWatch counts lines holding a marker in a growing process log,
// reading only what was appended since the last call. Not concurrent.
type markerWatch struct {
	path   string
	off    int64
	tail   []byte         // an unfinished last line
	counts map[string]int // per marker asked for, over complete lines
	lines  [][]byte       // complete lines not yet counted for a marker
	seen   map[string]int // per marker: how many of lines it has counted
}

// count returns how many complete lines of the log so far contain marker.
func (m *markerWatch) count(marker string) int {
	if m.counts == nil {
		m.counts, m.seen = map[string]int{}, map[string]int{}
	}
	m.read()
	for _, l := range m.lines[m.seen[marker]:] {
		if bytes.Contains(l, []byte(marker)) {
			m.counts[marker]++
		}
	}
	m.seen[marker] = len(m.lines)
	return m.counts[marker]
}

// read appends the log's new complete lines that mention a failpoint or a
// read-only bookie (the only lines counted) to m.lines.
func (m *markerWatch) read() {
	f, err := os.Open(m.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(m.off, io.SeekStart); err != nil {
		return
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil || len(data) == 0 {
		return
	}
	m.off += int64(len(data))
	data = append(m.tail, data...)
	i := bytes.LastIndexByte(data, '\n')
	m.tail = append([]byte(nil), data[i+1:]...)
	for l := range bytes.Lines(data[:i+1]) {
		if bytes.Contains(l, []byte("dlog failpoint")) || bytes.Contains(l, []byte("read-only")) {
			m.lines = append(m.lines, bytes.Clone(l))
		}
	}
}

var _ = register(&Scenario{
	Name: "power-loss",
	Summary: "failpoint: every bookie keeps its writes in memory until fsynced (DLOG_FAILPOINTS=" + bugs.LoseUnsynced +
		"), so a SIGKILL loses what a power cut would; one bookie, or every bookie at once, loses power and restarts",
	Guarantees: "G1 (acknowledged = fsynced on Qa bookies: survives losing every unsynced write), G4, G8",
	// A journal that never fsyncs passes every scenario that only kills
	// processes (the page cache survives); this one loses its data.
	Bug:        bugs.JournalSkipFsync,
	Failpoints: true,
	Cluster: func(c *ClusterConfig) {
		// A longer group-commit wait keeps records unsynced for longer:
		// more to lose, nothing a correct bookie acknowledged.
		c.BookieArgs = []string{"--journal-max-group-wait", "20ms"}
		c.BookieEnvFor = func(int) []string { return []string{bugs.FailpointsEnv + "=" + bugs.LoseUnsynced} }
	},
	Nemesis: func(ctx context.Context, r *Run) error {
		for _, b := range r.C.Bookies {
			mw := &markerWatch{path: r.C.Sup.LogPath(b.Proc.Name())}
			if mw.count(bugs.FailpointArmedMarker) == 0 {
				return fmt.Errorf("%w: %s did not arm failpoint %s (its log has no %q line): build the cluster's dlog "+
					"with -tags dlogbugs and call bugs.WrapFS where the bookie sets up its file system",
					ErrFaultNotInjected, b.Proc.Name(), bugs.LoseUnsynced, bugs.FailpointArmedMarker)
			}
		}
		one, all := 0, 0
		for r.Wait(ctx, r.Jitter(3*time.Second, 6*time.Second)) {
			victims := r.C.Bookies
			name := "power loss of every bookie"
			if r.Rng.IntN(2) == 0 {
				b := r.pickBookie(ctx)
				if b == nil {
					continue
				}
				victims, name = []*Bookie{b}, "power loss of "+b.Proc.Name()
				one++
			} else {
				all++
			}
			r.Start(name)
			var wg sync.WaitGroup
			for _, b := range victims {
				if b.Proc.Running() {
					wg.Go(func() { _ = b.Proc.Kill() })
				}
			}
			wg.Wait()
			r.Wait(ctx, r.Jitter(500*time.Millisecond, 2*time.Second))
			hctx, cancel := healCtx(ctx)
			errs := make([]error, len(victims))
			for i, b := range victims {
				wg.Go(func() { errs[i] = r.RestartBookie(hctx, b) })
			}
			wg.Wait()
			cancel()
			if err := errors.Join(errs...); err != nil {
				return err
			}
			r.Stop(name)
		}
		r.Note("power losses: %d of one bookie, %d of every bookie", one, all)
		return nil
	},
})
