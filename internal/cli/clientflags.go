package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
	"github.com/dlog-io/dlog/internal/proxy/status"
)

// defaultServer is where client commands look for a proxy: the address
// `dlog sandbox` listens on by default.
const defaultServer = "127.0.0.1:7000"

// clientFlags are the flags of every command that talks to a proxy.
type clientFlags struct {
	server    string
	namespace string
	timeout   time.Duration
}

func addClientFlags(c *cobra.Command, f *clientFlags) {
	fs := c.Flags()
	fs.StringVar(&f.server, "server", defaultServer, "proxy address host:port, or several comma-separated ($DLOG_SERVER)")
	fs.StringVar(&f.namespace, "namespace", "default", "namespace of the logs ($DLOG_NAMESPACE)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "bound on the whole command (0: none; streaming commands ignore it)")
}

func (f clientFlags) servers() []string {
	var out []string
	for _, s := range strings.Split(f.server, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// clientOptions tune the client of one command.
type clientOptions struct {
	// discovery keeps the client's list of proxies fresh, for long-running
	// commands that should survive a proxy going away.
	discovery bool
}

// newClient checks the flags, makes sure a proxy answers at one of the
// servers (so that a missing service is reported at once, with what to do,
// instead of after the client's retries), and returns a client.
func (e *env) newClient(ctx context.Context, f clientFlags, o clientOptions) (*client.Client, error) {
	servers := f.servers()
	if len(servers) == 0 {
		return nil, Usagef("--server is empty: give a proxy address such as %s", defaultServer)
	}
	for _, s := range servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, Usagef("--server %q: want host:port (%v)", s, err)
		}
	}
	if err := dlog.ValidateName(f.namespace); err != nil {
		return nil, Usagef("--namespace %q: %v", f.namespace, err)
	}
	if err := probe(ctx, servers); err != nil {
		return nil, err
	}
	cfg := client.DefaultConfig(servers...)
	cfg.Namespace = f.namespace
	if !o.discovery {
		cfg.DiscoveryInterval = -1
	}
	c, err := client.New(ctx, cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// probe dials the servers until one accepts a TCP connection.
func probe(ctx context.Context, servers []string) error {
	var lastErr error
	for _, s := range servers {
		d := net.Dialer{Timeout: 3 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", s)
		if err == nil {
			conn.Close()
			return nil
		}
		lastErr = err
	}
	return unreachable(strings.Join(servers, ","), lastErr)
}

func unreachable(server string, cause error) error {
	return fmt.Errorf("cannot reach a dlog proxy at %s: is `dlog sandbox` running? set --server or DLOG_SERVER (%v)", server, cause)
}

// commandCtx bounds a one-shot command by --timeout.
func commandCtx(ctx context.Context, f clientFlags) (context.Context, context.CancelFunc) {
	if f.timeout <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, f.timeout)
}

// checkLogName validates a log name given on the command line (bad input:
// exit code 2).
func checkLogName(log string) error {
	if err := dlog.ValidateName(log); err != nil {
		return Usagef("log name %q: %v", log, err)
	}
	return nil
}

// hintError replaces an error's message with one that says what to do
// next, keeping the error matchable (errors.Is, exit codes).
type hintError struct {
	msg string
	err error
}

func (h hintError) Error() string { return h.msg }
func (h hintError) Unwrap() error { return h.err }

func hint(err error, format string, args ...any) error {
	return hintError{msg: fmt.Sprintf(format, args...), err: err}
}

// explain turns a service error into one that says what to do next.
func explain(err error, f clientFlags, log string) error {
	if err == nil {
		return nil
	}
	var owned *dlog.OwnedError
	switch {
	case status.IsTransport(err):
		return hint(err, "%v", unreachable(f.server, err))
	case errors.Is(err, context.DeadlineExceeded) && f.timeout > 0:
		return fmt.Errorf("no answer within --timeout %v: %w", f.timeout, err)
	case errors.Is(err, dlog.ErrLogNotFound):
		return hint(err, "log %q not found in namespace %q: create it with `dlog log create %s` (or check --namespace)", log, f.namespace, log)
	case errors.Is(err, dlog.ErrLogExists):
		return hint(err, "log %q already exists in namespace %q", log, f.namespace)
	case errors.Is(err, dlog.ErrNamespaceNotFound):
		return hint(err, "namespace %q does not exist on this service (check --namespace)", f.namespace)
	case errors.Is(err, dlog.ErrTruncated):
		return hint(err, "that position of %q was truncated: start at a later one, or with --from-start (%v)", log, err)
	case errors.Is(err, dlog.ErrWriterActive):
		return hint(err, "log %q has an active writer: pass --force to fence it and delete the log anyway", log)
	case errors.As(err, &owned):
		return hint(err, "log %q is owned by another writer (%s): %v", log, owned.OwnerID, err)
	case errors.Is(err, dlog.ErrInvalidName), errors.Is(err, dlog.ErrInvalidArgument) && !errors.Is(err, dlog.ErrIndeterminate):
		return usageError{err}
	}
	return err
}

// isTerminal reports whether v is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// errorsIsNotFound reports a definite "no such object" (a subscription, a
// ledger) from the service.
func errorsIsNotFound(err error) bool {
	return errors.Is(err, dlog.ErrNotFound) && dlog.IsDefinite(err)
}

// withClient runs fn with a client of f's proxies under the command's
// deadline, and closes the client after it.
func (e *env) withClient(f clientFlags, fn func(ctx context.Context, cl *client.Client) error) error {
	ctx, cancel := commandCtx(e.ctx, f)
	defer cancel()
	cl, err := e.newClient(ctx, f, clientOptions{})
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(ctx, cl)
}
