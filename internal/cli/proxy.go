package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/obs"
	"github.com/dlog-io/dlog/internal/proxy"
)

func init() { commands = append(commands, newProxyCmd) }

// proxyStarted is the line `dlog proxy` prints once it serves.
type proxyStarted struct {
	Event     string `json:"event"`
	ID        string `json:"id"`
	Listen    string `json:"listen"`
	Advertise string `json:"advertise"`
	HTTP      string `json:"http,omitempty"`
}

func newProxyCmd(e *env) *cobra.Command {
	cfg := proxy.DefaultConfig("")
	var noWrite, noRead, drain bool
	var logLevel, logFormat string
	var addTimeout time.Duration
	c := &cobra.Command{
		Use:   "proxy --metadata URL --listen ADDR [flags]",
		Short: "Run a write and read proxy (the dlog service API) until interrupted",
		Long: `Run a proxy: the dlog service API (gRPC, gRPC-Web and HTTP/JSON on the
same --listen port) in front of the bookies. As a write proxy it owns the
logs it writes (one owner per log; other proxies redirect clients to it)
and takes a log over when its owner dies; as a read proxy it serves
readers, sharing one tail reader per log among them. It registers itself
in metadata, prints one line once it serves, and on SIGINT or SIGTERM
completes and releases its logs before it exits.

Rate limits refuse writes with CODE_OVER_CAPACITY: --rate-limit-records and
--rate-limit-bytes for the whole proxy, --log-rate-limit-records and
--log-rate-limit-bytes per log (0: unlimited).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cfg.MetadataURL == "" {
				return Usagef("--metadata is required (http://host:2379,... or embedded:DIR)")
			}
			cfg.DisableWrites, cfg.DisableReads, cfg.AcceptNewLogs = noWrite, noRead, !drain
			if noWrite && noRead {
				return Usagef("--no-write and --no-read together leave nothing to serve")
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			logger, err := obs.NewLogger(e.stderr, logFormat, logLevel)
			if err != nil {
				return usageError{err}
			}
			cfg.Logger = logger
			if c.Flags().Changed("add-timeout") {
				if addTimeout <= 0 {
					return Usagef("--add-timeout must be positive")
				}
				lcfg := ledger.DefaultConfig()
				lcfg.ExplicitLACDelay = time.Millisecond // the proxy's default
				lcfg.AddTimeout = addTimeout
				cfg.Ledger = &lcfg
			}
			return runProxy(e, cfg)
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.MetadataURL, "metadata", "", "metadata service: http://h1:2379,..., embedded:DIR")
	f.StringVar(&cfg.Cluster, "cluster", cfg.Cluster, "cluster name in the metadata service")
	f.StringVar(&cfg.ListenAddr, "listen", cfg.ListenAddr, "API address (gRPC and HTTP/JSON); port 0 picks one")
	f.StringVar(&cfg.AdvertiseAddr, "advertise", "", "API address clients are told (default: the listen address)")
	f.StringVar(&cfg.HTTPAddr, "http", "", "address for /metrics, /healthz and /readyz (default: none)")
	f.StringVar(&cfg.ID, "id", "", "stable proxy id (default: from the advertised address)")
	f.StringVar(&cfg.Region, "region", "", "region label in the registration")
	f.BoolVar(&noWrite, "no-write", false, "serve no writes (a read proxy only)")
	f.BoolVar(&noRead, "no-read", false, "serve no reads (a write proxy only)")
	f.BoolVar(&drain, "drain", false, "start draining: take no new logs (AdminService.SetAcceptNewLogs reopens)")
	f.StringVar(&cfg.DefaultNamespace, "namespace", cfg.DefaultNamespace, "namespace of requests that name none")
	f.BoolVar(&cfg.CreateNamespaces, "create-namespaces", false, "create namespaces that requests name (default: serve existing ones only)")
	f.DurationVar(&cfg.SessionTTL, "session-ttl", cfg.SessionTTL, "lease of the registration and of log ownership (failover time after a crash)")
	f.Float64Var(&cfg.ProxyRecordsPerSecond, "rate-limit-records", 0, "records/s the proxy accepts (0: unlimited)")
	f.Float64Var(&cfg.ProxyBytesPerSecond, "rate-limit-bytes", 0, "payload bytes/s the proxy accepts (0: unlimited)")
	f.Float64Var(&cfg.LogRecordsPerSecond, "log-rate-limit-records", 0, "records/s per log (0: unlimited)")
	f.Float64Var(&cfg.LogBytesPerSecond, "log-rate-limit-bytes", 0, "payload bytes/s per log (0: unlimited)")
	f.IntVar(&cfg.MaxPendingRecordsPerLog, "max-pending-records-per-log", cfg.MaxPendingRecordsPerLog, "unacknowledged records per log before CODE_OVER_CAPACITY")
	f.Int64Var(&cfg.MaxPendingBytesPerLog, "max-pending-bytes-per-log", cfg.MaxPendingBytesPerLog, "unacknowledged bytes per log before CODE_OVER_CAPACITY")
	f.IntVar(&cfg.MaxOwnedLogs, "max-owned-logs", cfg.MaxOwnedLogs, "logs owned at once")
	f.IntVar(&cfg.MaxRecordBytes, "max-record-bytes", cfg.MaxRecordBytes, "largest record payload")
	f.IntVar(&cfg.MaxMessageBytes, "max-message-bytes", cfg.MaxMessageBytes, "largest request message (refused before it is read)")
	f.IntVar(&cfg.MaxConcurrentStreams, "max-concurrent-streams", cfg.MaxConcurrentStreams, "concurrent requests per client connection")
	f.IntVar(&cfg.ProbationErrors, "probation-errors", cfg.ProbationErrors, "writer failures of a log within --probation-window that put it on probation (negative: never)")
	f.DurationVar(&cfg.ProbationWindow, "probation-window", cfg.ProbationWindow, "window in which writer failures are counted")
	f.DurationVar(&cfg.ProbationPeriod, "probation-period", cfg.ProbationPeriod, "how long a log on probation is left to other proxies")
	f.IntVar(&cfg.IdempotencyWindowEntries, "idempotency-window-entries", cfg.IdempotencyWindowEntries, "entries a new owner reads back to rebuild the dedup table of idempotent writes")
	f.Int64Var(&cfg.CacheBytesPerLog, "cache-bytes-per-log", cfg.CacheBytesPerLog, "tail cache bound per log (0: no cache)")
	f.IntVar(&cfg.MaxCachedLogs, "max-cached-logs", cfg.MaxCachedLogs, "logs with a tail cache at once")
	f.IntVar(&cfg.MaxReaders, "max-readers", cfg.MaxReaders, "concurrent Read streams")
	f.IntVar(&cfg.Namespace.EnsembleSize, "ensemble-size", cfg.Namespace.EnsembleSize, "bookies per segment ledger")
	f.IntVar(&cfg.Namespace.WriteQuorum, "write-quorum", cfg.Namespace.WriteQuorum, "bookies each entry is written to")
	f.IntVar(&cfg.Namespace.AckQuorum, "ack-quorum", cfg.Namespace.AckQuorum, "bookies that must fsync an entry before it is acknowledged")
	f.StringVar(&cfg.Namespace.Compression, "compression", cfg.Namespace.Compression, "entry compression: none, lz4 or zstd")
	f.Int64Var(&cfg.Namespace.SegmentRollBytes, "segment-roll-bytes", cfg.Namespace.SegmentRollBytes, "start a new segment once the current one holds this many entry bytes")
	f.DurationVar(&cfg.Namespace.SegmentRollInterval, "segment-roll-interval", cfg.Namespace.SegmentRollInterval, "start a new segment once the current one (not empty) is this old")
	f.IntVar(&cfg.Namespace.FlushBytes, "flush-bytes", cfg.Namespace.FlushBytes, "record-set size at which a log writer sends an entry without waiting (0: no batching)")
	f.DurationVar(&cfg.Namespace.FlushInterval, "flush-interval", cfg.Namespace.FlushInterval, "longest a record waits in a writer's batch while earlier entries are in flight")
	f.DurationVar(&cfg.Namespace.GCInterval, "gc-interval", cfg.Namespace.GCInterval, "how often truncated and expired segments are deleted (0: no collector)")
	f.DurationVar(&addTimeout, "add-timeout", ledger.DefaultConfig().AddTimeout, "bound on one entry add to one bookie before the bookie is replaced")
	f.DurationVar(&cfg.Namespace.Retention, "retention", cfg.Namespace.Retention, "default retention of completed segments (0: until truncated)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return c
}

// runProxy runs a proxy until e.ctx is done.
func runProxy(e *env, cfg proxy.Config) error {
	ctx := e.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	s, err := proxy.Start(sctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	line := proxyStarted{Event: "listening", ID: s.ID(), Listen: s.Addr(), Advertise: s.AdvertiseAddr(), HTTP: s.HTTPAddr()}
	if e.output == outputJSON {
		err = writeJSON(e.stdout, line)
	} else {
		msg := fmt.Sprintf("proxy %s listening on %s (advertised %s)", line.ID, line.Listen, line.Advertise)
		if line.HTTP != "" {
			msg += ", http on " + line.HTTP
		}
		_, err = fmt.Fprintln(e.stdout, msg)
	}
	if err == nil {
		<-ctx.Done()
		cfg.Logger.Info("shutting down", "cause", context.Cause(ctx))
	}
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}
