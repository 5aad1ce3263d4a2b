package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/checker"
	"github.com/dlog-io/dlog/internal/history"
	"github.com/dlog-io/dlog/internal/nemesis"
)

// RunConfig is one run of one scenario.
type RunConfig struct {
	Scenario *Scenario
	// Binary is the dlog binary (built with -tags dlogbugs when Bugs is
	// set).
	Binary string
	// Dir is the run's directory: data, logs, history, drain, report.
	Dir string
	// Duration is how long the nemesis runs. Default 60 s.
	Duration time.Duration
	// Seed makes the nemesis's and the clients' choices reproducible (the
	// system's own timing is not). 0: random.
	Seed uint64
	// Bugs are switched on in every process (and, for a scenario whose
	// bug lives in the harness's readers, in the harness).
	Bugs []string
	// Target is "embedded" (writer agents; default) or "proxy" (dlog
	// proxies and the client package).
	Target string
	// Idempotent makes the proxy target's client tag and retry writes
	// (producer id + sequence); the checker then counts every duplicate
	// as a violation.
	Idempotent bool
	// Logger receives progress; nil discards.
	Logger *slog.Logger
}

// RunResult is the outcome of one run.
type RunResult struct {
	Scenario string        `json:"scenario"`
	Target   string        `json:"target"`
	Seed     uint64        `json:"seed"`
	Bugs     []string      `json:"bugs,omitempty"`
	Dir      string        `json:"dir"`
	Duration time.Duration `json:"duration_ns"`
	// Err is set when the run could not be carried out (not a violation).
	Err string `json:"error,omitempty"`
	// Report is the checker's verdict on the history and drain.
	Report *checker.Report `json:"report,omitempty"`
	// Faults is the number of faults injected; Notes what the nemesis
	// observed (e.g. a wiped bookie refusing to start as its old identity).
	Faults int      `json:"faults"`
	Notes  []string `json:"notes,omitempty"`
	// Recovery times: for every heal, how long until every log had an
	// acknowledged append again (RecoveryMax is the worst; Unrecovered
	// counts heals after which some log never did before the run ended).
	Heals        int           `json:"heals"`
	RecoveryMax  time.Duration `json:"recovery_max_ns"`
	RecoveryMean time.Duration `json:"recovery_mean_ns"`
	Unrecovered  int           `json:"unrecovered"`
	// MaxGap is the longest time any log went without an acknowledged
	// append between its first and its last one (how long a fault made
	// a log unwritable), and GapLog that log.
	MaxGap time.Duration `json:"max_gap_ns"`
	GapLog string        `json:"gap_log,omitempty"`
	// Liveness is false when, after the final heal, some log got no
	// acknowledged append within the liveness window (G8).
	Liveness bool `json:"liveness"`
	// Metadata lists violations of the metadata invariants (G7) seen by
	// the watch on every log.
	Metadata []string `json:"metadata_violations,omitempty"`
}

// Failed reports whether the run found a violation or could not run.
func (r *RunResult) Failed() bool {
	return r.Err != "" || r.Report == nil || !r.Report.Valid || !r.Liveness || len(r.Metadata) > 0
}

// Acknowledged returns the number of acknowledged appends.
func (r *RunResult) Acknowledged() int {
	if r.Report == nil {
		return 0
	}
	return r.Report.Stats.Total.AppendsOK
}

// Indeterminate returns the number of indeterminate and pending appends.
func (r *RunResult) Indeterminate() int {
	if r.Report == nil {
		return 0
	}
	return r.Report.Stats.Total.AppendsInfo + r.Report.Stats.Total.AppendsPending
}

// Run is a scenario in progress: what a nemesis works with.
type Run struct {
	C     *Cluster
	W     *Workload
	Rec   *history.Recorder
	Rng   *rand.Rand
	Log   *slog.Logger
	cfg   RunConfig
	http  *http.Client // nemesis calls to agents
	proxy *proxyTarget // target "proxy": pinned clients for takeovers
	mu    struct {
		sync.Mutex
		open    map[string]bool // faults started and not healed
		faults  int
		notes   []string
		detours []detour
	}
}

// Start records the start of fault name.
func (r *Run) Start(name string) {
	r.mu.Lock()
	r.mu.open[name] = true
	r.mu.faults++
	r.mu.Unlock()
	_ = r.Rec.NemesisStart(name)
	r.Log.Info("fault", "start", name)
}

// Stop records that fault name was healed.
func (r *Run) Stop(name string) {
	r.mu.Lock()
	delete(r.mu.open, name)
	r.mu.Unlock()
	_ = r.Rec.NemesisStop(name)
	r.Log.Info("fault", "stop", name)
}

// Note records an observation for the report.
func (r *Run) Note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.mu.notes) < 50 {
		r.mu.notes = append(r.mu.notes, s)
	}
	r.Log.Info("note", "msg", s)
}

// Jitter returns a random duration in [lo, hi).
func (r *Run) Jitter(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(r.Rng.Int64N(int64(hi-lo)))
}

// Wait paces the nemesis: it waits d, or less if ctx ends, and reports
// whether ctx is still live.
func (r *Run) Wait(ctx context.Context, d time.Duration) bool { return pause(ctx, d) }

// HealAll lifts every fault: links healed, paused processes resumed,
// stopped processes restarted (a wiped bookie that refuses its old
// identity is replaced), and every open fault recorded as healed.
func (r *Run) HealAll(ctx context.Context) error {
	for i := range r.W.Logs() {
		r.W.Release(i)
	}
	r.removeDetours()
	r.C.Net.HealAll()
	var errs []error
	for _, p := range r.C.Sup.Processes() {
		if p.Paused() {
			errs = append(errs, p.Resume())
		}
	}
	var wg sync.WaitGroup
	var emu sync.Mutex
	restart := func(f func() error) {
		wg.Go(func() {
			if err := f(); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	// etcd first (others need it), then bookies, then agents.
	for _, e := range r.C.Etcd {
		if !e.Running() {
			restart(func() error { return e.Restart(ctx) })
		}
	}
	wg.Wait()
	for _, b := range r.C.Bookies {
		if !b.Proc.Running() {
			restart(func() error { return r.RestartBookie(ctx, b) })
		}
	}
	wg.Wait()
	for _, a := range r.C.Owners {
		if !a.Proc.Running() {
			restart(func() error { return a.Proc.Restart(ctx) })
		}
	}
	wg.Wait()
	// Every bookie back in the registry: a restarted bookie waits for its
	// previous registration's lease to end before it registers again.
	if !waitUntil(ctx, 30*time.Second, func() bool { return r.registered(ctx) }) {
		errs = append(errs, errors.New("not every bookie registered again after the heal"))
	}
	r.mu.Lock()
	open := make([]string, 0, len(r.mu.open))
	for f := range r.mu.open {
		open = append(open, f)
	}
	r.mu.Unlock()
	sort.Strings(open)
	for _, f := range open {
		r.Stop(f)
	}
	return errors.Join(errs...)
}

// registered reports whether every running bookie is in the registry.
func (r *Run) registered(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	bs, _, err := r.C.Store.ListBookies(cctx)
	if err != nil {
		return false
	}
	ids := map[string]bool{}
	for _, b := range bs {
		ids[b.ID] = true
	}
	for _, b := range r.C.Bookies {
		if b.Proc.Running() && !ids[b.ID] {
			return false
		}
	}
	return true
}

// RestartBookie restarts a stopped bookie; if it refuses to start because
// its disk was wiped (its cookie no longer matches), that is noted and the
// bookie is replaced by a new identity at the same address.
func (r *Run) RestartBookie(ctx context.Context, b *Bookie) error {
	err := r.C.RestartBookie(ctx, b)
	if err == nil {
		return nil
	}
	if !errors.Is(err, nemesis.ErrExitedEarly) {
		return err
	}
	r.Note("%s (id %s) refused to restart: %s", b.Proc.Name(), b.ID, firstLine(lastErrorLine(err.Error())))
	return r.C.ReplaceBookie(ctx, b)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// lastErrorLine picks the child's own error line ("dlog: ...") out of an
// ErrExitedEarly message carrying the log's tail.
func lastErrorLine(s string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "dlog: ") {
			return lines[i]
		}
	}
	return s
}

// Execute runs one scenario end to end and checks it.
func Execute(ctx context.Context, cfg RunConfig) *RunResult {
	sc := cfg.Scenario
	if cfg.Duration == 0 {
		cfg.Duration = 60 * time.Second
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("scenario", sc.Name)
	if cfg.Target == "" {
		cfg.Target = TargetEmbedded
	}
	res := &RunResult{Scenario: sc.Name, Target: cfg.Target, Seed: cfg.Seed, Bugs: cfg.Bugs, Dir: cfg.Dir}
	start := time.Now()
	defer func() { res.Duration = time.Since(start) }()
	if err := execute(ctx, cfg, logger, res); err != nil {
		res.Err = err.Error()
		logger.Error("run failed", "err", err)
	}
	if b, err := json.MarshalIndent(res, "", "  "); err == nil {
		_ = os.WriteFile(filepath.Join(cfg.Dir, "result.json"), b, 0o644)
	}
	return res
}

// Phase bounds of a run after the nemesis stopped.
const (
	setupTimeout    = 2 * time.Minute
	warmupTimeout   = 60 * time.Second
	healTimeout     = 2 * time.Minute
	livenessWindow  = 60 * time.Second
	catchUpTimeout  = 30 * time.Second
	sealTimeout     = 60 * time.Second
	drainTimeout    = 2 * time.Minute
	afterHealWrites = 2 * time.Second
)

func execute(ctx context.Context, cfg RunConfig, logger *slog.Logger, res *RunResult) error {
	sc := cfg.Scenario
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return err
	}
	if sc.HarnessBug && slices.Contains(cfg.Bugs, sc.Bug) {
		if err := requireHarnessBugs([]string{sc.Bug}); err != nil {
			return err
		}
		defer func() { _ = bugs.Set(sc.Bug, false) }()
	}
	ccfg := ClusterConfig{Dir: cfg.Dir, Binary: cfg.Binary, Bugs: cfg.Bugs, Logger: logger}
	wcfg := WorkloadConfig{}
	if sc.Cluster != nil {
		sc.Cluster(&ccfg)
	}
	ccfg.Target = cfg.Target
	if sc.Workload != nil {
		sc.Workload(&wcfg)
	}
	wcfg.defaults()
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	c, err := StartCluster(sctx, ccfg)
	cancel()
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	defer c.Close()
	w0 := NewWorkload(wcfg, nil, nil, cfg.Seed)
	for _, l := range w0.Logs() {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.NS.CreateLog(lctx, l, namespaceLogOptions())
		cancel()
		if err != nil {
			return fmt.Errorf("create log %s: %w", l, err)
		}
	}

	histPath := filepath.Join(cfg.Dir, "history.jsonl")
	hf, err := os.Create(histPath)
	if err != nil {
		return err
	}
	defer hf.Close()
	t0 := time.Now()
	clock := func() int64 { return int64(time.Since(t0)) }
	rec := history.NewRecorder(hf, history.RecorderConfig{Clock: clock})
	var target runTarget
	var ptarget *proxyTarget
	if cfg.Target == TargetProxy {
		if ptarget, err = newProxyTarget(ctx, c, wcfg.OpTimeout, cfg.Idempotent); err != nil {
			return fmt.Errorf("client: %w", err)
		}
		target = ptarget
	} else {
		target = newEmbeddedTarget(c, wcfg.OpTimeout)
	}
	defer target.close()
	w := NewWorkload(wcfg, target, rec, cfg.Seed)
	r := &Run{C: c, W: w, Rec: rec, Rng: rand.New(rand.NewPCG(cfg.Seed, 1)), Log: logger, cfg: cfg, proxy: ptarget,
		http: &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{}}}
	defer r.http.CloseIdleConnections()
	r.mu.open = make(map[string]bool)
	mw := startMetaWatch(ctx, c.Store, w.Logs())

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	w.Start(runCtx)
	// Warm-up: every log writable before faults begin.
	if !waitUntil(ctx, warmupTimeout, func() bool { return allLogsOKAfter(w, t0) }) {
		w.StopWriters()
		w.StopReaders()
		return errors.New("cluster not writable before any fault (warm-up)")
	}
	logger.Info("nemesis start", "duration", cfg.Duration)
	nctx, ncancel := context.WithTimeout(ctx, cfg.Duration)
	nerr := sc.Nemesis(nctx, r)
	ncancel()
	if nerr != nil && !errors.Is(nerr, context.DeadlineExceeded) && !errors.Is(nerr, context.Canceled) {
		r.Note("nemesis error: %v", nerr)
	}
	if errors.Is(nerr, ErrFaultNotInjected) {
		w.StopWriters()
		w.StopReaders()
		mw.stop()
		return nerr
	}
	hctx, hcancel := context.WithTimeout(ctx, healTimeout)
	herr := r.HealAll(hctx)
	hcancel()
	if herr != nil {
		r.Note("heal: %v", herr)
	}
	healed := time.Now()
	res.Liveness = waitUntil(ctx, livenessWindow, func() bool { return allLogsOKAfter(w, healed) })
	if !res.Liveness {
		r.Note("liveness: some log had no acknowledged append within %v of the final heal", livenessWindow)
	}
	if errors.Is(nerr, ErrStuck) {
		res.Liveness = false // noted above as the nemesis error
	}
	pause(ctx, afterHealWrites)
	w.StopWriters()
	waitUntil(ctx, catchUpTimeout, w.ReadersCaughtUp)
	w.StopReaders()

	sealCtx, sealCancel := context.WithTimeout(ctx, sealTimeout)
	for _, l := range w.Logs() {
		if err := target.Seal(sealCtx, l); err != nil {
			r.Note("seal %s: %v", l, err)
		}
	}
	sealCancel()
	if err := rec.Close(); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	drainPath := filepath.Join(cfg.Dir, "drain.jsonl")
	dctx, dcancel := context.WithTimeout(ctx, drainTimeout)
	// A segment's epoch in the drain is named as the target names the
	// epochs of its acknowledgements.
	segEpoch := func(writerID string, _ int64) string { return writerID }
	if cfg.Target == TargetProxy {
		segEpoch = proxyEpoch
	}
	err = drainLogs(dctx, c.Store, c.NS, w.Logs(), drainPath, clock, segEpoch)
	dcancel()
	if err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	res.Metadata = mw.stop()
	rep, err := checker.CheckFiles(histPath, drainPath, checker.Options{
		MaxExamples: 5, VisualizationPath: filepath.Join(cfg.Dir, "porcupine.html"),
		IdempotentWrites: cfg.Target == TargetProxy && cfg.Idempotent,
	})
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	res.Report = &rep
	if res.Failed() {
		dumpStacks(c)
	}
	r.mu.Lock()
	res.Faults, res.Notes = r.mu.faults, append([]string(nil), r.mu.notes...)
	r.mu.Unlock()
	// Coverage of FENCE and OWNER: without writer epochs both are vacuous.
	res.Notes = append(res.Notes, fmt.Sprintf("FENCE/OWNER: %d writer epochs checked", rep.Stats.Total.Epochs))
	recovery(histPath, res)
	return nil
}

// dumpStacks makes every running agent and bookie write its goroutine
// stacks to its log (SIGQUIT) before the cluster is torn down, so a stuck
// component can be diagnosed from a kept run.
func dumpStacks(c *Cluster) {
	var wg sync.WaitGroup
	for _, a := range c.Owners {
		wg.Go(func() { _ = a.Proc.Quit(10 * time.Second) })
	}
	for _, b := range c.Bookies {
		wg.Go(func() { _ = b.Proc.Quit(10 * time.Second) })
	}
	wg.Wait()
}

func allLogsOKAfter(w *Workload, t time.Time) bool {
	for i := range w.Logs() {
		if !w.LastOK(i).After(t) {
			return false
		}
	}
	return true
}

// waitUntil polls cond until it holds or d passes; it reports whether it
// held. Polling a condition, not sleeping to synchronise.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || !pause(ctx, 50*time.Millisecond) {
			return cond()
		}
	}
}

// recovery fills the recovery times from the history: for every heal
// (nemesis-stop), the time until every log had an acknowledged append
// completed after it.
func recovery(histPath string, res *RunResult) {
	f, err := os.Open(histPath)
	if err != nil {
		return
	}
	defer f.Close()
	h, err := history.Load(f)
	if err != nil {
		return
	}
	logs := map[string]bool{}
	var heals []int64
	for _, e := range h.Events {
		switch {
		case e.Kind == history.NemesisStop:
			heals = append(heals, e.Time)
		case e.Kind == history.Append && e.Type == history.Invoke:
			logs[e.Log] = true
		}
	}
	var okTimes = map[string][]int64{}
	for _, e := range h.Events {
		if e.Kind == history.Append && e.Type == history.OK {
			okTimes[e.Log] = append(okTimes[e.Log], e.Time)
		}
	}
	for l, ts := range okTimes {
		for i := 1; i < len(ts); i++ {
			if g := time.Duration(ts[i] - ts[i-1]); g > res.MaxGap {
				res.MaxGap, res.GapLog = g, l
			}
		}
	}
	var sum time.Duration
	for _, hl := range heals {
		worst := time.Duration(0)
		recovered := true
		for l := range logs {
			ts := okTimes[l]
			i := sort.Search(len(ts), func(i int) bool { return ts[i] >= hl })
			if i == len(ts) {
				recovered = false
				break
			}
			worst = max(worst, time.Duration(ts[i]-hl))
		}
		if !recovered {
			res.Unrecovered++
			continue
		}
		res.Heals++
		sum += worst
		res.RecoveryMax = max(res.RecoveryMax, worst)
	}
	if res.Heals > 0 {
		res.RecoveryMean = sum / time.Duration(res.Heals)
	}
}
