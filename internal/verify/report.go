package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dlog-io/dlog/internal/checker"
)

// summaryProps are the checker properties that fail a run, with the short
// column names of the summary table.
var summaryProps = []struct{ prop, col string }{
	{checker.PropLost, "LOST"},
	{checker.PropInconsistentDLSN, "INCONS"},
	{checker.PropDuplicate, "DUP"},
	{checker.PropPhantom, "PHANTOM"},
	{checker.PropDefiniteMisclassified, "MISCLASS"},
	{checker.PropAppendOrder, "ORDER"},
	{checker.PropAppendLinearizable, "LIN"},
	{checker.PropReaderOrder, "R-ORDER"},
	{checker.PropReaderGap, "R-GAP"},
	{checker.PropReaderDuplicate, "R-DUP"},
	{checker.PropReadPastSeal, "PAST-SEAL"},
	{checker.PropPostFenceAck, "FENCE"},
	{checker.PropOwnershipLinearizable, "OWNER"},
	{checker.PropSequenceID, "SEQID"},
	{checker.PropTxID, "TXID"},
	{checker.PropDrainIncomplete, "DRAIN"},
}

// Summary aggregates the runs of one scenario.
type Summary struct {
	Scenario      string         `json:"scenario"`
	Runs          int            `json:"runs"`
	Failed        int            `json:"failed_runs"`
	Errors        int            `json:"error_runs"`
	Acknowledged  int            `json:"acknowledged"`
	Indeterminate int            `json:"indeterminate"`
	Failures      int            `json:"definite_failures"`
	Reads         int            `json:"reads"`
	Faults        int            `json:"faults"`
	Violations    map[string]int `json:"violations"`
	Metadata      int            `json:"metadata_violations"`
	NoLiveness    int            `json:"liveness_failures"`
	Heals         int            `json:"heals"`
	RecoveryMax   time.Duration  `json:"recovery_max_ns"`
	RecoveryMean  time.Duration  `json:"recovery_mean_ns"`
	MaxGap        time.Duration  `json:"max_gap_ns"`
	Unrecovered   int            `json:"unrecovered_heals"`
	Seeds         []uint64       `json:"seeds"`
	Kept          []string       `json:"kept,omitempty"`
	Notes         []string       `json:"notes,omitempty"`
	RunErrors     []string       `json:"run_errors,omitempty"`
}

// Summarize aggregates runs of one scenario.
func Summarize(runs []*RunResult) Summary {
	s := Summary{Violations: map[string]int{}}
	var meanSum time.Duration
	for _, r := range runs {
		s.Scenario = r.Scenario
		s.Runs++
		s.Seeds = append(s.Seeds, r.Seed)
		if r.Failed() {
			s.Failed++
			s.Kept = append(s.Kept, r.Dir)
		}
		if r.Err != "" {
			s.Errors++
			s.RunErrors = append(s.RunErrors, r.Err)
		}
		s.Faults += r.Faults
		s.Metadata += len(r.Metadata)
		if !r.Liveness && r.Err == "" {
			s.NoLiveness++
		}
		s.Heals += r.Heals
		s.Unrecovered += r.Unrecovered
		s.RecoveryMax = max(s.RecoveryMax, r.RecoveryMax)
		s.MaxGap = max(s.MaxGap, r.MaxGap)
		meanSum += r.RecoveryMean * time.Duration(r.Heals)
		for _, n := range r.Notes {
			if len(s.Notes) < 20 {
				s.Notes = append(s.Notes, n)
			}
		}
		if r.Report == nil {
			continue
		}
		t := r.Report.Stats.Total
		s.Acknowledged += t.AppendsOK
		s.Indeterminate += t.AppendsInfo + t.AppendsPending
		s.Failures += t.AppendsFail
		s.Reads += t.Reads
		for _, p := range r.Report.Properties {
			if p.Violation && p.Count > 0 {
				s.Violations[p.Name] += p.Count
			}
		}
	}
	if s.Heals > 0 {
		s.RecoveryMean = meanSum / time.Duration(s.Heals)
	}
	return s
}

// RunLine is a one-line account of a run for progress output.
func RunLine(r *RunResult) string {
	if r.Err != "" {
		return "ERROR: " + firstLine(r.Err)
	}
	verdict := "PASS"
	if r.Failed() {
		verdict = "FAIL"
	}
	var bad []string
	if r.Report != nil {
		for _, p := range r.Report.Properties {
			if p.Violation && p.Count > 0 {
				bad = append(bad, fmt.Sprintf("%s=%d", p.Name, p.Count))
			}
		}
	}
	if len(r.Metadata) > 0 {
		bad = append(bad, fmt.Sprintf("metadata=%d", len(r.Metadata)))
	}
	if !r.Liveness {
		bad = append(bad, "liveness")
	}
	s := fmt.Sprintf("%s: %d acknowledged, %d indeterminate, %d faults, recovery max %v, longest ack gap %v (seed %d)",
		verdict, r.Acknowledged(), r.Indeterminate(), r.Faults, r.RecoveryMax.Round(time.Millisecond),
		r.MaxGap.Round(time.Millisecond), r.Seed)
	if len(bad) > 0 {
		s += " violations: " + strings.Join(bad, " ")
	}
	return s
}

// WriteSummary prints one row per scenario (or, with asJSON, one JSON
// object per line).
func WriteSummary(w io.Writer, results [][]*RunResult, asJSON bool) error {
	if asJSON {
		for _, rs := range results {
			if len(rs) == 0 {
				continue
			}
			b, err := json.Marshal(Summarize(rs))
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', tabwriter.AlignRight)
	hdr := []string{"SCENARIO", "RUNS", "FAILED", "ACKED", "INDET"}
	for _, p := range summaryProps {
		hdr = append(hdr, p.col)
	}
	hdr = append(hdr, "META", "LIVE", "HEALS", "RECOVERY-MAX", "RECOVERY-MEAN", "MAX-GAP", "")
	fmt.Fprintln(tw, strings.Join(hdr, "\t"))
	for _, rs := range results {
		if len(rs) == 0 {
			continue
		}
		s := Summarize(rs)
		row := []string{s.Scenario, fmt.Sprint(s.Runs), fmt.Sprint(s.Failed), fmt.Sprint(s.Acknowledged), fmt.Sprint(s.Indeterminate)}
		for _, p := range summaryProps {
			row = append(row, fmt.Sprint(s.Violations[p.prop]))
		}
		live := "ok"
		if s.NoLiveness > 0 {
			live = fmt.Sprintf("%d!", s.NoLiveness)
		}
		row = append(row, fmt.Sprint(s.Metadata), live, fmt.Sprint(s.Heals),
			s.RecoveryMax.Round(time.Millisecond).String(), s.RecoveryMean.Round(time.Millisecond).String(),
			s.MaxGap.Round(time.Millisecond).String(), "")
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, rs := range results {
		if len(rs) == 0 {
			continue
		}
		s := Summarize(rs)
		for _, e := range s.RunErrors {
			fmt.Fprintf(w, "%s: run error: %s\n", s.Scenario, firstLine(e))
		}
		for _, k := range s.Kept {
			fmt.Fprintf(w, "%s: failing run kept in %s\n", s.Scenario, k)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(w, "%s: note: %s\n", s.Scenario, n)
		}
	}
	return nil
}
