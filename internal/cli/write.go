package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
)

func init() { commands = append(commands, newWriteCmd) }

// writeOptions are the flags of `dlog write`.
type writeOptions struct {
	file         string
	verbose      bool
	batchRecords int
	batchBytes   int
}

// writtenJSON is one line of `dlog write -v -o json`: an acknowledged
// record.
type writtenJSON struct {
	Line int64 `json:"line"`
	payloadJSON
	DLSN      string `json:"dlsn"`
	TxID      int64  `json:"txid"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// payloadJSON holds a payload as text when it is valid UTF-8, otherwise
// as base64 (JSON strings cannot hold arbitrary bytes): exactly one of the
// two fields is present.
type payloadJSON struct {
	Payload       *string `json:"payload,omitempty"`
	PayloadBase64 *string `json:"payload-base64,omitempty"`
}

func newPayloadJSON(p []byte) payloadJSON {
	if utf8.Valid(p) {
		s := string(p)
		return payloadJSON{Payload: &s}
	}
	s := base64.StdEncoding.EncodeToString(p)
	return payloadJSON{PayloadBase64: &s}
}

// writeSummary is what `dlog write` prints without -v.
type writeSummary struct {
	Namespace string `json:"namespace"`
	Log       string `json:"log"`
	Records   int64  `json:"records"`
	FirstDLSN string `json:"first-dlsn,omitempty"`
	LastDLSN  string `json:"last-dlsn,omitempty"`
	LastTxID  int64  `json:"last-txid,omitempty"`
}

func newWriteCmd(e *env) *cobra.Command {
	var f clientFlags
	var o writeOptions
	c := &cobra.Command{
		Use:   "write LOG [--file F] [-v]",
		Short: "Append records to a log: one per line of stdin (or --file)",
		Long: `Append records to a log, one record per input line (without its line
ending), in input order. Records are streamed: while one batch is being
acknowledged the next one fills up, so a large input goes at the
service's full speed. Writes are idempotent across proxy failures (a
retried batch is never appended twice).

Without -v it prints a summary at the end. With -v it prints every record
as it is acknowledged: its DLSN, txid and input line (with -o json, one
object per record: line, payload, dlsn, txid).

If a record fails, the records before it are in the log, nothing after it
was written, and dlog write exits with status 1 saying which line failed
and whether it may be in the log anyway (an indeterminate failure).`,
		Example: `  printf 'one\ntwo\nthree\n' | dlog write orders
  dlog write orders --file events.txt -v -o json
  seq 1000000 | dlog write numbers`,
		Args: exactArgs(1, "LOG"),
		RunE: func(c *cobra.Command, args []string) error {
			log := args[0]
			if err := checkLogName(log); err != nil {
				return err
			}
			if o.batchRecords < 1 || o.batchBytes < 1 {
				return Usagef("--batch-records and --batch-bytes must be at least 1")
			}
			in := e.stdin
			if o.file != "" && o.file != "-" {
				fh, err := os.Open(o.file)
				if err != nil {
					return usageError{fmt.Errorf("--file: %w", err)}
				}
				defer fh.Close()
				in = fh
			} else if in == nil {
				return Usagef("no input: pipe records into stdin or pass --file")
			} else if isTerminal(in) {
				fmt.Fprintln(e.stderr, "dlog write: reading records from the terminal, one per line; end with Ctrl-D")
			}
			cl, err := e.newClient(e.ctx, f, clientOptions{discovery: true})
			if err != nil {
				return err
			}
			defer cl.Close()
			return runWrite(e, cl, f, log, in, o)
		},
	}
	addClientFlags(c, &f)
	fs := c.Flags()
	fs.StringVar(&o.file, "file", "", "read records from this file instead of stdin (- is stdin)")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "print every record as it is acknowledged")
	fs.IntVar(&o.batchRecords, "batch-records", 1000, "most records sent in one request")
	fs.IntVar(&o.batchBytes, "batch-bytes", 1<<20, "most payload bytes sent in one request")
	return c
}

// inputRecord is one input line.
type inputRecord struct {
	line    int64
	payload []byte
}

// runWrite reads lines on one goroutine and sends them in order, one
// WriteBulk at a time, each carrying whatever accumulated while the
// previous one was in flight (up to the batch bounds). One request in
// flight keeps the log in input order; batching keeps it fast.
func runWrite(e *env, cl *client.Client, f clientFlags, log string, in io.Reader, o writeOptions) error {
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	// Bounded: the reader stays at most a few batches ahead.
	lines := make(chan inputRecord, 4*o.batchRecords)
	readErr := make(chan error, 1)
	// The reader goroutine ends at EOF, on a read error, or at its next
	// line once ctx is cancelled (on return); a read blocked on a terminal
	// ends with the process.
	go func() {
		defer close(lines)
		readErr <- readLines(ctx, in, lines)
	}()

	out := bufio.NewWriterSize(e.stdout, 64<<10)
	defer out.Flush()
	var sum writeSummary
	sum.Namespace, sum.Log = f.namespace, log
	batch := make([]inputRecord, 0, o.batchRecords)
	recs := make([]dlog.Record, 0, o.batchRecords)
	for {
		batch, recs = batch[:0], recs[:0]
		first, ok := <-lines
		if !ok {
			break
		}
		batch = append(batch, first)
		size := len(first.payload)
	fill:
		for len(batch) < o.batchRecords && size < o.batchBytes {
			select {
			case r, ok := <-lines:
				if !ok {
					break fill
				}
				batch = append(batch, r)
				size += len(r.payload)
			default:
				break fill
			}
		}
		for _, r := range batch {
			recs = append(recs, dlog.Record{Payload: r.payload})
		}
		res, err := cl.WriteBulk(ctx, log, recs)
		for i, r := range res {
			if sum.Records == 0 {
				sum.FirstDLSN = r.DLSN.String()
			}
			sum.Records++
			sum.LastDLSN, sum.LastTxID = r.DLSN.String(), r.TxID
			if o.verbose {
				if perr := printWritten(e, out, batch[i], r); perr != nil {
					return perr
				}
			}
		}
		if o.verbose {
			if ferr := out.Flush(); ferr != nil {
				return ferr
			}
		}
		if err != nil {
			failed := batch[len(res)]
			outcome := "it was not written, nor anything after it"
			if !dlog.IsDefinite(err) {
				outcome = "it may or may not be in the log (read the log to find out); nothing after it was written"
			}
			return fmt.Errorf("%d records acknowledged; the record at line %d failed (%s): %w",
				sum.Records, failed.line, outcome, explain(err, f, log))
		}
	}
	if err := <-readErr; err != nil {
		return fmt.Errorf("%d records acknowledged, then reading the input failed: %w", sum.Records, err)
	}
	if o.verbose {
		return nil
	}
	if e.output == outputJSON {
		return writeJSON(out, sum)
	}
	if sum.Records == 0 {
		_, err := fmt.Fprintf(out, "no input: nothing written to %s\n", log)
		return err
	}
	if sum.Records == 1 {
		_, err := fmt.Fprintf(out, "wrote 1 record to %s at %s\n", log, sum.FirstDLSN)
		return err
	}
	_, err := fmt.Fprintf(out, "wrote %d records to %s (%s .. %s)\n", sum.Records, log, sum.FirstDLSN, sum.LastDLSN)
	return err
}

// readLines sends every line of in (without "\n" or "\r\n") to out, in
// order, until EOF, an error or ctx's end.
func readLines(ctx context.Context, in io.Reader, out chan<- inputRecord) error {
	r := bufio.NewReaderSize(in, 256<<10)
	var n int64
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			n++
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
				if len(line) > 0 && line[len(line)-1] == '\r' {
					line = line[:len(line)-1]
				}
			}
			select {
			case out <- inputRecord{line: n, payload: line}:
			case <-ctx.Done():
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func printWritten(e *env, w io.Writer, in inputRecord, r client.WriteResult) error {
	if e.output == outputJSON {
		return writeJSON(w, writtenJSON{Line: in.line, payloadJSON: newPayloadJSON(in.payload), DLSN: r.DLSN.String(), TxID: r.TxID, Duplicate: r.Duplicate})
	}
	_, err := fmt.Fprintf(w, "%s\ttxid %d\tline %d\n", r.DLSN, r.TxID, in.line)
	return err
}
