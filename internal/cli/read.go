package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
)

func init() { commands = append(commands, newReadCmd) }

// readJSON is one line of `dlog read -o json`.
type readJSON struct {
	DLSN       string `json:"dlsn"`
	TxID       int64  `json:"txid"`
	SequenceID int64  `json:"sequence-id"`
	payloadJSON
}

type readOptions struct {
	from, subscription string
	fromTxID           int64
	start, end         bool
	follow             bool
	limit              int64
}

func newReadCmd(e *env) *cobra.Command {
	var f clientFlags
	var o readOptions
	c := &cobra.Command{
		Use:   "read LOG [--from DLSN | --from-txid N | --from-start | --from-end] [--follow] [--limit N]",
		Short: "Print a log's records, one per line; --follow waits for new ones",
		Long: `Print a log's records in order, one payload per line (with -o json one
object per record: dlsn, txid, sequence-id, payload).

Start with --from DLSN (that record or the first after it), --from-txid N
(the first record with txid >= N), --from-start (the default),
--from-end (only records written from now on) or --from-subscription NAME
(after the position stored for a subscription).

Without --follow it stops at the last record that existed when it
started; with --follow it keeps waiting for new records until
interrupted, and resumes by itself after a proxy or network failure,
never skipping or repeating a record.`,
		Example: `  dlog read orders
  dlog read orders --from 2:15:0 --limit 10 -o json
  dlog read orders --from-end --follow`,
		Args: exactArgs(1, "LOG"),
		RunE: func(c *cobra.Command, args []string) error {
			log := args[0]
			if err := checkLogName(log); err != nil {
				return err
			}
			pos, err := readPosition(c, o)
			if err != nil {
				return err
			}
			if o.limit < 0 {
				return Usagef("--limit %d: want 0 (no limit) or more", o.limit)
			}
			cl, err := e.newClient(e.ctx, f, clientOptions{discovery: o.follow})
			if err != nil {
				return err
			}
			defer cl.Close()
			return runRead(e, cl, f, log, pos, o)
		},
	}
	addClientFlags(c, &f)
	fs := c.Flags()
	fs.StringVar(&o.from, "from", "", "start at this DLSN (e.g. 1:0:0) or the first record after it")
	fs.Int64Var(&o.fromTxID, "from-txid", 0, "start at the first record with txid >= N")
	fs.BoolVar(&o.start, "from-start", false, "start at the first record (default)")
	fs.BoolVar(&o.end, "from-end", false, "start after the last record (with --follow: only new records)")
	fs.StringVar(&o.subscription, "from-subscription", "", "start after the position stored for this subscription")
	fs.BoolVarP(&o.follow, "follow", "f", false, "keep waiting for new records")
	fs.Int64Var(&o.limit, "limit", 0, "stop after N records (0: no limit)")
	return c
}

func readPosition(c *cobra.Command, o readOptions) (client.Position, error) {
	n := 0
	for _, name := range []string{"from", "from-txid", "from-start", "from-end", "from-subscription"} {
		if c.Flags().Changed(name) {
			n++
		}
	}
	if n > 1 {
		return client.Position{}, Usagef("give at most one of --from, --from-txid, --from-start, --from-end and --from-subscription")
	}
	switch {
	case c.Flags().Changed("from"):
		d, err := dlog.ParseDLSN(o.from)
		if err != nil {
			return client.Position{}, Usagef("--from %q: %v (a DLSN looks like 3:1042:7)", o.from, err)
		}
		return client.AtDLSN(d), nil
	case c.Flags().Changed("from-txid"):
		if o.fromTxID < 0 {
			return client.Position{}, Usagef("--from-txid %d: txids are not negative", o.fromTxID)
		}
		return client.AtTxID(o.fromTxID), nil
	case o.end:
		return client.AtEnd(), nil
	case c.Flags().Changed("from-subscription"):
		if err := dlog.ValidateName(o.subscription); err != nil {
			return client.Position{}, Usagef("--from-subscription %q: %v", o.subscription, err)
		}
		return client.AtSubscription(o.subscription), nil
	}
	return client.AtStart(), nil
}

type readItem struct {
	rec dlog.ReadRecord
	err error
}

// runRead streams records to stdout. A goroutine receives records into a
// small channel; the printer flushes whenever it has caught up, so a
// follower sees each record at once while a bulk read is buffered.
func runRead(e *env, cl *client.Client, f clientFlags, log string, pos client.Position, o readOptions) error {
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	items := make(chan readItem, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(items)
		pumpRecords(ctx, e, cl, log, pos, o, items)
	}()
	defer func() {
		cancel()
		for range items {
		}
		<-done
	}()

	out := bufio.NewWriterSize(e.stdout, 64<<10)
	for it := range items {
		if it.err != nil {
			if ferr := out.Flush(); ferr != nil {
				return ferr
			}
			switch {
			case errors.Is(it.err, io.EOF):
				return nil
			case errors.Is(it.err, dlog.ErrEndOfStream):
				fmt.Fprintf(e.stderr, "dlog read: %s ends here (end of stream)\n", log)
				return nil
			case e.ctx.Err() != nil && o.follow:
				return nil // interrupted: how a follower normally stops
			}
			return explain(it.err, f, log)
		}
		if err := printRecord(e, out, it.rec); err != nil {
			return err
		}
		if len(items) == 0 {
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
	return out.Flush()
}

// pumpRecords reads records into items until an error it cannot get past
// (sent as the last item). A follower resumes after failures that may
// heal (a proxy restarting, a network blip) from the record after the
// last one it delivered, waiting between attempts, until ctx ends.
func pumpRecords(ctx context.Context, e *env, cl *client.Client, log string, pos client.Position, o readOptions, items chan<- readItem) {
	send := func(it readItem) bool {
		select {
		case items <- it:
			return true
		case <-ctx.Done():
			return false
		}
	}
	remaining := o.limit
	backoff := 100 * time.Millisecond
	warned := false
	for {
		r, err := cl.OpenReader(ctx, log, pos, client.ReadOptions{Follow: o.follow, Limit: remaining})
		if err != nil {
			send(readItem{err: err})
			return
		}
		for {
			rec, err := r.Next(ctx)
			if err != nil {
				r.Close()
				if !o.follow || ctx.Err() != nil || dlog.IsDefinite(err) || errors.Is(err, io.EOF) || errors.Is(err, dlog.ErrEndOfStream) {
					send(readItem{err: err})
					return
				}
				if !warned {
					fmt.Fprintf(e.stderr, "dlog read: lost the service (%v); resuming when it is back\n", err)
					warned = true
				}
				break
			}
			pos = client.AtDLSN(rec.DLSN.Next())
			backoff = 100 * time.Millisecond
			if warned {
				fmt.Fprintln(e.stderr, "dlog read: resumed")
				warned = false
			}
			if !send(readItem{rec: rec}) {
				r.Close()
				return
			}
			if remaining > 0 {
				remaining--
				if remaining == 0 {
					r.Close()
					send(readItem{err: io.EOF})
					return
				}
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			send(readItem{err: ctx.Err()})
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func printRecord(e *env, w io.Writer, r dlog.ReadRecord) error {
	if e.output == outputJSON {
		return writeJSON(w, readJSON{DLSN: r.DLSN.String(), TxID: r.TxID, SequenceID: r.SequenceID, payloadJSON: newPayloadJSON(r.Payload)})
	}
	if _, err := w.Write(r.Payload); err != nil {
		return err
	}
	_, err := w.Write([]byte{'\n'})
	return err
}
