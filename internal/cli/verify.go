package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/checker"
	"github.com/dlog-io/dlog/internal/nemesis"
	"github.com/dlog-io/dlog/internal/obs"
	"github.com/dlog-io/dlog/internal/verify"
)

func init() { commands = append(commands, newVerifyCmd, newVerifyAgentCmd) }

func newVerifyCmd(e *env) *cobra.Command {
	var (
		scenario, keep, dir, bin, fpBin, logLevel, target string
		bugList                                           []string
		duration                                          time.Duration
		runs                                              int
		seed                                              uint64
		build, keepAll, list, idempotent                  bool
	)
	c := &cobra.Command{
		Use:   "verify [--scenario NAME|all] [--duration 60s] [--runs N] [--seed S] [--keep DIR] [--bug NAME]",
		Short: "Run fault scenarios against a local multi-process cluster and check the histories",
		Long: `Start a small cluster on loopback (etcd members, bookies and writer agents,
each a process of its own, every connection through a fault proxy), drive
writers, readers and truncations against it while a nemesis kills, pauses,
partitions and wipes components, then heal, drain every log and check the
recorded history against dlog's guarantees (see docs/verification.md).

It prints one row per scenario: runs, acknowledged and indeterminate
appends, the count of every violated property and the recovery times
(from each heal to the first acknowledged append on every log). It exits
non-zero on any violation; a failing run keeps its history, drain, process
logs and data directories under --keep (or the work directory).

--bug NAME switches a seeded bug on in every process (the binary is then
built with -tags dlogbugs) and, without --scenario, runs the scenario that
must catch it: the run is expected to FAIL.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if list {
				p := e.printer()
				for _, s := range verify.Scenarios() {
					p.row(map[string]string{"scenario": s.Name, "summary": s.Summary, "guarantees": s.Guarantees, "bug": s.Bug},
						s.Name, s.Bug, s.Summary)
				}
				return p.flush("SCENARIO", "SENSITIVE-TO", "NEMESIS")
			}
			if runs < 1 {
				return Usagef("--runs %d: want at least 1", runs)
			}
			for _, b := range bugList {
				if !slices.Contains(bugs.All, b) {
					return Usagef("--bug %q: known bugs are %s", b, strings.Join(bugs.All, ", "))
				}
			}
			scs, err := pickScenarios(scenario, bugList, c.Flags().Changed("scenario"))
			if err != nil {
				return err
			}
			logger, err := obs.NewLogger(e.stderr, "text", logLevel)
			if err != nil {
				return usageError{err}
			}
			if target != verify.TargetEmbedded && target != verify.TargetProxy {
				return Usagef("--target %q: want %s or %s", target, verify.TargetEmbedded, verify.TargetProxy)
			}
			return runVerify(e, verifyRun{
				target: target, idempotent: idempotent,
				scenarios: scs, duration: duration, runs: runs, seed: seed, keep: keep, dir: dir,
				bin: bin, failpointBin: fpBin, build: build, keepAll: keepAll, bugs: bugList, logger: logger,
			})
		},
	}
	c.AddCommand(newVerifyCheckCmd(e))
	f := c.Flags()
	f.StringVar(&scenario, "scenario", "all", "scenario name, or all (see --list)")
	f.DurationVar(&duration, "duration", 60*time.Second, "how long the nemesis runs in each run")
	f.IntVar(&runs, "runs", 1, "runs per scenario")
	f.Uint64Var(&seed, "seed", 0, "seed of the nemesis and the clients (0: random; run i uses seed+i)")
	f.StringVar(&keep, "keep", "", "directory to keep failing runs in (default: left in the work directory)")
	f.BoolVar(&keepAll, "keep-all", false, "keep passing runs too")
	f.StringVar(&dir, "dir", "", "work directory (default: a new temporary directory)")
	f.StringSliceVar(&bugList, "bug", nil, "switch a seeded bug on (repeatable): "+strings.Join(bugs.All, ", "))
	f.StringVar(&bin, "bin", "", "dlog binary the cluster runs (default: this binary, or a build with -tags dlogbugs for --bug)")
	f.StringVar(&fpBin, "failpoint-bin", "", "dlog binary for scenarios that inject faults through failpoints, built with -tags dlogbugs (default: --bin, else this binary if built with the tag, else a build with the tag)")
	f.BoolVar(&build, "build", false, "build ./cmd/dlog from the module in the working directory instead of using this binary")
	f.BoolVar(&list, "list", false, "list the scenarios and exit")
	f.StringVar(&logLevel, "log-level", "warn", "harness log level (info shows every fault and process start)")
	f.StringVar(&target, "target", verify.TargetEmbedded, "owners of the logs: embedded (writer agents embedding the library) or proxy (dlog proxies, client package)")
	f.BoolVar(&idempotent, "idempotent", false, "target proxy: idempotent writes (producer id + sequence, retried); any duplicate is then a violation")
	return c
}

func pickScenarios(name string, bugList []string, explicit bool) ([]*verify.Scenario, error) {
	if !explicit && len(bugList) > 0 {
		var out []*verify.Scenario
		for _, b := range bugList {
			s := verify.ScenarioForBug(b)
			if s == nil {
				return nil, Usagef("--bug %s: no scenario proves it yet; name one with --scenario", b)
			}
			out = append(out, s)
		}
		return out, nil
	}
	if name == "all" {
		return verify.Scenarios(), nil
	}
	var out []*verify.Scenario
	for _, n := range strings.Split(name, ",") {
		s, err := verify.Lookup(strings.TrimSpace(n))
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, s)
	}
	return out, nil
}

type verifyRun struct {
	target         string
	idempotent     bool
	scenarios      []*verify.Scenario
	duration       time.Duration
	runs           int
	seed           uint64
	keep, dir, bin string
	failpointBin   string
	build, keepAll bool
	bugs           []string
	logger         *slog.Logger
}

func runVerify(e *env, v verifyRun) error {
	dir := v.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "dlog-verify-")
		if err != nil {
			return err
		}
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bin, err := verifyBinary(e, v, dir)
	if err != nil {
		return err
	}
	fpBin, err := failpointBinary(e, v, dir, bin)
	if err != nil {
		return err
	}
	var results [][]*verify.RunResult
	failed := false
	for _, sc := range v.scenarios {
		scBin := bin
		if sc.Failpoints {
			scBin = fpBin
		}
		var rs []*verify.RunResult
		for i := range v.runs {
			if e.ctx.Err() != nil {
				break
			}
			seed := v.seed
			if seed != 0 {
				seed += uint64(i)
			}
			runDir := filepath.Join(dir, fmt.Sprintf("%s-%d", sc.Name, i+1))
			_ = os.RemoveAll(runDir)
			fmt.Fprintf(e.stderr, "verify: %s run %d/%d (%v, target %s) in %s\n", sc.Name, i+1, v.runs, v.duration, v.target, runDir)
			res := verify.Execute(e.ctx, verify.RunConfig{
				Scenario: sc, Binary: scBin, Dir: runDir, Duration: v.duration, Seed: seed, Bugs: v.bugs, Logger: v.logger,
				Target: v.target, Idempotent: v.idempotent,
			})
			fmt.Fprintf(e.stderr, "verify: %s run %d: %s\n", sc.Name, i+1, verify.RunLine(res))
			if res.Failed() {
				failed = true
				if v.keep != "" {
					if kept, err := keepRun(runDir, v.keep); err == nil {
						res.Dir = kept
					} else {
						fmt.Fprintf(e.stderr, "verify: keep %s: %v\n", runDir, err)
					}
				}
				fmt.Fprintf(e.stderr, "verify: kept %s (history.jsonl, drain.jsonl, result.json, logs/, data)\n", res.Dir)
			} else if !v.keepAll {
				_ = os.RemoveAll(runDir)
			}
			rs = append(rs, res)
		}
		results = append(results, rs)
	}
	if err := verify.WriteSummary(e.stdout, results, e.output == outputJSON); err != nil {
		return err
	}
	if e.ctx.Err() != nil {
		return e.ctx.Err()
	}
	if failed {
		return errors.New("verify: violations found (or a run could not complete)")
	}
	return nil
}

// keepRun moves a failing run under keep.
func keepRun(runDir, keep string) (string, error) {
	if err := os.MkdirAll(keep, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(keep, filepath.Base(runDir)+"-"+time.Now().UTC().Format("20060102T150405"))
	if err := os.Rename(runDir, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// verifyBinary picks the dlog binary the cluster runs: --bin, a build
// (--build, or --bug in a binary without the dlogbugs tag), or this one.
func verifyBinary(e *env, v verifyRun, dir string) (string, error) {
	if v.bin != "" {
		return v.bin, nil
	}
	if v.build || (len(v.bugs) > 0 && !bugs.Available) {
		var tags []string
		if len(v.bugs) > 0 {
			tags = []string{"dlogbugs"}
		}
		fmt.Fprintf(e.stderr, "verify: building ./cmd/dlog (tags %v)\n", tags)
		return nemesis.Build(e.ctx, nemesis.BuildConfig{Out: filepath.Join(dir, "bin", "dlog"), Tags: tags})
	}
	return os.Executable()
}

// failpointBinary picks the binary of scenarios that need failpoints
// (Scenario.Failpoints): --failpoint-bin, else --bin, else bin when this
// binary has the dlogbugs tag, else a build with it (only when such a
// scenario is chosen). A binary without failpoints fails those scenarios
// loudly (verify.ErrFaultNotInjected), never silently.
func failpointBinary(e *env, v verifyRun, dir, bin string) (string, error) {
	need := false
	for _, sc := range v.scenarios {
		need = need || sc.Failpoints
	}
	switch {
	case !need:
		return bin, nil
	case v.failpointBin != "":
		return v.failpointBin, nil
	case v.bin != "" || bugs.Available || len(v.bugs) > 0:
		return bin, nil
	}
	fmt.Fprintf(e.stderr, "verify: building ./cmd/dlog (tags [dlogbugs]) for failpoint scenarios\n")
	return nemesis.Build(e.ctx, nemesis.BuildConfig{Out: filepath.Join(dir, "bin", "dlog-failpoints"), Tags: []string{"dlogbugs"}})
}

// newVerifyCheckCmd re-checks a kept run: the checker is deterministic, so
// a kept history and drain replay the verdict exactly.
func newVerifyCheckCmd(e *env) *cobra.Command {
	var idempotent bool
	c := &cobra.Command{
		Use:   "check RUN-DIR | HISTORY [DRAIN]",
		Short: "Check a kept run's history (and drain) again and print the checker's report",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			hist, drain := args[0], ""
			if len(args) == 2 {
				drain = args[1]
			} else if st, err := os.Stat(hist); err == nil && st.IsDir() {
				hist, drain = filepath.Join(args[0], "history.jsonl"), filepath.Join(args[0], "drain.jsonl")
				if _, err := os.Stat(drain); err != nil {
					drain = ""
				}
			}
			rep, err := checker.CheckFiles(hist, drain, checker.Options{IdempotentWrites: idempotent})
			if err != nil {
				return err
			}
			if e.output == outputJSON {
				err = writeJSON(e.stdout, rep)
			} else {
				err = rep.WriteTable(e.stdout)
			}
			if err == nil && !rep.Valid {
				err = fmt.Errorf("verify check: %s", strings.Join(rep.Failed(), ", "))
			}
			return err
		},
	}
	c.Flags().BoolVar(&idempotent, "idempotent", false, "the run used idempotent writes: every duplicate is a violation")
	return c
}

func newVerifyAgentCmd(e *env) *cobra.Command {
	cfg := verify.AgentConfig{}
	var routes, logLevel string
	c := &cobra.Command{
		Use:    "verify-agent --name NAME --metadata URL [flags]",
		Short:  "Run a writer agent of `dlog verify` (embeds the library, owns logs)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			logger, err := obs.NewLogger(e.stderr, "text", logLevel)
			if err != nil {
				return usageError{err}
			}
			cfg.Logger = logger
			cfg.BookieRoutes = map[string]string{}
			for _, kv := range strings.Split(routes, ",") {
				if kv == "" {
					continue
				}
				id, addr, ok := strings.Cut(kv, "=")
				if !ok {
					return Usagef("--bookie-routes: %q is not id=addr", kv)
				}
				cfg.BookieRoutes[id] = addr
			}
			var printErr error
			cfg.Ready = func(addr string) {
				printErr = writeJSON(e.stdout, map[string]string{"event": "listening", "name": cfg.Name, "addr": addr})
			}
			if err := verify.RunAgent(e.ctx, cfg); err != nil {
				return err
			}
			return printErr
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Name, "name", "", "agent name (prefix of its writer epochs)")
	f.StringVar(&cfg.ListenAddr, "listen", "127.0.0.1:0", "HTTP address of the harness API")
	f.StringVar(&cfg.MetadataURL, "metadata", "", "metadata service URL")
	f.StringVar(&cfg.Cluster, "cluster", "default", "cluster name")
	f.StringVar(&cfg.Namespace, "namespace", "default", "namespace")
	f.StringVar(&routes, "bookie-routes", "", "id=addr,... addresses to dial per bookie")
	f.IntVar(&cfg.EnsembleSize, "ensemble-size", 3, "E of new segments")
	f.IntVar(&cfg.WriteQuorum, "write-quorum", 3, "Qw of new segments")
	f.IntVar(&cfg.AckQuorum, "ack-quorum", 2, "Qa of new segments")
	f.Int64Var(&cfg.SegmentRollBytes, "segment-roll-bytes", 0, "segment roll size (0: default)")
	f.DurationVar(&cfg.SessionTTL, "session-ttl", 2*time.Second, "writer lock lease")
	f.DurationVar(&cfg.GCInterval, "gc-interval", 0, "segment collector period (0: default)")
	f.DurationVar(&cfg.AddTimeout, "add-timeout", 0, "bookie add timeout (0: default)")
	f.StringVar(&logLevel, "log-level", "info", "log level")
	return c
}
