package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog/internal/bench"
	"github.com/dlog-io/dlog/internal/sandbox"
)

func init() { commands = append(commands, newBenchCmd) }

func newBenchCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency against a running service or a sandbox",
		Long: `Measure a dlog service through its client API:

  write   appends as fast as --concurrency requests in flight allow:
          throughput and acknowledgement latency
  read    reads --records records from the start of a log (writing them
          first if the log holds fewer): catch-up read throughput
  tail    writes at a steady --rate while --readers follow the log:
          end-to-end latency, from the write call to the reader
  e2e     writes at full speed while --readers follow: throughput,
          acknowledgement and end-to-end latency

It runs against --server (DLOG_SERVER), or against a sandbox it starts
in a temporary directory with --sandbox. A progress bar shows on a
terminal; the result is a table (throughput in records/s and MB/s,
latency percentiles), or one JSON object with -o json.`,
	}
	for _, m := range []bench.Mode{bench.Write, bench.Read, bench.Tail, bench.EndToEnd} {
		c.AddCommand(newBenchModeCmd(e, m))
	}
	return c
}

// benchJSON is `dlog bench MODE -o json`.
type benchJSON struct {
	Mode             string       `json:"mode"`
	Records          int64        `json:"records"`
	Bytes            int64        `json:"bytes"`
	Errors           int64        `json:"errors"`
	ElapsedSeconds   float64      `json:"elapsed-seconds"`
	RecordsPerSecond float64      `json:"records-per-second"`
	MBPerSecond      float64      `json:"mb-per-second"`
	Delivered        int64        `json:"delivered,omitempty"`
	WriteLatency     *latencyJSON `json:"write-latency-ms,omitempty"`
	EndToEndLatency  *latencyJSON `json:"e2e-latency-ms,omitempty"`
	FirstError       string       `json:"first-error,omitempty"`
	Server           string       `json:"server"`
	Sandbox          bool         `json:"sandbox"`
	RecordBytes      int          `json:"record-bytes"`
	Concurrency      int          `json:"concurrency"`
	BatchRecords     int          `json:"batch-records"`
	Readers          int          `json:"readers,omitempty"`
}

type latencyJSON struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func toLatencyJSON(l *bench.Latency) *latencyJSON {
	if l == nil {
		return nil
	}
	return &latencyJSON{Count: l.Count, P50: ms(l.P50), P90: ms(l.P90), P99: ms(l.P99), P999: ms(l.P999), Max: ms(l.Max)}
}

func newBenchModeCmd(e *env, mode bench.Mode) *cobra.Command {
	var f clientFlags
	cfg := bench.DefaultConfig(mode, nil)
	var useSandbox bool
	short := map[bench.Mode]string{
		bench.Write:    "Append as fast as possible: throughput and acknowledgement latency",
		bench.Read:     "Read a log from the start: catch-up throughput",
		bench.Tail:     "Write at a steady rate while readers follow: end-to-end latency",
		bench.EndToEnd: "Write at full speed while readers follow: throughput and both latencies",
	}[mode]
	c := &cobra.Command{
		Use:   mode.String() + " [flags]",
		Short: short,
		Example: fmt.Sprintf(`  dlog bench %s --sandbox
  dlog bench %s --records 1000000 --concurrency 32 --batch 100
  dlog bench %s --duration 30s -o json`, mode, mode, mode),
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if useSandbox && c.Flags().Changed("server") {
				return Usagef("give --sandbox or --server, not both")
			}
			switch {
			case cfg.RecordBytes < 16 || cfg.RecordBytes > 1<<20:
				return Usagef("--size %d: want 16 bytes to 1 MiB (every payload carries a timestamp and a sequence number)", cfg.RecordBytes)
			case cfg.Records < 0 || cfg.Duration < 0 || (cfg.Records == 0 && cfg.Duration == 0):
				return Usagef("give --records N, --duration D, or both")
			case cfg.Concurrency < 1 || cfg.BatchRecords < 1 || cfg.Readers < 1 || cfg.Logs < 1:
				return Usagef("--concurrency, --batch, --readers and --logs must be at least 1")
			case cfg.Rate < 0:
				return Usagef("--rate cannot be negative")
			}
			if e.sources["duration"] != sourceDefault && e.sources["records"] == sourceDefault && mode != bench.Read {
				// A duration alone: run for that long. A read needs a
				// record count (the log to read); the duration bounds it.
				cfg.Records = 0
			}
			return runBench(e, f, cfg, useSandbox)
		},
	}
	addClientFlags(c, &f)
	fs := c.Flags()
	fs.BoolVar(&useSandbox, "sandbox", false, "start a sandbox (3 bookies) in a temporary directory and measure it")
	fs.StringVar(&cfg.Log, "log", cfg.Log, "log to use (created when missing)")
	fs.IntVar(&cfg.Logs, "logs", cfg.Logs, "spread writes over this many logs (LOG-0, LOG-1, ...)")
	fs.Int64Var(&cfg.Records, "records", cfg.Records, "records to write (read, for read); 0 with --duration: until it ends")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (with --records: whichever comes first)")
	fs.IntVar(&cfg.RecordBytes, "size", cfg.RecordBytes, "payload bytes per record")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "write requests in flight")
	fs.IntVar(&cfg.BatchRecords, "batch", cfg.BatchRecords, "records per write request (1: Write, more: WriteBulk)")
	fs.IntVar(&cfg.Readers, "readers", cfg.Readers, "readers (read, tail, e2e)")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "records written per second (0: as fast as possible)")
	return c
}

func runBench(e *env, f clientFlags, cfg bench.Config, useSandbox bool) error {
	ctx := e.ctx
	server := f.server
	if useSandbox {
		dir, err := os.MkdirTemp("", "dlog-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		scfg := sandbox.DefaultConfig(dir)
		scfg.Bookies = 3
		scfg.ListenAddr, scfg.HTTPAddr = "127.0.0.1:0", ""
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		sb, err := sandbox.Start(sctx, scfg)
		cancel()
		if err != nil {
			return fmt.Errorf("start the sandbox: %w", err)
		}
		defer sb.Close()
		server = sb.Addr()
		fmt.Fprintf(e.stderr, "dlog bench: sandbox with 3 bookies in %s, proxy on %s\n", dir, server)
	}
	f.server = server
	cl, err := e.newClient(ctx, f, clientOptions{discovery: true})
	if err != nil {
		return err
	}
	defer cl.Close()
	cfg.Client = cl

	var bar *progressbar.ProgressBar
	if e.output == outputTable && isTerminal(e.stdout) {
		total, unit := cfg.Records, "records"
		if total == 0 {
			total, unit = cfg.Duration.Milliseconds(), "ms"
		}
		bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(e.stdout),
			progressbar.OptionSetDescription("bench "+cfg.Mode.String()),
			progressbar.OptionSetItsString(unit),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		byRecords := cfg.Records > 0
		cfg.Progress = func(done int64, elapsed time.Duration) {
			if byRecords {
				_ = bar.Set64(done)
			} else {
				_ = bar.Set64(min(elapsed.Milliseconds(), total))
			}
		}
	}
	res, err := bench.Run(ctx, cfg)
	if bar != nil {
		_ = bar.Finish()
		_ = bar.Clear()
	}
	if err != nil {
		return explain(err, f, cfg.Log)
	}
	j := benchJSON{Mode: res.Mode, Records: res.Records, Bytes: res.Bytes, Errors: res.Errors, ElapsedSeconds: res.Elapsed.Seconds(),
		RecordsPerSecond: res.RecordsPerSecond, MBPerSecond: res.MBPerSecond, Delivered: res.Delivered,
		WriteLatency: toLatencyJSON(res.WriteLatency), EndToEndLatency: toLatencyJSON(res.EndToEndLatency), FirstError: res.FirstError,
		Server: server, Sandbox: useSandbox, RecordBytes: cfg.RecordBytes, Concurrency: cfg.Concurrency, BatchRecords: cfg.BatchRecords}
	if cfg.Mode != bench.Write {
		j.Readers = cfg.Readers
	}
	if e.output == outputJSON {
		if err := writeJSON(e.stdout, j); err != nil {
			return err
		}
	} else if err := printBench(e, res); err != nil {
		return err
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d records failed; the first error: %s", res.Errors, res.FirstError)
	}
	if res.FirstError != "" {
		return fmt.Errorf("the run saw an error: %s", res.FirstError)
	}
	return nil
}

func printBench(e *env, r bench.Result) error {
	p := &printer{w: e.stdout, format: outputTable}
	p.row(nil, r.Mode, strconv.FormatInt(r.Records, 10), strconv.FormatInt(r.Errors, 10), r.Elapsed.Round(time.Millisecond).String(),
		strconv.FormatFloat(r.RecordsPerSecond, 'f', 0, 64), strconv.FormatFloat(r.MBPerSecond, 'f', 2, 64))
	if err := p.flush("MODE", "RECORDS", "ERRORS", "ELAPSED", "RECORDS/S", "MB/S"); err != nil {
		return err
	}
	if r.WriteLatency == nil && r.EndToEndLatency == nil {
		return nil
	}
	fmt.Fprintln(e.stdout)
	p = &printer{w: e.stdout, format: outputTable}
	for _, l := range []struct {
		name string
		l    *bench.Latency
	}{{"write (ack)", r.WriteLatency}, {"end-to-end", r.EndToEndLatency}} {
		if l.l == nil {
			continue
		}
		p.row(nil, l.name, strconv.FormatInt(l.l.Count, 10), fmtLatency(l.l.P50), fmtLatency(l.l.P90), fmtLatency(l.l.P99),
			fmtLatency(l.l.P999), fmtLatency(l.l.Max))
	}
	return p.flush("LATENCY", "COUNT", "P50", "P90", "P99", "P99.9", "MAX")
}

func fmtLatency(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
