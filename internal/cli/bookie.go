package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/obs"
)

func init() { commands = append(commands, newBookieCmd) }

// bookieStarted is the line `dlog bookie` prints once it serves.
type bookieStarted struct {
	Event      string `json:"event"`
	ID         string `json:"id"`
	Listen     string `json:"listen"`
	Advertise  string `json:"advertise"`
	InstanceID string `json:"instance-id"`
	HTTP       string `json:"http,omitempty"`
	Dir        string `json:"dir"`
}

func newBookieCmd(e *env) *cobra.Command {
	cfg := bookie.DefaultConfig()
	var metadataURL, httpAddr, logLevel, logFormat, cluster string
	c := &cobra.Command{
		Use:   "bookie --dir DIR --listen ADDR [flags]",
		Short: "Run a bookie (a storage node) until interrupted",
		Long: `Run a bookie: a journal (fsync before every acknowledgement) and entry
storage under --dir, serving the bookie protocol over gRPC on --listen.
With --metadata it registers itself and keeps its identity cookie there.
It prints one line once it serves, and shuts down cleanly on SIGINT or
SIGTERM. It refuses to start on a directory that is not its own (wiped,
swapped or another bookie's).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cfg.Dir == "" {
				return Usagef("--dir is required")
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			logger, err := obs.NewLogger(e.stderr, logFormat, logLevel)
			if err != nil {
				return usageError{err}
			}
			return runBookie(e, cfg, bookieRun{metadataURL: metadataURL, cluster: cluster, httpAddr: httpAddr}, logger)
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "data directory (cookie, ledgers, and the journal unless --journal-dir)")
	f.StringVar(&cfg.JournalDir, "journal-dir", "", "journal directory, ideally on its own disk (default DIR/journal)")
	f.StringVar(&cfg.ListenAddr, "listen", "127.0.0.1:3181", "gRPC listen address (port 0 picks one)")
	f.StringVar(&cfg.AdvertiseAddr, "advertise", "", "address clients dial (default: the listen address)")
	f.StringVar(&cfg.ID, "id", "", "stable bookie id (default: the advertised address)")
	f.StringVar(&cfg.Region, "region", "", "region label for placement")
	f.StringVar(&cfg.Rack, "rack", "", "rack label for placement")
	f.StringVar(&metadataURL, "metadata", "", "metadata service: http://h1:2379,..., embedded:DIR or memory: (default: none, standalone)")
	f.StringVar(&cluster, "cluster", "default", "cluster name in the metadata service")
	f.StringVar(&httpAddr, "http", "", "address for /metrics, /healthz and /readyz (default: none)")
	f.IntVar(&cfg.MaxEntryBytes, "max-entry-bytes", cfg.MaxEntryBytes, "largest entry payload accepted")
	f.IntVar(&cfg.MaxInFlightPerStream, "max-in-flight-per-stream", cfg.MaxInFlightPerStream, "requests in flight per client stream before OVERLOADED")
	f.IntVar(&cfg.MaxLongPollWaiters, "max-long-poll-waiters", cfg.MaxLongPollWaiters, "long polls held at once before OVERLOADED")
	f.DurationVar(&cfg.DefaultRequestTimeout, "default-request-timeout", cfg.DefaultRequestTimeout, "deadline of a request that sets none")
	f.DurationVar(&cfg.FlushInterval, "flush-interval", cfg.FlushInterval, "checkpoint period (entry storage flush, journal release)")
	f.Int64Var(&cfg.JournalFileSizeBytes, "journal-file-size-bytes", cfg.JournalFileSizeBytes, "journal file preallocation size")
	f.DurationVar(&cfg.JournalMaxGroupWait, "journal-max-group-wait", cfg.JournalMaxGroupWait, "longest group-commit wait under concurrency")
	f.Int64Var(&cfg.WriteCacheMaxBytes, "write-cache-max-bytes", cfg.WriteCacheMaxBytes, "entry storage write cache size")
	f.Int64Var(&cfg.EntryLogMaxFileSizeBytes, "entry-log-max-file-size-bytes", cfg.EntryLogMaxFileSizeBytes, "entry log roll size")
	f.DurationVar(&cfg.GCInterval, "gc-interval", cfg.GCInterval, "compaction period (negative: off)")
	f.DurationVar(&cfg.DiskCheckInterval, "disk-check-interval", cfg.DiskCheckInterval, "disk usage check period")
	f.Int64Var(&cfg.DiskQuotaBytes, "disk-quota-bytes", cfg.DiskQuotaBytes, "bytes the bookie's data may use (0: no quota)")
	f.Float64Var(&cfg.DiskHighWater, "disk-high-water", cfg.DiskHighWater, "read-only at this fraction of the quota")
	f.Float64Var(&cfg.DiskLowWater, "disk-low-water", cfg.DiskLowWater, "writable again below this fraction of the quota")
	f.Uint64Var(&cfg.MinFreeBytes, "min-free-bytes", cfg.MinFreeBytes, "read-only when the file system has less free space (0: off)")
	f.DurationVar(&cfg.SessionTTL, "session-ttl", cfg.SessionTTL, "metadata session lease (how long a crashed bookie stays registered)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return c
}

type bookieRun struct {
	metadataURL, cluster, httpAddr string
}

// runBookie runs a bookie until e.ctx is done.
func runBookie(e *env, cfg bookie.Config, run bookieRun, logger *slog.Logger) error {
	ctx := e.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	reg := obs.NewRegistry()
	cfg.Registerer = reg
	cfg.Logger = logger
	if run.metadataURL != "" {
		opts := metadata.DefaultOptions()
		opts.Cluster = run.cluster
		opts.Logger = logger
		md, err := metadata.Open(ctx, run.metadataURL, opts)
		if err != nil {
			return fmt.Errorf("metadata %s: %w", run.metadataURL, err)
		}
		defer md.Close()
		cfg.Metadata = md
	}
	b, err := bookie.Open(ctx, cfg)
	if err != nil {
		return err
	}
	var httpSrv *obs.Server
	if run.httpAddr != "" {
		httpSrv, err = obs.NewServer(obs.ServerConfig{Addr: run.httpAddr, Registry: reg})
		if err != nil {
			_ = b.Close()
			return err
		}
		httpSrv.AddCheck("bookie", b.Ready)
		httpSrv.Serve()
	}
	line := bookieStarted{Event: "listening", ID: b.ID(), Listen: b.ListenAddr(), Advertise: b.Addr(),
		InstanceID: b.InstanceID(), Dir: cfg.Dir}
	if httpSrv != nil {
		line.HTTP = httpSrv.Addr()
	}
	if e.output == outputJSON {
		err = writeJSON(e.stdout, line)
	} else {
		msg := fmt.Sprintf("bookie %s listening on %s (advertised %s)", line.ID, line.Listen, line.Advertise)
		if line.HTTP != "" {
			msg += ", http on " + line.HTTP
		}
		_, err = fmt.Fprintln(e.stdout, msg)
	}
	if err == nil {
		<-ctx.Done()
		logger.Info("shutting down", "cause", context.Cause(ctx))
	}
	var errs []error
	errs = append(errs, err)
	if httpSrv != nil {
		errs = append(errs, httpSrv.Close())
	}
	errs = append(errs, b.Close())
	return errors.Join(errs...)
}
