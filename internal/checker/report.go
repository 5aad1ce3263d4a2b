package checker

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dlog-io/dlog/internal/history"
)

// Property names, in report order. See the package documentation for the
// exact rule behind each.
const (
	PropLost                  = "lost"
	PropInconsistentDLSN      = "inconsistent-dlsn"
	PropDuplicate             = "duplicate"
	PropDuplicateRetried      = "duplicate-retried"
	PropPhantom               = "phantom"
	PropDefiniteMisclassified = "definite-misclassified"
	PropAppendOrder           = "append-order"
	PropAppendLinearizable    = "append-linearizable"
	PropReaderOrder           = "reader-order"
	PropReaderGap             = "reader-gap"
	PropReaderDuplicate       = "reader-duplicate"
	PropReadPastSeal          = "read-past-seal"
	PropPostFenceAck          = "post-fence-ack"
	PropOwnershipLinearizable = "ownership-linearizable"
	PropSequenceID            = "sequence-id"
	PropTxID                  = "txid"
	PropDrainIncomplete       = "drain-incomplete"
)

var propertyOrder = []struct{ name, guarantee string }{
	{PropLost, "G1/P3"},
	{PropInconsistentDLSN, "G2/P1"},
	{PropDuplicate, "G7/P2"},
	{PropDuplicateRetried, "G7/P2"},
	{PropPhantom, "G4/P4"},
	{PropDefiniteMisclassified, "G4/P9"},
	{PropAppendOrder, "G3/P5"},
	{PropAppendLinearizable, "G3/P5"},
	{PropReaderOrder, "G6/P6"},
	{PropReaderGap, "G6/P6"},
	{PropReaderDuplicate, "G6/P6"},
	{PropReadPastSeal, "G6/P7"},
	{PropPostFenceAck, "G5/P8"},
	{PropOwnershipLinearizable, "G5/G7"},
	{PropSequenceID, "G2"},
	{PropTxID, "G2"},
	{PropDrainIncomplete, "G8/P11"},
}

// Report is the checker's verdict. It is JSON-serialisable; WriteTable
// renders it for humans.
type Report struct {
	// Valid is true when no property has a violation and porcupine did not
	// find the append history illegal.
	Valid bool `json:"valid"`
	// Events is the number of history events checked.
	Events int `json:"events"`
	// Properties has one entry per property, in a fixed order.
	Properties []Property `json:"properties"`
	// Linearizability is porcupine's verdict on DLSN assignment.
	Linearizability Linearizability `json:"linearizability"`
	// Stats are counts that are not violations.
	Stats Stats `json:"stats"`
}

// Property is the result of one property over all logs.
type Property struct {
	Name string `json:"name"`
	// Guarantee names the guarantee (DESIGN.md §3) and the property of
	// reliability-testing.md §4.2 it checks.
	Guarantee string `json:"guarantee"`
	// Violation says whether a non-zero Count fails the run; false for
	// statistics such as duplicate-retried without idempotent writes.
	Violation bool `json:"violation"`
	Count     int  `json:"count"`
	// ByClass splits Count by error class (definite-misclassified).
	ByClass map[string]int `json:"by_class,omitempty"`
	// Examples are the first violations found (at most Options.MaxExamples).
	Examples []Example `json:"examples,omitempty"`
	// Note adds context, e.g. porcupine partitions not checked.
	Note string `json:"note,omitempty"`
}

// Failed reports whether p fails the run.
func (p *Property) Failed() bool { return p.Violation && p.Count > 0 }

// Example is one violation with the evidence.
type Example struct {
	Log    string `json:"log"`
	Value  string `json:"value,omitempty"`
	DLSN   string `json:"dlsn,omitempty"`
	Detail string `json:"detail"`
	// Events are the history events involved.
	Events []EventRef `json:"events,omitempty"`
	// Drain are the drain records involved.
	Drain []history.DrainRecord `json:"drain,omitempty"`
}

// EventRef is a history event with its line number in the history file.
type EventRef struct {
	Line  int           `json:"line"`
	Event history.Event `json:"event"`
}

// Linearizability is porcupine's verdict on the DLSN assignment of
// acknowledged appends, per log.
type Linearizability struct {
	// Enabled is false when Options.PorcupineTimeout < 0.
	Enabled bool     `json:"enabled"`
	Logs    []LinLog `json:"logs,omitempty"`
	// Visualization is the HTML file written for the first illegal
	// partition, if Options.VisualizationPath was set.
	Visualization    string `json:"visualization,omitempty"`
	VisualizationLog string `json:"visualization_log,omitempty"`
	// VisualizationError is why the visualization could not be written.
	VisualizationError string `json:"visualization_error,omitempty"`
}

// Verdicts of LinLog.
const (
	VerdictOK      = "ok"
	VerdictIllegal = "illegal"
	VerdictUnknown = "unknown" // timed out
	VerdictSkipped = "skipped" // a partition was larger than PorcupineMaxOps
	VerdictEmpty   = "empty"
)

// LinLog is porcupine's verdict for one log. The log's acknowledged
// appends are cut into partitions at quiescent points (see the package
// documentation); the verdict is the worst partition's.
type LinLog struct {
	Log        string `json:"log"`
	Verdict    string `json:"verdict"`
	Ops        int    `json:"ops"`
	Partitions int    `json:"partitions"`
	Illegal    int    `json:"illegal,omitempty"`
	Unknown    int    `json:"unknown,omitempty"`
	Skipped    int    `json:"skipped,omitempty"`
}

// Stats are per-log and total counts.
type Stats struct {
	Total Counts   `json:"total"`
	Logs  []Counts `json:"logs"`
	// LastHeal is the time of the last nemesis-stop event, if any.
	LastHeal *int64 `json:"last_heal,omitempty"`
}

// Counts describe one log (or all, in Stats.Total).
type Counts struct {
	Log            string `json:"log,omitempty"`
	AppendsOK      int    `json:"appends_ok"`
	AppendsFail    int    `json:"appends_fail"`
	AppendsInfo    int    `json:"appends_info"`
	AppendsPending int    `json:"appends_pending"`
	// ResolvedPresent and ResolvedAbsent split indeterminate (info and
	// pending) appends by whether their value was ever read.
	ResolvedPresent int `json:"resolved_present"`
	ResolvedAbsent  int `json:"resolved_absent"`
	// TruncatedAcked counts acknowledged appends missing from the drain
	// because a truncate that may have followed them removed them.
	TruncatedAcked int `json:"truncated_acked"`
	// Unseen counts acknowledged appends that no reader session (the
	// drain excluded) ever delivered.
	Unseen int `json:"unseen"`
	Reads  int `json:"reads"`
	// ReadsBelowTruncation counts deliveries of records below a truncation
	// point acknowledged before the delivery (allowed: deletion may lag).
	ReadsBelowTruncation int `json:"reads_below_truncation"`
	ReaderSessions       int `json:"reader_sessions"`
	Truncates            int `json:"truncates"`
	Epochs               int `json:"epochs"`
	DrainRecords         int `json:"drain_records"`
	// FirstOKAfterHeal is the time from the last heal to the first
	// acknowledged append completed after it, in nanoseconds.
	FirstOKAfterHeal *int64 `json:"first_ok_after_heal_ns,omitempty"`
}

func (c *Counts) add(o Counts) {
	c.AppendsOK += o.AppendsOK
	c.AppendsFail += o.AppendsFail
	c.AppendsInfo += o.AppendsInfo
	c.AppendsPending += o.AppendsPending
	c.ResolvedPresent += o.ResolvedPresent
	c.ResolvedAbsent += o.ResolvedAbsent
	c.TruncatedAcked += o.TruncatedAcked
	c.Unseen += o.Unseen
	c.Reads += o.Reads
	c.ReadsBelowTruncation += o.ReadsBelowTruncation
	c.ReaderSessions += o.ReaderSessions
	c.Truncates += o.Truncates
	c.Epochs += o.Epochs
	c.DrainRecords += o.DrainRecords
	if o.FirstOKAfterHeal != nil && (c.FirstOKAfterHeal == nil || *o.FirstOKAfterHeal > *c.FirstOKAfterHeal) {
		v := *o.FirstOKAfterHeal
		c.FirstOKAfterHeal = &v // the total keeps the slowest log
	}
}

// Property returns the named property, or nil.
func (r *Report) Property(name string) *Property {
	for i := range r.Properties {
		if r.Properties[i].Name == name {
			return &r.Properties[i]
		}
	}
	return nil
}

// Failed returns the names of the properties that fail the run.
func (r *Report) Failed() []string {
	var out []string
	for i := range r.Properties {
		if r.Properties[i].Failed() {
			out = append(out, r.Properties[i].Name)
		}
	}
	return out
}

// WriteTable renders r for humans: one row per property (status, count,
// first example), then the linearizability verdicts and the statistics.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	verdict := "PASS"
	if !r.Valid {
		verdict = "FAIL"
	}
	fmt.Fprintf(tw, "dlog history check: %s (%d events)\n\n", verdict, r.Events)
	fmt.Fprintln(tw, "PROPERTY\tGUARANTEE\tSTATUS\tCOUNT\tEXAMPLE")
	for _, p := range r.Properties {
		status := "ok"
		switch {
		case p.Failed():
			status = "FAIL"
		case p.Count > 0:
			status = "stat"
		}
		ex := ""
		if len(p.Examples) > 0 {
			ex = oneLine(p.Examples[0].Log + ": " + p.Examples[0].Detail)
		}
		if p.Note != "" && ex == "" {
			ex = oneLine(p.Note)
		}
		count := fmt.Sprint(p.Count)
		if len(p.ByClass) > 0 {
			var parts []string
			for _, c := range sortedKeys(p.ByClass) {
				parts = append(parts, fmt.Sprintf("%s=%d", c, p.ByClass[c]))
			}
			count += " (" + strings.Join(parts, ",") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Guarantee, status, count, ex)
	}
	if r.Linearizability.Enabled {
		fmt.Fprintln(tw, "\nLOG\tPORCUPINE\tOPS\tPARTITIONS\tILLEGAL/UNKNOWN/SKIPPED")
		for _, l := range r.Linearizability.Logs {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d/%d/%d\n", l.Log, l.Verdict, l.Ops, l.Partitions, l.Illegal, l.Unknown, l.Skipped)
		}
		if r.Linearizability.Visualization != "" {
			fmt.Fprintf(tw, "visualization of %s: %s\n", r.Linearizability.VisualizationLog, r.Linearizability.Visualization)
		}
	}
	fmt.Fprintln(tw, "\nLOG\tOK\tFAIL\tINFO\tPENDING\tRESOLVED+/-\tTRUNCATED\tUNSEEN\tREADS\tSESSIONS\tDRAIN\tFIRST-OK-AFTER-HEAL")
	rows := append(append([]Counts(nil), r.Stats.Logs...), r.Stats.Total)
	for i, c := range rows {
		name := c.Log
		if i == len(rows)-1 {
			name = "(total)"
		}
		heal := "-"
		if c.FirstOKAfterHeal != nil {
			heal = time.Duration(*c.FirstOKAfterHeal).String()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d/%d\t%d\t%d\t%d\t%d\t%d\t%s\n", name,
			c.AppendsOK, c.AppendsFail, c.AppendsInfo, c.AppendsPending, c.ResolvedPresent, c.ResolvedAbsent,
			c.TruncatedAcked, c.Unseen, c.Reads, c.ReaderSessions, c.DrainRecords, heal)
	}
	return tw.Flush()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
