package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog/internal/obs"
	"github.com/dlog-io/dlog/internal/sandbox"
)

func init() { commands = append(commands, newSandboxCmd) }

// sandboxReady is what `dlog sandbox -o json` prints once it serves.
type sandboxReady struct {
	Event        string                `json:"event"`
	Dir          string                `json:"dir"`
	Server       string                `json:"server"`
	HTTP         string                `json:"http,omitempty"`
	Metadata     string                `json:"metadata"`
	Bookies      []sandbox.BookieState `json:"bookies"`
	EnsembleSize int                   `json:"ensemble-size"`
	WriteQuorum  int                   `json:"write-quorum"`
	AckQuorum    int                   `json:"ack-quorum"`
	Restarted    bool                  `json:"restarted"`
	TookMs       int64                 `json:"took-ms"`
}

func newSandboxCmd(e *env) *cobra.Command {
	cfg := sandbox.DefaultConfig("")
	var logLevel, logFormat string
	var reset bool
	c := &cobra.Command{
		Use:   "sandbox [--dir DIR] [--bookies 3] [--listen 127.0.0.1:7000] [--http 127.0.0.1:7080]",
		Short: "Run a whole dlog cluster in one process (etcd, bookies, a proxy) until interrupted",
		Long: `Run a complete dlog service in one process: an embedded etcd, N bookies
(each with its own directory and port) and a proxy, with every
component's Prometheus metrics, /healthz and /readyz on --http.

Data lives in --dir (default ` + sandbox.DefaultDir() + `,
i.e. $XDG_DATA_HOME/dlog/sandbox or ~/.local/share/dlog/sandbox).
Nothing is weakened: bookies fsync before acknowledging, so Ctrl-C, a
crash or kill -9 loses no acknowledged record, and starting again on the
same --dir brings back every log. --reset deletes the directory first.

Replication of new segments follows the bookie count: 3 or more bookies
write every entry to 3 and acknowledge at 2 (3/3/2); 2 bookies use 2/2/2;
1 bookie uses 1/1/1. --ensemble-size, --write-quorum and --ack-quorum
override it.

Clients find it at --listen (the default of every client's --server);
admin tools take the printed metadata URL as --metadata (or find it in
the default --dir by themselves).`,
		Example: `  dlog sandbox
  dlog sandbox --dir /tmp/dlog --bookies 1 --listen 127.0.0.1:7100 --http 127.0.0.1:7180
  dlog sandbox -o json     # one JSON object once ready`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			logger, err := obs.NewLogger(e.stderr, logFormat, logLevel)
			if err != nil {
				return usageError{err}
			}
			if cfg.Dir == "" {
				cfg.Dir = sandbox.DefaultDir()
			}
			if abs, err := filepath.Abs(cfg.Dir); err == nil {
				cfg.Dir = abs
			}
			cfg.Logger = logger
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if reset {
				if err := os.RemoveAll(cfg.Dir); err != nil {
					return fmt.Errorf("--reset: %w", err)
				}
			}
			return runSandbox(e, cfg)
		},
	}
	f := c.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "data directory (default "+sandbox.DefaultDir()+")")
	f.IntVar(&cfg.Bookies, "bookies", 0, "number of bookies (default: as many as --dir has, 3 for a new one)")
	f.StringVar(&cfg.ListenAddr, "listen", cfg.ListenAddr, "proxy API address (gRPC and HTTP/JSON); port 0 picks one")
	f.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "address of /metrics, /healthz and /readyz (empty: off)")
	f.IntVar(&cfg.EnsembleSize, "ensemble-size", 0, "bookies per segment (default: by bookie count)")
	f.IntVar(&cfg.WriteQuorum, "write-quorum", 0, "copies of each entry (default: by bookie count)")
	f.IntVar(&cfg.AckQuorum, "ack-quorum", 0, "copies fsynced before an acknowledgement (default: by bookie count)")
	f.BoolVar(&reset, "reset", false, "delete --dir first (every log is lost)")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return c
}

func runSandbox(e *env, cfg sandbox.Config) error {
	start := time.Now()
	_, restarted, err := sandbox.ReadState(cfg.Dir)
	if err != nil {
		return err
	}
	sb, err := sandbox.Start(e.ctx, cfg)
	if err != nil {
		return err
	}
	ens, wq, aq := sb.Replication()
	line := sandboxReady{Event: "ready", Dir: sb.Dir(), Server: sb.Addr(), HTTP: sb.HTTPAddr(), Metadata: sb.MetadataURL(),
		Bookies: sb.Bookies(), EnsembleSize: ens, WriteQuorum: wq, AckQuorum: aq, Restarted: restarted,
		TookMs: time.Since(start).Milliseconds()}
	if e.output == outputJSON {
		err = writeJSON(e.stdout, line)
	} else {
		err = printSandbox(e, line)
	}
	if err == nil {
		select {
		case <-e.ctx.Done():
		case err = <-sb.Err():
			err = fmt.Errorf("embedded etcd failed: %w", err)
		}
	}
	fmt.Fprintln(e.stderr, "dlog sandbox: stopping")
	if cerr := sb.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		fmt.Fprintln(e.stderr, "dlog sandbox: stopped; start it again on the same --dir to get every log back")
	}
	return err
}

func printSandbox(e *env, l sandboxReady) error {
	w := e.stdout
	what := "started"
	if l.Restarted {
		what = "restarted"
	}
	fmt.Fprintf(w, "dlog sandbox %s in %.1fs; data in %s\n", what, float64(l.TookMs)/1000, l.Dir)
	fmt.Fprintf(w, "  proxy      %-22s clients: --server %s (or DLOG_SERVER)\n", l.Server, l.Server)
	if l.HTTP != "" {
		fmt.Fprintf(w, "  http       %-22s /metrics /healthz /readyz\n", l.HTTP)
	}
	fmt.Fprintf(w, "  metadata   %-22s embedded etcd; admin tools: --metadata %s\n", l.Metadata, l.Metadata)
	for _, b := range l.Bookies {
		fmt.Fprintf(w, "  %-10s %s\n", b.ID, b.Listen)
	}
	fmt.Fprintf(w, "  ledgers    ensemble %d, write quorum %d, ack quorum %d\n", l.EnsembleSize, l.WriteQuorum, l.AckQuorum)
	server := ""
	if l.Server != defaultServer {
		server = " --server " + l.Server
	}
	fmt.Fprintf(w, "Try: dlog log create hello%s && echo world | dlog write hello%s && dlog read hello%s\n", server, server, server)
	_, err := fmt.Fprintln(w, "Ctrl-C stops it; starting it again on the same --dir keeps every log.")
	return err
}

// sandboxMetadata returns the metadata URL recorded by a sandbox in the
// default directory ("" when there is none).
func sandboxMetadata(_ context.Context) string {
	st, found, err := sandbox.ReadState(sandbox.DefaultDir())
	if err != nil || !found {
		return ""
	}
	return st.MetadataURL
}
