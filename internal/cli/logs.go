package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
)

func init() { commands = append(commands, newLogCmd, newSegmentsCmd) }

func newLogCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "log",
		Short: "Create, list, describe, delete and truncate logs",
	}
	c.AddCommand(newLogCreateCmd(e), newLogListCmd(e), newLogInfoCmd(e), newLogDeleteCmd(e), newLogTruncateCmd(e),
		newLogSetRetentionCmd(e))
	return c
}

// logResult is what the log commands that change a log print.
type logResult struct {
	Namespace   string `json:"namespace"`
	Log         string `json:"log"`
	Action      string `json:"action"`
	TruncatedTo string `json:"truncated-to,omitempty"`
	RetentionMs *int64 `json:"retention-ms,omitempty"`
}

func (e *env) printLogResult(r logResult, human string) error {
	if e.output == outputJSON {
		return writeJSON(e.stdout, r)
	}
	_, err := fmt.Fprintln(e.stdout, human)
	return err
}

func newLogCreateCmd(e *env) *cobra.Command {
	var f clientFlags
	var retention time.Duration
	c := &cobra.Command{
		Use:     "create LOG",
		Short:   "Create an empty log",
		Example: "  dlog log create orders\n  dlog log create metrics --retention 24h",
		Args:    exactArgs(1, "LOG"),
		RunE: func(c *cobra.Command, args []string) error {
			log := args[0]
			if err := checkLogName(log); err != nil {
				return err
			}
			if retention < 0 {
				return Usagef("--retention %v: want 0 (the namespace default) or more", retention)
			}
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				if err := cl.CreateLog(ctx, log, retention); err != nil {
					return explain(err, f, log)
				}
				return e.printLogResult(logResult{Namespace: f.namespace, Log: log, Action: "created"},
					fmt.Sprintf("created log %s in namespace %s", log, f.namespace))
			})
		},
	}
	addClientFlags(c, &f)
	c.Flags().DurationVar(&retention, "retention", 0, "delete completed segments this long after completion (0: the namespace's default, which keeps them until truncated unless the proxy runs with --retention)")
	return c
}

func newLogSetRetentionCmd(e *env) *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:   "set-retention LOG DURATION",
		Short: "Change how long a log keeps completed segments",
		Long: `Change how long a log keeps its completed segments after completion. The
collector applies the new period on its next pass: shortening it deletes
the segments already older than it; lengthening it keeps the ones not yet
deleted. 0 falls back to the namespace's default (dlog proxy --retention),
which keeps segments until truncated unless set.`,
		Example: "  dlog log set-retention metrics 72h\n  dlog log set-retention metrics 0",
		Args:    exactArgs(2, "LOG DURATION"),
		RunE: func(c *cobra.Command, args []string) error {
			log := args[0]
			if err := checkLogName(log); err != nil {
				return err
			}
			retention, err := parseRetention(args[1])
			if err != nil {
				return err
			}
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				if err := cl.SetRetention(ctx, log, retention); err != nil {
					return explain(err, f, log)
				}
				ms := retention.Milliseconds()
				human := fmt.Sprintf("log %s in namespace %s keeps completed segments for %v", log, f.namespace, retention)
				if retention == 0 {
					human = fmt.Sprintf("log %s in namespace %s follows the namespace's retention", log, f.namespace)
				}
				return e.printLogResult(logResult{Namespace: f.namespace, Log: log, Action: "retention-set", RetentionMs: &ms}, human)
			})
		},
	}
	addClientFlags(c, &f)
	return c
}

func newLogListCmd(e *env) *cobra.Command {
	var f clientFlags
	var prefix string
	c := &cobra.Command{
		Use:   "list [--prefix P]",
		Short: "List the logs of a namespace",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				p := e.printer()
				token := ""
				for {
					logs, next, err := cl.ListLogs(ctx, prefix, token, 1000)
					if err != nil {
						return explain(err, f, "")
					}
					for _, l := range logs {
						p.row(map[string]string{"namespace": f.namespace, "log": l}, l)
					}
					if next == "" {
						break
					}
					token = next
				}
				return p.flush("LOG")
			})
		},
	}
	addClientFlags(c, &f)
	c.Flags().StringVar(&prefix, "prefix", "", "only logs whose name starts with this")
	return c
}

// logInfoJSON is `dlog log info -o json`.
type logInfoJSON struct {
	Namespace   string `json:"namespace"`
	Log         string `json:"log"`
	FirstDLSN   string `json:"first-dlsn,omitempty"`
	LastDLSN    string `json:"last-dlsn,omitempty"`
	LastTxID    int64  `json:"last-txid"`
	RecordCount int64  `json:"record-count"`
	TruncatedTo string `json:"truncated-to,omitempty"`
	Segments    int    `json:"segments"`
	Owner       string `json:"owner,omitempty"`
	EndOfStream bool   `json:"end-of-stream"`
	Created     string `json:"created"`
	RetentionMs int64  `json:"retention-ms"`
}

func optDLSN(d dlog.DLSN) string {
	if !d.IsValid() {
		return ""
	}
	return d.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newLogInfoCmd(e *env) *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:   "info LOG",
		Short: "Describe a log: first and last position, record count, owner",
		Args:  exactArgs(1, "LOG"),
		RunE: func(c *cobra.Command, args []string) error {
			log := args[0]
			if err := checkLogName(log); err != nil {
				return err
			}
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				info, err := cl.LogInfo(ctx, log)
				if err != nil {
					return explain(err, f, log)
				}
				j := logInfoJSON{Namespace: f.namespace, Log: log, FirstDLSN: optDLSN(info.FirstDLSN), LastDLSN: optDLSN(info.LastDLSN),
					LastTxID: info.LastTxID, RecordCount: info.RecordCount, TruncatedTo: optDLSN(info.TruncatedTo), Segments: info.Segments,
					Owner: info.Owner, EndOfStream: info.EndOfStream, Created: info.Created.UTC().Format(time.RFC3339),
					RetentionMs: info.Retention.Milliseconds()}
				if e.output == outputJSON {
					return writeJSON(e.stdout, j)
				}
				retention := "namespace default"
				if info.Retention > 0 {
					retention = info.Retention.String()
				}
				return e.keyValues([][2]string{
					{"namespace", j.Namespace}, {"log", j.Log},
					{"records", strconv.FormatInt(j.RecordCount, 10)},
					{"first dlsn", orDash(j.FirstDLSN)}, {"last dlsn", orDash(j.LastDLSN)},
					{"last txid", strconv.FormatInt(j.LastTxID, 10)},
					{"truncated to", orDash(j.TruncatedTo)},
					{"segments", strconv.Itoa(j.Segments)},
					{"owner", orDash(j.Owner)},
					{"end of stream", strconv.FormatBool(j.EndOfStream)},
					{"created", j.Created}, {"retention", retention},
				})
			})
		},
	}
	addClientFlags(c, &f)
	return c
}

// keyValues prints a vertical table of one object.
func (e *env) keyValues(kv [][2]string) error {
	p := &printer{w: e.stdout, format: outputTable}
	for _, r := range kv {
		p.row(nil, r[0], r[1])
	}
	return p.flush()
}

func newLogDeleteCmd(e *env) *cobra.Command {
	var f clientFlags
	var force bool
	c := &cobra.Command{
		Use:   "delete LOG",
		Short: "Delete a log and all its records",
		Long: `Delete a log and all its records. The proxy owning it releases it first;
--force also fences a writer that embeds the library and owns the log.`,
		Args: exactArgs(1, "LOG"),
		RunE: func(c *cobra.Command, args []string) error {
			log := args[0]
			if err := checkLogName(log); err != nil {
				return err
			}
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				if err := cl.DeleteLog(ctx, log, force); err != nil {
					if errors.Is(err, dlog.ErrLogNotFound) {
						return hint(err, "log %q not found in namespace %q: nothing to delete (`dlog log list` shows the logs)", log, f.namespace)
					}
					return explain(err, f, log)
				}
				return e.printLogResult(logResult{Namespace: f.namespace, Log: log, Action: "deleted"},
					fmt.Sprintf("deleted log %s from namespace %s", log, f.namespace))
			})
		},
	}
	addClientFlags(c, &f)
	c.Flags().BoolVar(&force, "force", false, "fence an active writer and delete anyway")
	return c
}

func newLogTruncateCmd(e *env) *cobra.Command {
	var f clientFlags
	var to string
	var toTxID int64
	c := &cobra.Command{
		Use:   "truncate LOG (--to DLSN | --to-txid N)",
		Short: "Delete every record before a position",
		Long: `Delete every record before a position (--to DLSN, or the first record
with txid >= --to-txid). The truncation point only moves forward; readers
can no longer start before it, and the space is reclaimed in the
background.`,
		Example: "  dlog log truncate orders --to 3:0:0\n  dlog log truncate orders --to-txid 1700000000000",
		Args:    exactArgs(1, "LOG"),
		RunE: func(c *cobra.Command, args []string) error {
			log := args[0]
			if err := checkLogName(log); err != nil {
				return err
			}
			byDLSN, byTxID := c.Flags().Changed("to"), c.Flags().Changed("to-txid")
			if byDLSN == byTxID {
				return Usagef("give exactly one of --to DLSN and --to-txid N")
			}
			var d dlog.DLSN
			if byDLSN {
				var err error
				if d, err = dlog.ParseDLSN(to); err != nil {
					return Usagef("--to %q: %v (a DLSN looks like 3:1042:7)", to, err)
				}
			}
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				var point dlog.DLSN
				var err error
				if byDLSN {
					point, err = cl.Truncate(ctx, log, d)
				} else {
					point, err = cl.TruncateTxID(ctx, log, toTxID)
				}
				if err != nil {
					return explain(err, f, log)
				}
				return e.printLogResult(logResult{Namespace: f.namespace, Log: log, Action: "truncated", TruncatedTo: optDLSN(point)},
					fmt.Sprintf("log %s now starts at %s", log, orDash(optDLSN(point))))
			})
		},
	}
	addClientFlags(c, &f)
	c.Flags().StringVar(&to, "to", "", "first position to keep (DLSN, e.g. 3:0:0)")
	c.Flags().Int64Var(&toTxID, "to-txid", 0, "keep records from the first one with txid >= this")
	return c
}

// segmentJSON is one line of `dlog segments -o json`.
type segmentJSON struct {
	LSSN            int64  `json:"lssn"`
	LedgerID        int64  `json:"ledger-id"`
	State           string `json:"state"`
	FirstTxID       int64  `json:"first-txid"`
	LastTxID        int64  `json:"last-txid"`
	LastEntryID     int64  `json:"last-entry-id"`
	RecordCount     int64  `json:"record-count"`
	StartSequenceID int64  `json:"start-sequence-id"`
	Truncation      string `json:"truncation"`
	EndOfStream     bool   `json:"end-of-stream"`
	Created         string `json:"created"`
	Completed       string `json:"completed,omitempty"`
}

func newSegmentsCmd(e *env) *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:   "segments LOG",
		Short: "List a log's segments (one ledger each) in order",
		Args:  exactArgs(1, "LOG"),
		RunE: func(c *cobra.Command, args []string) error {
			log := args[0]
			if err := checkLogName(log); err != nil {
				return err
			}
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				segs, err := cl.Segments(ctx, log)
				if err != nil {
					return explain(err, f, log)
				}
				p := e.printer()
				for _, s := range segs {
					j := segmentFromClient(s)
					records, last := strconv.FormatInt(s.RecordCount, 10), strconv.FormatInt(s.LastEntryID, 10)
					if s.InProgress {
						records, last = "-", "-"
					}
					p.row(j, strconv.FormatInt(s.LSSN, 10), strconv.FormatInt(s.LedgerID, 10), j.State, records,
						strconv.FormatInt(s.StartSequenceID, 10), last, j.Truncation, j.Created)
				}
				return p.flush("LSSN", "LEDGER", "STATE", "RECORDS", "START-SEQ", "LAST-ENTRY", "TRUNCATION", "CREATED")
			})
		},
	}
	addClientFlags(c, &f)
	return c
}

func segmentFromClient(s client.Segment) segmentJSON {
	j := segmentJSON{LSSN: s.LSSN, LedgerID: s.LedgerID, State: "completed", FirstTxID: s.FirstTxID, LastTxID: s.LastTxID,
		LastEntryID: s.LastEntryID, RecordCount: s.RecordCount, StartSequenceID: s.StartSequenceID, Truncation: s.Truncation,
		EndOfStream: s.EndOfStream, Created: s.Created.UTC().Format(time.RFC3339)}
	if s.InProgress {
		j.State = "in-progress"
	}
	if !s.Completed.IsZero() {
		j.Completed = s.Completed.UTC().Format(time.RFC3339)
	}
	return j
}

// exactArgs is cobra.ExactArgs with a usage error that names the
// arguments.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if len(args) != n {
			return Usagef("%s takes %s (got %d arguments); see `%s --help`", c.CommandPath(), names, len(args), c.CommandPath())
		}
		return nil
	}
}
