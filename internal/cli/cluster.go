package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
	"github.com/dlog-io/dlog/internal/recordset"
)

func init() {
	commands = append(commands, newBookiesCmd, newProxiesCmd, newLedgerCmd, newSubscriptionCmd)
}

// bookieJSON is one line of `dlog bookies -o json`.
type bookieJSON struct {
	ID         string `json:"id"`
	Address    string `json:"address"`
	State      string `json:"state"`
	Region     string `json:"region,omitempty"`
	Rack       string `json:"rack,omitempty"`
	FreeBytes  uint64 `json:"free-bytes"`
	TotalBytes uint64 `json:"total-bytes"`
}

func newBookiesCmd(e *env) *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:   "bookies",
		Short: "List the live bookies (storage nodes)",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				bs, err := cl.Bookies(ctx)
				if err != nil {
					return explain(err, f, "")
				}
				p := e.printer()
				for _, b := range bs {
					j := bookieJSON{ID: b.ID, Address: b.Address, State: b.State, Region: b.Region, Rack: b.Rack, FreeBytes: b.FreeBytes, TotalBytes: b.TotalBytes}
					p.row(j, b.ID, b.Address, b.State, orDash(b.Region), orDash(b.Rack), humanBytes(b.FreeBytes), humanBytes(b.TotalBytes))
				}
				return p.flush("ID", "ADDRESS", "STATE", "REGION", "RACK", "FREE", "TOTAL")
			})
		},
	}
	addClientFlags(c, &f)
	return c
}

// proxyJSON is one line of `dlog proxies -o json`.
type proxyJSON struct {
	ID            string `json:"id"`
	Address       string `json:"address"`
	HTTPAddress   string `json:"http-address,omitempty"`
	Region        string `json:"region,omitempty"`
	AcceptNewLogs bool   `json:"accept-new-logs"`
}

func newProxiesCmd(e *env) *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:   "proxies",
		Short: "List the live proxies",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				ps, err := cl.Proxies(ctx)
				if err != nil {
					return explain(err, f, "")
				}
				p := e.printer()
				for _, x := range ps {
					j := proxyJSON{ID: x.ID, Address: x.Address, HTTPAddress: x.HTTPAddress, Region: x.Region, AcceptNewLogs: x.AcceptNewLogs}
					p.row(j, x.ID, x.Address, orDash(x.HTTPAddress), orDash(x.Region), strconv.FormatBool(x.AcceptNewLogs))
				}
				return p.flush("ID", "ADDRESS", "HTTP", "REGION", "ACCEPTS-NEW-LOGS")
			})
		},
	}
	addClientFlags(c, &f)
	return c
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func newLedgerCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "ledger", Short: "Inspect ledgers (the replicated storage unit of a segment)"}
	c.AddCommand(newLedgerInfoCmd(e), newLedgerReadCmd(e))
	return c
}

// ledgerJSON is `dlog ledger info -o json`.
type ledgerJSON struct {
	LedgerID     int64             `json:"ledger-id"`
	EnsembleSize int32             `json:"ensemble-size"`
	WriteQuorum  int32             `json:"write-quorum"`
	AckQuorum    int32             `json:"ack-quorum"`
	State        string            `json:"state"`
	LastEntryID  int64             `json:"last-entry-id"`
	Length       int64             `json:"length"`
	Fragments    []fragmentJSON    `json:"fragments"`
	Custom       map[string]string `json:"custom,omitempty"`
}

type fragmentJSON struct {
	FirstEntryID int64    `json:"first-entry-id"`
	Bookies      []string `json:"bookies"`
}

func parseLedgerID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, Usagef("ledger id %q: want a positive integer (see `dlog segments LOG`)", s)
	}
	return id, nil
}

func newLedgerInfoCmd(e *env) *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:   "info ID",
		Short: "Show a ledger's metadata: replication, state, ensembles",
		Args:  exactArgs(1, "a ledger ID"),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseLedgerID(args[0])
			if err != nil {
				return err
			}
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				m, err := cl.Ledger(ctx, id)
				if err != nil {
					if errorsIsNotFound(err) {
						return fmt.Errorf("ledger %d not found (deleted, or never created): %w", id, err)
					}
					return explain(err, f, "")
				}
				j := ledgerJSON{LedgerID: m.GetLedgerId(), EnsembleSize: m.GetEnsembleSize(), WriteQuorum: m.GetWriteQuorum(), AckQuorum: m.GetAckQuorum(),
					State: m.GetState(), LastEntryID: m.GetLastEntryId(), Length: m.GetLength(), Custom: m.GetCustom()}
				for _, fr := range m.GetFragments() {
					j.Fragments = append(j.Fragments, fragmentJSON{FirstEntryID: fr.GetFirstEntryId(), Bookies: fr.GetBookies()})
				}
				if e.output == outputJSON {
					return writeJSON(e.stdout, j)
				}
				kv := [][2]string{
					{"ledger", strconv.FormatInt(j.LedgerID, 10)},
					{"state", j.State},
					{"replication", fmt.Sprintf("ensemble %d, write quorum %d, ack quorum %d", j.EnsembleSize, j.WriteQuorum, j.AckQuorum)},
					{"last entry", strconv.FormatInt(j.LastEntryID, 10)},
					{"length", strconv.FormatInt(j.Length, 10)},
				}
				for _, fr := range j.Fragments {
					kv = append(kv, [2]string{fmt.Sprintf("entries %d..", fr.FirstEntryID), strings.Join(fr.Bookies, ", ")})
				}
				keys := make([]string, 0, len(j.Custom))
				for k := range j.Custom {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					kv = append(kv, [2]string{k, j.Custom[k]})
				}
				return e.keyValues(kv)
			})
		},
	}
	addClientFlags(c, &f)
	return c
}

// ledgerRecordJSON is one line of `dlog ledger read -o json`.
type ledgerRecordJSON struct {
	EntryID     int64 `json:"entry-id"`
	Slot        int   `json:"slot"`
	TxID        int64 `json:"txid"`
	Control     bool  `json:"control,omitempty"`
	EndOfStream bool  `json:"end-of-stream,omitempty"`
	payloadJSON
}

// ledgerEntryJSON is one line of `dlog ledger read --raw -o json`.
type ledgerEntryJSON struct {
	EntryID int64  `json:"entry-id"`
	Bytes   int    `json:"bytes"`
	Records uint32 `json:"records"`
	Codec   string `json:"codec"`
	Error   string `json:"error,omitempty"`
}

func newLedgerReadCmd(e *env) *cobra.Command {
	var f clientFlags
	var first, last int64
	var raw bool
	c := &cobra.Command{
		Use:   "read ID [--first N] [--last N] [--raw]",
		Short: "Read a ledger's entries and the records in them",
		Long: `Read a ledger's entries first..last (default: all confirmed ones) and print
the records each holds: entry id, slot, txid and payload (control records
such as end-of-stream are marked). --raw prints one line per entry (size,
record count, compression) instead.`,
		Args: exactArgs(1, "a ledger ID"),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseLedgerID(args[0])
			if err != nil {
				return err
			}
			if first < 0 || (last >= 0 && last < first) {
				return Usagef("--first %d --last %d: want 0 <= first <= last (last -1: to the end)", first, last)
			}
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				p := e.printer()
				for ent, err := range cl.ReadLedger(ctx, id, first, last) {
					if err != nil {
						if ferr := p.flush(); ferr != nil {
							return ferr
						}
						if errorsIsNotFound(err) {
							return fmt.Errorf("ledger %d not found (deleted, or never created; `dlog segments LOG` lists a log's ledgers): %w", id, err)
						}
						return explain(err, f, "")
					}
					set, derr := recordset.Decode(ent.Payload, 0)
					if raw {
						j := ledgerEntryJSON{EntryID: ent.ID, Bytes: len(ent.Payload)}
						if derr != nil {
							j.Error = derr.Error()
						} else {
							j.Records, j.Codec = set.Count, set.Codec.String()
						}
						p.row(j, strconv.FormatInt(j.EntryID, 10), strconv.Itoa(j.Bytes), strconv.FormatUint(uint64(j.Records), 10), orDash(j.Codec), orDash(j.Error))
						continue
					}
					if derr != nil {
						return fmt.Errorf("ledger %d entry %d does not hold a record set (%v): read it with --raw", id, ent.ID, derr)
					}
					for slot, r := range set.Records {
						j := ledgerRecordJSON{EntryID: ent.ID, Slot: slot, TxID: r.TxID, Control: r.Flags.IsControl(), EndOfStream: r.Flags.IsEndOfStream(),
							payloadJSON: newPayloadJSON(r.Payload)}
						kind := "record"
						switch {
						case j.EndOfStream:
							kind = "end-of-stream"
						case j.Control:
							kind = "control"
						}
						text := ""
						if j.Payload != nil {
							text = *j.Payload
						} else if j.PayloadBase64 != nil {
							text = "base64:" + *j.PayloadBase64
						}
						p.row(j, strconv.FormatInt(ent.ID, 10), strconv.Itoa(slot), strconv.FormatInt(r.TxID, 10), kind, text)
					}
				}
				if raw {
					return p.flush("ENTRY", "BYTES", "RECORDS", "CODEC", "ERROR")
				}
				return p.flush("ENTRY", "SLOT", "TXID", "KIND", "PAYLOAD")
			})
		},
	}
	addClientFlags(c, &f)
	c.Flags().Int64Var(&first, "first", 0, "first entry id")
	c.Flags().Int64Var(&last, "last", -1, "last entry id (-1: the last confirmed one)")
	c.Flags().BoolVar(&raw, "raw", false, "one line per entry instead of one per record")
	return c
}

func newSubscriptionCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "subscription",
		Aliases: []string{"sub"},
		Short:   "Read and store named reader positions (subscriptions)",
		Long: `A subscription is a named position in a log that readers store as they
go, so that a restarted reader continues after the last record it
processed (dlog read --from-subscription NAME).`,
	}
	c.AddCommand(newSubscriptionGetCmd(e), newSubscriptionCommitCmd(e))
	return c
}

// subscriptionJSON is what the subscription commands print.
type subscriptionJSON struct {
	Namespace    string `json:"namespace"`
	Log          string `json:"log"`
	Subscription string `json:"subscription"`
	DLSN         string `json:"dlsn"`
	Updated      string `json:"updated,omitempty"`
}

func checkSubscriptionName(name string) error {
	if err := dlog.ValidateName(name); err != nil {
		return Usagef("subscription name %q: %v", name, err)
	}
	return nil
}

func newSubscriptionGetCmd(e *env) *cobra.Command {
	var f clientFlags
	c := &cobra.Command{
		Use:   "get LOG NAME",
		Short: "Show the position stored for a subscription",
		Args:  exactArgs(2, "LOG and NAME"),
		RunE: func(c *cobra.Command, args []string) error {
			log, name := args[0], args[1]
			if err := checkLogName(log); err != nil {
				return err
			}
			if err := checkSubscriptionName(name); err != nil {
				return err
			}
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				d, updated, err := cl.Subscription(ctx, log, name)
				if err != nil {
					if errorsIsNotFound(err) {
						return fmt.Errorf("log %s has no subscription %q: store one with `dlog subscription commit %s %s DLSN`: %w", log, name, log, name, err)
					}
					return explain(err, f, log)
				}
				j := subscriptionJSON{Namespace: f.namespace, Log: log, Subscription: name, DLSN: d.String(), Updated: updated.UTC().Format(time.RFC3339)}
				if e.output == outputJSON {
					return writeJSON(e.stdout, j)
				}
				return e.keyValues([][2]string{{"log", log}, {"subscription", name}, {"dlsn", j.DLSN}, {"updated", j.Updated}})
			})
		},
	}
	addClientFlags(c, &f)
	return c
}

func newSubscriptionCommitCmd(e *env) *cobra.Command {
	var f clientFlags
	var reset bool
	c := &cobra.Command{
		Use:   "commit LOG NAME DLSN",
		Short: "Store a subscription's position (forward only unless --reset)",
		Long: `Store DLSN as the position of subscription NAME of LOG: the last record
the subscriber processed. A reader started with --from-subscription NAME
continues after it. Positions only move forward unless --reset.`,
		Args: exactArgs(3, "LOG, NAME and DLSN"),
		RunE: func(c *cobra.Command, args []string) error {
			log, name := args[0], args[1]
			if err := checkLogName(log); err != nil {
				return err
			}
			if err := checkSubscriptionName(name); err != nil {
				return err
			}
			d, err := dlog.ParseDLSN(args[2])
			if err != nil {
				return Usagef("DLSN %q: %v (a DLSN looks like 3:1042:7)", args[2], err)
			}
			return e.withClient(f, func(ctx context.Context, cl *client.Client) error {
				if err := cl.CommitSubscription(ctx, log, name, d, reset); err != nil {
					return explain(err, f, log)
				}
				j := subscriptionJSON{Namespace: f.namespace, Log: log, Subscription: name, DLSN: d.String()}
				if e.output == outputJSON {
					return writeJSON(e.stdout, j)
				}
				_, err = fmt.Fprintf(e.stdout, "subscription %s of %s is at %s\n", name, log, d)
				return err
			})
		},
	}
	addClientFlags(c, &f)
	c.Flags().BoolVar(&reset, "reset", false, "allow moving the position backwards")
	return c
}
