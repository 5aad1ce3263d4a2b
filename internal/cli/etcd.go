package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog/internal/metadata/etcdserver"
	"github.com/dlog-io/dlog/internal/obs"
)

func init() { commands = append(commands, newEtcdCmd) }

// etcdStarted is the line `dlog etcd` prints once the member serves.
type etcdStarted struct {
	Event     string   `json:"event"`
	Name      string   `json:"name"`
	Dir       string   `json:"dir"`
	Endpoints []string `json:"endpoints"`
}

// newEtcdCmd is a hidden command: one etcd member as its own process, so
// the fault-proof harness (internal/verify) can kill, pause and restart
// metadata members like any other component. Production deployments run
// etcd itself.
func newEtcdCmd(e *env) *cobra.Command {
	var (
		name, dir, listenClient, listenPeer, initial, token string
		tickMs, electionMs                                  uint
		noFsync                                             bool
		logLevel, logFormat                                 string
	)
	c := &cobra.Command{
		Use:    "etcd --name NAME --dir DIR [flags]",
		Short:  "Run one embedded etcd member until interrupted (test harness)",
		Hidden: true,
		Long: `Run one etcd member (the embedded server behind --metadata embedded:DIR) as
a process of its own. It prints one line once the member serves clients
(for a member of a new multi-member cluster: once a quorum has formed) and
stops on SIGINT or SIGTERM. Restarted on the same --dir, it rejoins with
its data; the cluster flags are then ignored.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return Usagef("--dir is required")
			}
			logger, err := obs.NewLogger(e.stderr, logFormat, logLevel)
			if err != nil {
				return usageError{err}
			}
			cfg := etcdserver.DefaultConfig(dir)
			cfg.Name = name
			cfg.ClientURLs = splitURLs(listenClient)
			cfg.PeerURLs = splitURLs(listenPeer)
			cfg.InitialCluster = initial
			if token != "" {
				cfg.ClusterToken = token
			}
			if tickMs != 0 {
				cfg.TickMs = tickMs
			}
			if electionMs != 0 {
				cfg.ElectionMs = electionMs
			}
			cfg.NoFsync = noFsync
			cfg.Logger = logger
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			srv, err := etcdserver.Start(e.ctx, cfg)
			if err != nil {
				return err
			}
			defer srv.Close()
			line := etcdStarted{Event: "listening", Name: srv.Name(), Dir: srv.Dir(), Endpoints: srv.Endpoints()}
			if e.output == outputJSON {
				err = writeJSON(e.stdout, line)
			} else {
				_, err = fmt.Fprintf(e.stdout, "etcd member %s serving clients on %s\n", line.Name, strings.Join(line.Endpoints, ","))
			}
			if err != nil {
				return err
			}
			select {
			case <-e.ctx.Done():
				logger.Info("shutting down", "cause", e.ctx.Err())
				return nil
			case err := <-srv.Err():
				return fmt.Errorf("etcd member %s: %w", name, err)
			}
		},
	}
	f := c.Flags()
	f.StringVar(&name, "name", "default", "member name, unique in the cluster")
	f.StringVar(&dir, "dir", "", "data directory (kept across restarts)")
	f.StringVar(&listenClient, "listen-client", "http://127.0.0.1:2379", "client URLs (listen and advertise), comma-separated")
	f.StringVar(&listenPeer, "listen-peer", "http://127.0.0.1:2380", "peer URLs (listen and advertise), comma-separated")
	f.StringVar(&initial, "initial-cluster", "", `founding members "name=peerURL,..." (default: this member alone)`)
	f.StringVar(&token, "cluster-token", "", "initial cluster token (default dlog-etcd)")
	f.UintVar(&tickMs, "tick-ms", 0, "raft heartbeat interval in ms (default 10)")
	f.UintVar(&electionMs, "election-ms", 0, "raft election timeout in ms, at least 5 ticks (default 100)")
	f.BoolVar(&noFsync, "no-fsync", false, "skip fsync (tests only: a crash may lose acknowledged writes)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return c
}

func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}
