package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of the dlog command.
const (
	ExitOK    = 0 // success
	ExitError = 1 // the operation failed
	ExitUsage = 2 // bad flags or arguments
)

// usageError marks errors caused by how the command was called.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Usagef returns a usage error (exit code 2).
func Usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// env is what every command gets: streams and the process context.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	// Global settings (persistent flags).
	configPath string
	output     string
	// sources records where each flag of the running command got its value.
	sources map[string]source
}

// Main runs the dlog command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "dlog: %v\n", err)
	var u usageError
	if errors.As(err, &u) || isCobraUsage(err) {
		return ExitUsage
	}
	return ExitError
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "dlog",
		Short: "dlog: a replicated, durable log service",
		Long: `dlog is a replicated, durable log service: named logs of records, each
record acknowledged only once an ack quorum of bookies has fsynced it.

Start everything on one machine with ` + "`dlog sandbox`" + `, then use the client
commands (log, write, read, segments, ...) against it. Client commands
find the service with --server or DLOG_SERVER (default 127.0.0.1:7000);
admin commands talk to the metadata service with --metadata or
DLOG_METADATA.

Every flag can also come from a YAML file (--config) or a DLOG_<FLAG>
environment variable; ` + "`dlog config print CMD`" + ` shows where each value
comes from. -o json prints one JSON object per line.

Exit status: 0 success, 1 the operation failed, 2 bad flags, arguments or
input.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = false
	// Flag parse errors are usage errors (exit 2).
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&e.configPath, "config", os.Getenv("DLOG_CONFIG"), "YAML config file (default $DLOG_CONFIG)")
	pf.StringVarP(&e.output, "output", "o", outputTable, "output format: table or json (one object per line)")
	root.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		if e.output != outputTable && e.output != outputJSON {
			return Usagef("--output %q: want table or json", e.output)
		}
		file, err := loadSettings(e.configPath)
		if err != nil {
			return usageError{err}
		}
		e.sources = map[string]source{}
		return applyConfig(c, file, e.sources)
	}
	root.AddCommand(newVersionCmd(e), newConfigCmd(e))
	for _, add := range commands {
		root.AddCommand(add(e))
	}
	// The completion command captures the output stream when it is made.
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.InitDefaultCompletionCmd()
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes every command group below the root (log,
// ledger, admin, completion, ...) refuse an argument that names none of
// its commands as a usage error (exit 2); cobra itself prints the group's
// help and succeeds. A group called without arguments prints its help.
func refuseUnknownSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		if sub.HasSubCommands() && sub.Run == nil && sub.RunE == nil {
			sub.Args = cobra.ArbitraryArgs
			sub.RunE = func(c *cobra.Command, args []string) error {
				if len(args) > 0 {
					var names []string
					for _, s := range c.Commands() {
						if s.IsAvailableCommand() {
							names = append(names, s.Name())
						}
					}
					return Usagef("unknown command %q for %q: want one of %s (see %s --help)",
						args[0], c.CommandPath(), strings.Join(names, ", "), c.CommandPath())
				}
				return c.Help()
			}
		}
		refuseUnknownSubcommands(sub)
	}
}

// isCobraUsage recognises the usage errors cobra makes itself (an unknown
// command, a missing required flag), which do not go through the flag
// error function.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command ", "required flag(s) ", "invalid argument ", "accepts ", "unknown shorthand flag", "unknown flag"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// commands lists constructors registered by the files of this package.
var commands []func(*env) *cobra.Command

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the dlog version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if e.output == outputJSON {
				return writeJSON(e.stdout, map[string]string{"version": Version})
			}
			_, err := fmt.Fprintln(e.stdout, "dlog", Version)
			return err
		},
	}
}

// Version is the dlog release; overridden at link time for releases.
var Version = "0.1.0-dev"
