package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
)

func init() { commands = append(commands, newAdminCmd) }

func newAdminCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "admin",
		Short: "Operator tools that talk to the metadata service and bookies directly",
		Long: `Operator tools working on the metadata service (etcd) and the bookies
directly, not through a proxy: they keep working when no proxy runs.

  inspect          check logs' metadata for inconsistencies, and repair them
  recover-ledger   fence and close a ledger whose writer is gone
  find-ledger      say which log a ledger belongs to
  audit-ledgers    find ledgers no segment references (in metadata or on
                   bookies), and delete them
  limbo            show whether a stopped bookie is in limbo (after a
                   suspect journal cut) and clear it once that is safe

They find the metadata service with --metadata (or DLOG_METADATA): etcd
client URLs such as http://10.0.0.1:2379,http://10.0.0.2:2379. Without it
they use the sandbox recorded in the default sandbox directory, if any.
Commands that change anything ask for confirmation on a terminal; --yes
confirms in scripts.`,
	}
	c.AddCommand(newInspectCmd(e), newRecoverLedgerCmd(e), newFindLedgerCmd(e), newAuditLedgersCmd(e), newAdminLimboCmd(e))
	return c
}

// metadataFlags are the flags of commands that open the metadata store.
type metadataFlags struct {
	url     string
	cluster string
	timeout time.Duration
}

func addMetadataFlags(c *cobra.Command, f *metadataFlags) {
	fs := c.Flags()
	fs.StringVar(&f.url, "metadata", "", "metadata service: etcd URLs http://h1:2379,... (default: the sandbox in the default --dir) ($DLOG_METADATA)")
	fs.StringVar(&f.cluster, "cluster", "default", "cluster name in the metadata service")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Minute, "bound on the whole command (0: none)")
}

// openMetadata opens the metadata store after checking that it answers.
func (e *env) openMetadata(ctx context.Context, f metadataFlags) (*metadata.KVStore, error) {
	u := f.url
	if u == "" {
		u = sandboxMetadata(ctx)
		if u == "" {
			return nil, Usagef("--metadata is required: the etcd client URLs of the cluster (http://host:2379,...); `dlog sandbox` prints its own")
		}
	}
	if strings.HasPrefix(u, "memory:") || strings.HasPrefix(u, "embedded:") {
		return nil, Usagef("--metadata %q: admin tools need a running metadata service (etcd URLs), not %s", u, strings.SplitN(u, ":", 2)[0]+":")
	}
	if err := probeMetadata(ctx, u); err != nil {
		return nil, err
	}
	opts := metadata.DefaultOptions()
	opts.Cluster = f.cluster
	st, err := metadata.Open(ctx, u, opts)
	if err != nil {
		return nil, usageError{fmt.Errorf("--metadata %q: %w", u, err)}
	}
	return st, nil
}

// probeMetadata dials the endpoints of an etcd URL list until one accepts
// a TCP connection.
func probeMetadata(ctx context.Context, urls string) error {
	var lastErr error
	for _, s := range strings.Split(urls, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		host := s
		if strings.Contains(s, "://") {
			p, err := url.Parse(s)
			if err != nil {
				return Usagef("--metadata %q: %v", s, err)
			}
			host = p.Host
		}
		d := net.Dialer{Timeout: 3 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", host)
		if err == nil {
			conn.Close()
			return nil
		}
		lastErr = err
	}
	return fmt.Errorf("cannot reach the metadata service at %s: is etcd (or `dlog sandbox`) running? set --metadata or DLOG_METADATA (%v)", urls, lastErr)
}

// adminCtx bounds an admin command by --timeout.
func adminCtx(ctx context.Context, f metadataFlags) (context.Context, context.CancelFunc) {
	if f.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, f.timeout)
}

// newLedgerClient returns a ledger client on st, for recovery, deletion
// and bookie probes.
func newLedgerClient(ctx context.Context, st metadata.Store) (*ledger.Client, error) {
	lc, err := ledger.New(ctx, st, ledger.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("ledger client: %w", err)
	}
	return lc, nil
}

// errNotConfirmed: the user declined (or could not be asked).
var errNotConfirmed = errors.New("not confirmed")

// confirm asks a yes/no question on the terminal (stderr for the
// question, stdin for the answer); yes skips it. Without a terminal it
// refuses: changes to a cluster need an explicit --yes in scripts.
func (e *env) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	if !isTerminal(e.stdin) {
		return Usagef("%s: refusing without confirmation (stdin is not a terminal): pass --yes", strings.TrimSuffix(question, "?"))
	}
	fmt.Fprintf(e.stderr, "%s [y/N] ", question)
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return fmt.Errorf("%w: nothing changed", errNotConfirmed)
}
