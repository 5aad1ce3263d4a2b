package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
)

func init() { commands = append(commands, newNamespaceCmd) }

func newNamespaceCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "namespace",
		Short: "List, create, describe and delete namespaces; set their default retention",
	}
	c.AddCommand(newNamespaceListCmd(e), newNamespaceCreateCmd(e), newNamespaceInfoCmd(e),
		newNamespaceDeleteCmd(e), newNamespaceSetRetentionCmd(e))
	return c
}

// namespaceJSON is what the namespace commands print with -o json.
type namespaceJSON struct {
	Namespace   string `json:"namespace"`
	Action      string `json:"action,omitempty"`
	Created     string `json:"created,omitempty"`
	RetentionMs *int64 `json:"retention-ms,omitempty"`
}

func checkNamespaceName(ns string) error {
	if err := dlog.ValidateName(ns); err != nil {
		return Usagef("namespace name %q: %v", ns, err)
	}
	return nil
}

// explainNamespace turns a namespace error into one that says what to do.
func explainNamespace(err error, f clientFlags, ns string) error {
	switch {
	case errors.Is(err, dlog.ErrNamespaceNotFound):
		return hint(err, "namespace %q not found (`dlog namespace list` shows them)", ns)
	case errors.Is(err, dlog.ErrNamespaceExists):
		return hint(err, "namespace %q already exists", ns)
	case errors.Is(err, dlog.ErrNamespaceNotEmpty):
		return hint(err, "namespace %q holds logs: delete them first (`dlog log list --namespace %s`)", ns, ns)
	}
	return explain(err, f, "")
}

// parseRetention reads a retention argument: a duration >= 0.
func parseRetention(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, Usagef("retention %q: want a duration such as 24h or 90m, 0 for the default", s)
	}
	return d, nil
}

func (e *env) printNamespace(j namespaceJSON, human string) error {
	if e.output == outputJSON {
		return writeJSON(e.stdout, j)
	}
	_, err := fmt.Fprintln(e.stdout, human)
	return err
}

func newNamespaceListCmd(e *env) *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:   "list",
		Short: "List the namespaces",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				names, err := cl.Namespaces(ctx)
				if err != nil {
					return explain(err, f, "")
				}
				p := e.printer()
				for _, n := range names {
					p.row(namespaceJSON{Namespace: n}, n)
				}
				return p.flush("NAMESPACE")
			})
		},
	}
	addClientFlags(c, &f)
	return c
}

// namespaceCmd completes c, a command whose first argument is a
// namespace: it checks the name, runs parse on the other arguments, then
// run with a client; run's service errors get explainNamespace's advice.
func namespaceCmd(e *env, c *cobra.Command, parse func(args []string) error,
	run func(ctx context.Context, cl *client.Client, ns string) error) *cobra.Command {
	var f clientFlags
	c.RunE = func(_ *cobra.Command, args []string) error {
		ns := args[0]
		if err := checkNamespaceName(ns); err != nil {
			return err
		}
		if parse != nil {
			if err := parse(args[1:]); err != nil {
				return err
			}
		}
		return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
			if err := run(ctx, cl, ns); err != nil {
				return explainNamespace(err, f, ns)
			}
			return nil
		})
	}
	addClientFlags(c, &f)
	return c
}

func newNamespaceCreateCmd(e *env) *cobra.Command {
	var retention time.Duration
	c := namespaceCmd(e, &cobra.Command{
		Use:     "create NAMESPACE [--retention D]",
		Short:   "Create an empty namespace",
		Example: "  dlog namespace create team-a\n  dlog namespace create metrics --retention 72h",
		Args:    exactArgs(1, "NAMESPACE"),
	}, func([]string) error {
		if retention < 0 {
			return Usagef("--retention %v: want 0 (the proxy's default) or more", retention)
		}
		return nil
	}, func(ctx context.Context, cl *client.Client, ns string) error {
		if err := cl.CreateNamespace(ctx, ns, retention); err != nil {
			return err
		}
		ms := retention.Milliseconds()
		return e.printNamespace(namespaceJSON{Namespace: ns, Action: "created", RetentionMs: &ms}, "created namespace "+ns)
	})
	c.Flags().DurationVar(&retention, "retention", 0, "default retention of the namespace's logs (0: the proxy's --retention)")
	return c
}

func newNamespaceInfoCmd(e *env) *cobra.Command {
	return namespaceCmd(e, &cobra.Command{
		Use:   "info NAMESPACE",
		Short: "Describe a namespace: creation time, default retention",
		Args:  exactArgs(1, "NAMESPACE"),
	}, nil, func(ctx context.Context, cl *client.Client, ns string) error {
		info, err := cl.NamespaceInfo(ctx, ns)
		if err != nil {
			return err
		}
		ms := info.Retention.Milliseconds()
		j := namespaceJSON{Namespace: ns, Created: info.Created.UTC().Format(time.RFC3339), RetentionMs: &ms}
		if e.output == outputJSON {
			return writeJSON(e.stdout, j)
		}
		retention := "proxy default"
		if info.Retention > 0 {
			retention = info.Retention.String()
		}
		return e.keyValues([][2]string{{"namespace", ns}, {"created", j.Created}, {"retention", retention}})
	})
}

func newNamespaceDeleteCmd(e *env) *cobra.Command {
	return namespaceCmd(e, &cobra.Command{
		Use:   "delete NAMESPACE",
		Short: "Delete an empty namespace",
		Long: `Delete a namespace that holds no log (delete its logs first). A proxy
refuses to delete its own default namespace.`,
		Args: exactArgs(1, "NAMESPACE"),
	}, nil, func(ctx context.Context, cl *client.Client, ns string) error {
		if err := cl.DeleteNamespace(ctx, ns); err != nil {
			return err
		}
		return e.printNamespace(namespaceJSON{Namespace: ns, Action: "deleted"}, "deleted namespace "+ns)
	})
}

func newNamespaceSetRetentionCmd(e *env) *cobra.Command {
	var retention time.Duration
	return namespaceCmd(e, &cobra.Command{
		Use:   "set-retention NAMESPACE DURATION",
		Short: "Change the default retention of a namespace's logs",
		Long: `Change how long the namespace's logs without a retention of their own keep
completed segments after completion. 0 falls back to the proxy's default
(dlog proxy --retention), which keeps segments until truncated unless set.
Collectors apply it on their next pass.`,
		Example: "  dlog namespace set-retention metrics 72h",
		Args:    exactArgs(2, "NAMESPACE DURATION"),
	}, func(args []string) (err error) {
		retention, err = parseRetention(args[0])
		return err
	}, func(ctx context.Context, cl *client.Client, ns string) error {
		if err := cl.SetNamespaceRetention(ctx, ns, retention); err != nil {
			return err
		}
		ms := retention.Milliseconds()
		return e.printNamespace(namespaceJSON{Namespace: ns, Action: "retention-set", RetentionMs: &ms},
			fmt.Sprintf("namespace %s: default retention %v", ns, retention))
	})
}
