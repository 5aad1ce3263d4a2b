package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/sandbox"
	"github.com/dlog-io/dlog/internal/segment"
	"github.com/dlog-io/dlog/namespace"
)

// Problems `dlog admin inspect` finds. Each has a severity: an error is
// metadata the protocol never writes (or data that is gone); a warning is
// a state the protocol leaves behind and heals by itself, or harmless
// leftovers.
const (
	problemMaxLSSNBehind     = "max-lssn-behind"
	problemLSSNGap           = "lssn-gap"
	problemSequenceChain     = "sequence-chain"
	problemInProgressNotLast = "in-progress-not-last"
	problemSeveralInProgress = "several-in-progress"
	problemCrashDuringRoll   = "crash-during-roll"
	problemLedgerMissing     = "ledger-missing"
	problemDuplicateLedger   = "duplicate-ledger"
	problemLedgerNotClosed   = "ledger-not-closed"
	problemLedgerEnd         = "ledger-end-mismatch"
	problemLedgerTag         = "ledger-tag-mismatch"
	problemMaxTxIDBehind     = "max-txid-behind"
	problemTruncationPoint   = "truncation-point-invalid"
	problemMarkAhead         = "truncation-mark-ahead"
	problemMarkBehind        = "truncation-mark-behind"
)

const (
	severityError   = "error"
	severityWarning = "warning"
)

// repairKind is what --repair does about a finding.
type repairKind int

const (
	repairNone repairKind = iota
	// repairMetadata: rewrite log keys by CAS (max lssn, max txid,
	// truncation marks, start sequence ids).
	repairMetadata
	// repairRecoverLedger: fence and close the segment's ledger.
	repairRecoverLedger
	// repairRecoverSegments: take the log as a writer, which recovers
	// every in-progress segment, then release it.
	repairRecoverSegments
)

// finding is one problem of one log (one line of `dlog admin inspect`).
type finding struct {
	Namespace string `json:"namespace"`
	Log       string `json:"log"`
	LSSN      int64  `json:"lssn,omitempty"`
	LedgerID  int64  `json:"ledger-id,omitempty"`
	Severity  string `json:"severity"`
	Problem   string `json:"problem"`
	Detail    string `json:"detail"`
	// Repair says what --repair does; empty when it needs a human.
	Repair string `json:"repair,omitempty"`
	// Status is "found" (no repair was run), "repaired" or "remains".
	Status string `json:"status"`

	kind repairKind
}

func (f finding) key() string {
	return fmt.Sprintf("%s/%s/%d/%d/%s", f.Namespace, f.Log, f.LSSN, f.LedgerID, f.Problem)
}

// ledgerView is what inspect knows about a segment's ledger.
type ledgerView struct {
	md    metadata.LedgerMetadata
	found bool
}

// inspectLog checks one log's metadata (st, read at one revision) against
// the rules the protocol keeps, and each segment against its ledger's
// metadata. owner is the log's writer, nil when none holds it. It does no
// I/O.
func inspectLog(ns, log string, st metadata.LogState, ledgers map[int64]ledgerView, owner *metadata.OwnerInfo) []finding {
	var out []finding
	add := func(f finding) {
		f.Namespace, f.Log, f.Status = ns, log, "found"
		if f.kind == repairNone {
			f.Repair = ""
		}
		out = append(out, f)
	}
	// Repairs that rewrite what a live writer holds in memory, or take the
	// log over, wait until nobody owns it.
	ownedBy := ""
	if owner != nil {
		ownedBy = owner.ID
	}
	needsNoOwner := func(f finding, what string) finding {
		if ownedBy != "" {
			f.kind, f.Repair = repairNone, ""
			f.Detail += fmt.Sprintf("; %s owns the log: release it (or stop its writer) first, then repair", ownedBy)
			return f
		}
		f.Repair = what
		return f
	}
	segs := st.Segments
	n := len(segs)

	if n > 0 && segs[n-1].LSSN > st.MaxLSSN {
		add(finding{LSSN: segs[n-1].LSSN, Severity: severityError, Problem: problemMaxLSSNBehind,
			Detail: fmt.Sprintf("max lssn is %d but segment %d exists: the next writer would reuse an lssn", st.MaxLSSN, segs[n-1].LSSN),
			Repair: fmt.Sprintf("set max lssn to %d", segs[n-1].LSSN), kind: repairMetadata})
	}

	// In-progress segments: at most one, the last; two (the last two) after
	// a writer crashed in the middle of a roll.
	var inProgress []int64
	for i, s := range segs {
		if s.State != metadata.SegmentInProgress {
			continue
		}
		inProgress = append(inProgress, s.LSSN)
		for _, later := range segs[i+1:] {
			if later.State == metadata.SegmentCompleted {
				add(needsNoOwner(finding{LSSN: s.LSSN, LedgerID: s.LedgerID, Severity: severityError, Problem: problemInProgressNotLast,
					Detail: fmt.Sprintf("segment %d is in progress but segment %d after it is completed", s.LSSN, later.LSSN),
					kind:   repairRecoverSegments}, "recover every in-progress segment (fence its ledger, complete the segment)"))
				break
			}
		}
	}
	switch {
	case len(inProgress) > 2:
		add(needsNoOwner(finding{Severity: severityError, Problem: problemSeveralInProgress,
			Detail: fmt.Sprintf("%d segments are in progress (%s); a writer leaves at most two", len(inProgress), joinInts(inProgress)),
			kind:   repairRecoverSegments}, "recover every in-progress segment"))
	case len(inProgress) == 2 && inProgress[0] == segs[n-2].LSSN && inProgress[1] == segs[n-1].LSSN && ownedBy == "":
		add(needsNoOwner(finding{Severity: severityWarning, Problem: problemCrashDuringRoll,
			Detail: fmt.Sprintf("segments %d and %d are both in progress: a writer crashed while rolling; the next writer recovers them", inProgress[0], inProgress[1]),
			kind:   repairRecoverSegments}, "recover both segments now"))
	}

	// Start sequence ids chain through completed segments. A gap in lssns
	// is normal when the chain holds across it (an empty segment was
	// deleted); a gap that swallowed records is not.
	for i := 1; i < n; i++ {
		a, b := segs[i-1], segs[i]
		if a.State != metadata.SegmentCompleted {
			continue
		}
		want := a.StartSequenceID + a.RecordCount
		if b.StartSequenceID == want {
			continue
		}
		if b.LSSN != a.LSSN+1 && b.StartSequenceID > want {
			add(finding{LSSN: b.LSSN, Severity: severityError, Problem: problemLSSNGap,
				Detail: fmt.Sprintf("segments %d..%d are missing and held %d records (sequence ids %d..%d): they were deleted outside the protocol",
					a.LSSN+1, b.LSSN-1, b.StartSequenceID-want, want, b.StartSequenceID-1)})
			continue
		}
		add(needsNoOwner(finding{LSSN: b.LSSN, Severity: severityError, Problem: problemSequenceChain,
			Detail: fmt.Sprintf("segment %d starts at sequence id %d, but segment %d (start %d, %d records) ends before %d",
				b.LSSN, b.StartSequenceID, a.LSSN, a.StartSequenceID, a.RecordCount, want),
			kind: repairMetadata}, fmt.Sprintf("renumber: segment %d starts at sequence id %d, later segments follow (their records' sequence ids change)", b.LSSN, want)))
	}

	// Each segment against its ledger.
	byLedger := map[int64]int64{}
	var maxLastTxID int64 = -1
	for _, s := range segs {
		if prev, dup := byLedger[s.LedgerID]; dup {
			add(finding{LSSN: s.LSSN, LedgerID: s.LedgerID, Severity: severityError, Problem: problemDuplicateLedger,
				Detail: fmt.Sprintf("segments %d and %d share ledger %d", prev, s.LSSN, s.LedgerID)})
		}
		byLedger[s.LedgerID] = s.LSSN
		if s.State == metadata.SegmentCompleted && s.RecordCount > 0 {
			maxLastTxID = max(maxLastTxID, s.LastTxID)
		}
		lv := ledgers[s.LedgerID]
		if !lv.found {
			add(finding{LSSN: s.LSSN, LedgerID: s.LedgerID, Severity: severityError, Problem: problemLedgerMissing,
				Detail: fmt.Sprintf("segment %d names ledger %d, which has no metadata: its records are gone", s.LSSN, s.LedgerID)})
			continue
		}
		if tagLog, ok := lv.md.Custom["dlog.log"]; ok {
			tagNS, tagLSSN := lv.md.Custom["dlog.namespace"], lv.md.Custom["dlog.lssn"]
			if tagLog != log || tagNS != ns || tagLSSN != strconv.FormatInt(s.LSSN, 10) {
				add(finding{LSSN: s.LSSN, LedgerID: s.LedgerID, Severity: severityWarning, Problem: problemLedgerTag,
					Detail: fmt.Sprintf("ledger %d was created for %s/%s segment %s", s.LedgerID, tagNS, tagLog, tagLSSN)})
			}
		}
		if s.State != metadata.SegmentCompleted {
			continue
		}
		if lv.md.State != metadata.LedgerClosed {
			add(finding{LSSN: s.LSSN, LedgerID: s.LedgerID, Severity: severityError, Problem: problemLedgerNotClosed,
				Detail: fmt.Sprintf("segment %d is completed but its ledger %d is %s", s.LSSN, s.LedgerID, ledgerStateName(lv.md.State)),
				Repair: fmt.Sprintf("recover ledger %d (fence it, close it at its last entry)", s.LedgerID), kind: repairRecoverLedger})
			continue
		}
		switch {
		case lv.md.LastEntryID > s.LastEntryID:
			add(finding{LSSN: s.LSSN, LedgerID: s.LedgerID, Severity: severityWarning, Problem: problemLedgerEnd,
				Detail: fmt.Sprintf("ledger %d holds entries %d..%d after the end of segment %d (entry %d); readers never see them",
					s.LedgerID, s.LastEntryID+1, lv.md.LastEntryID, s.LSSN, s.LastEntryID)})
		case lv.md.LastEntryID < s.LastEntryID:
			add(finding{LSSN: s.LSSN, LedgerID: s.LedgerID, Severity: severityError, Problem: problemLedgerEnd,
				Detail: fmt.Sprintf("segment %d ends at entry %d but its ledger %d was closed at entry %d: entries %d..%d are missing",
					s.LSSN, s.LastEntryID, s.LedgerID, lv.md.LastEntryID, lv.md.LastEntryID+1, s.LastEntryID)})
		}
	}
	if maxLastTxID > st.MaxTxID {
		add(finding{Severity: severityError, Problem: problemMaxTxIDBehind,
			Detail: fmt.Sprintf("max txid is %d but a completed segment holds txid %d: a writer could go backwards", st.MaxTxID, maxLastTxID),
			Repair: fmt.Sprintf("set max txid to %d", maxLastTxID), kind: repairMetadata})
	}

	// Truncation marks against the truncation point.
	if st.Truncation != (dlog.DLSN{}) {
		if err := segment.CheckPosition(st, st.Truncation); err != nil {
			add(finding{Severity: severityError, Problem: problemTruncationPoint,
				Detail: fmt.Sprintf("truncation point %v is not a position of the log: %v", st.Truncation, err)})
		}
	}
	for _, s := range segs {
		want, wantMin := wantMark(st.Truncation, s)
		if s.Truncation == want && (want != metadata.TruncationPartial || s.MinActive == wantMin) {
			continue
		}
		f := finding{LSSN: s.LSSN, LedgerID: s.LedgerID, kind: repairMetadata,
			Repair: fmt.Sprintf("mark segment %d %s", s.LSSN, markName(want, wantMin))}
		ahead := markRank(s.Truncation) > markRank(want) ||
			(s.Truncation == want && want == metadata.TruncationPartial && wantMin.Less(s.MinActive))
		point := "no truncation point"
		if st.Truncation != (dlog.DLSN{}) {
			point = "truncation point " + st.Truncation.String()
		}
		switch {
		case ahead && s.Truncation == metadata.TruncationFull:
			f.Severity, f.Problem = severityError, problemMarkAhead
			f.Detail = fmt.Sprintf("segment %d is marked truncated but holds records at or after the %s: garbage collection would delete them", s.LSSN, point)
		case ahead:
			f.Severity, f.Problem = severityWarning, problemMarkAhead
			f.Detail = fmt.Sprintf("segment %d is marked %s, ahead of the %s (readers go by the point)", s.LSSN, markName(s.Truncation, s.MinActive), point)
		default:
			f.Severity, f.Problem = severityWarning, problemMarkBehind
			f.Detail = fmt.Sprintf("segment %d is marked %s, behind the %s (marks are advisory; collection goes by the point)", s.LSSN, markName(s.Truncation, s.MinActive), point)
		}
		add(f)
	}
	return out
}

// wantMark is the truncation mark of segment s under truncation point t,
// as segment.Truncate sets it.
func wantMark(t dlog.DLSN, s metadata.Segment) (metadata.TruncationStatus, dlog.DLSN) {
	first := dlog.DLSN{LSSN: s.LSSN}
	if t == (dlog.DLSN{}) || !first.Less(t) || s.State != metadata.SegmentCompleted {
		return metadata.TruncationActive, dlog.DLSN{}
	}
	if last, ok := segment.LastDLSN(s); !ok || last.Less(t) {
		return metadata.TruncationFull, dlog.DLSN{}
	}
	return metadata.TruncationPartial, t
}

func markRank(m metadata.TruncationStatus) int {
	switch m {
	case metadata.TruncationPartial:
		return 1
	case metadata.TruncationFull:
		return 2
	}
	return 0
}

func markName(m metadata.TruncationStatus, minActive dlog.DLSN) string {
	switch m {
	case metadata.TruncationPartial:
		return "partially truncated from " + minActive.String()
	case metadata.TruncationFull:
		return "truncated"
	}
	return "active"
}

func ledgerStateName(s metadata.LedgerState) string {
	switch s {
	case metadata.LedgerOpen:
		return "open"
	case metadata.LedgerInRecovery:
		return "in recovery"
	case metadata.LedgerClosed:
		return "closed"
	}
	return fmt.Sprintf("in unknown state %d", int(s))
}

func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatInt(x, 10)
	}
	return strings.Join(s, ", ")
}

// metadataRepairOps computes the CAS writes that fix, in st, the
// findings repaired by rewriting log keys: max lssn, max txid, start
// sequence ids (when found broken) and truncation marks. Each op expects
// the version st was read at, so a concurrent change fails the commit.
func metadataRepairOps(ns, log string, st metadata.LogState, found []finding) []metadata.Op {
	fix := map[string]bool{}
	for _, f := range found {
		if f.kind == repairMetadata {
			fix[f.Problem] = true
		}
	}
	var ops []metadata.Op
	segs := st.Segments
	n := len(segs)
	if fix[problemMaxLSSNBehind] && n > 0 && segs[n-1].LSSN > st.MaxLSSN {
		ops = append(ops, metadata.SetMaxLSSN(ns, log, segs[n-1].LSSN, st.MaxLSSNVersion))
	}
	if fix[problemMaxTxIDBehind] {
		var maxLast int64 = -1
		for _, s := range segs {
			if s.State == metadata.SegmentCompleted && s.RecordCount > 0 {
				maxLast = max(maxLast, s.LastTxID)
			}
		}
		if maxLast > st.MaxTxID {
			ops = append(ops, metadata.SetMaxTxID(ns, log, maxLast, st.MaxTxIDVersion))
		}
	}
	changed := map[int64]*metadata.Segment{}
	updated := make([]metadata.Segment, n)
	copy(updated, segs)
	if fix[problemSequenceChain] {
		for i := 1; i < n; i++ {
			a, b := updated[i-1], &updated[i]
			if a.State != metadata.SegmentCompleted {
				continue
			}
			want := a.StartSequenceID + a.RecordCount
			if b.StartSequenceID == want || (b.LSSN != a.LSSN+1 && b.StartSequenceID > want) {
				continue
			}
			b.StartSequenceID = want
			changed[b.LSSN] = b
		}
	}
	if fix[problemMarkAhead] || fix[problemMarkBehind] {
		for i := range updated {
			s := &updated[i]
			want, wantMin := wantMark(st.Truncation, *s)
			if s.Truncation != want || (want == metadata.TruncationPartial && s.MinActive != wantMin) {
				s.Truncation, s.MinActive = want, wantMin
				changed[s.LSSN] = s
			}
		}
	}
	lssns := make([]int64, 0, len(changed))
	for l := range changed {
		lssns = append(lssns, l)
	}
	sort.Slice(lssns, func(i, j int) bool { return lssns[i] < lssns[j] })
	for _, l := range lssns {
		s := changed[l]
		ops = append(ops, metadata.UpdateSegment(ns, log, *s, s.Version))
	}
	return ops
}

// logRef names a log.
type logRef struct{ ns, log string }

// inspectFlags are the flags of `dlog admin inspect`.
type inspectFlags struct {
	md            metadataFlags
	namespace     string
	allNamespaces bool
	repair, yes   bool
}

func newInspectCmd(e *env) *cobra.Command {
	var f inspectFlags
	c := &cobra.Command{
		Use:   "inspect [LOG...] [--namespace NS | --all-namespaces] [--repair [--yes]]",
		Short: "Check logs' metadata for inconsistencies, and repair them",
		Long: `Check the metadata of the named logs (all logs of --namespace without
names, of every namespace with --all-namespaces) against the rules the
protocol keeps, and each segment against its ledger:

  max-lssn-behind        a segment above the log's max lssn
  lssn-gap               missing segments that held records (a gap whose
                         sequence ids still chain is a deleted empty
                         segment: normal)
  sequence-chain         start sequence ids that do not follow on
  in-progress-not-last   an in-progress segment before a completed one
  several-in-progress    more in-progress segments than a crash leaves
  crash-during-roll      (warning) the two in-progress segments a writer
                         that crashed while rolling leaves
  ledger-missing         a segment whose ledger metadata is gone
  duplicate-ledger       two segments on one ledger
  ledger-not-closed      a completed segment whose ledger is still open
  ledger-end-mismatch    a completed segment that ends elsewhere than its
                         ledger (missing entries are an error, extra ones
                         a warning)
  ledger-tag-mismatch    (warning) a ledger created for another segment
  max-txid-behind        the log's max txid below a segment's last txid
  truncation-point-invalid, truncation-mark-ahead, truncation-mark-behind
                         segment marks that disagree with the truncation
                         point (a segment marked truncated that still
                         holds live records is an error: collection would
                         delete them)

It prints one line per problem (severity, what, what --repair would do)
and exits with status 1 if any error remains. With --repair it asks for
confirmation (--yes in scripts), then fences and closes ledgers, recovers
in-progress segments (taking the log as a writer, when nobody owns it),
and rewrites the log's keys by compare-and-swap; it checks again and
reports each problem as repaired or remaining.`,
		Example: `  dlog admin inspect --metadata http://127.0.0.1:2379
  dlog admin inspect orders --repair
  dlog admin inspect --all-namespaces -o json`,
		RunE: func(c *cobra.Command, args []string) error {
			for _, l := range args {
				if err := checkLogName(l); err != nil {
					return err
				}
			}
			if err := dlog.ValidateName(f.namespace); err != nil {
				return Usagef("--namespace %q: %v", f.namespace, err)
			}
			if f.allNamespaces && len(args) > 0 {
				return Usagef("--all-namespaces inspects every log: name no logs with it")
			}
			if f.yes && !f.repair {
				return Usagef("--yes confirms --repair: give --repair too")
			}
			ctx, cancel := adminCtx(e.ctx, f.md)
			defer cancel()
			st, err := e.openMetadata(ctx, f.md)
			if err != nil {
				return err
			}
			defer st.Close()
			return runInspect(ctx, e, st, f, args)
		},
	}
	addMetadataFlags(c, &f.md)
	fs := c.Flags()
	fs.StringVar(&f.namespace, "namespace", "default", "namespace of the logs")
	fs.BoolVar(&f.allNamespaces, "all-namespaces", false, "inspect every log of every namespace")
	fs.BoolVar(&f.repair, "repair", false, "repair what can be repaired (asks first)")
	fs.BoolVar(&f.yes, "yes", false, "do not ask before repairing")
	return c
}

// listLogs returns the logs to inspect.
func listLogs(ctx context.Context, st metadata.Store, f inspectFlags, names []string) ([]logRef, error) {
	var out []logRef
	if len(names) > 0 {
		for _, l := range names {
			out = append(out, logRef{f.namespace, l})
		}
		return out, nil
	}
	nss := []string{f.namespace}
	if f.allNamespaces {
		var err error
		if nss, err = st.ListNamespaces(ctx); err != nil {
			return nil, fmt.Errorf("list namespaces: %w", err)
		}
	}
	for _, ns := range nss {
		logs, err := allLogs(ctx, st, ns)
		if errors.Is(err, metadata.ErrNotFound) && !f.allNamespaces {
			return nil, fmt.Errorf("namespace %q does not exist (see --namespace, --all-namespaces): %w", ns, err)
		}
		if err != nil {
			return nil, err
		}
		for _, l := range logs {
			out = append(out, logRef{ns, l})
		}
	}
	return out, nil
}

// allLogs lists every log of a namespace.
func allLogs(ctx context.Context, st metadata.Store, ns string) ([]string, error) {
	var out []string
	after := ""
	for {
		logs, more, err := st.ListLogs(ctx, ns, "", after, 1000)
		if err != nil {
			return nil, fmt.Errorf("list logs of %s: %w", ns, err)
		}
		out = append(out, logs...)
		if !more || len(logs) == 0 {
			return out, nil
		}
		after = logs[len(logs)-1]
	}
}

// inspectOne reads a log and its ledgers and checks them.
func inspectOne(ctx context.Context, st metadata.Store, r logRef) ([]finding, metadata.LogState, error) {
	ls, err := st.GetLogState(ctx, r.ns, r.log)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, ls, fmt.Errorf("log %s/%s does not exist: %w", r.ns, r.log, dlog.ErrLogNotFound)
	}
	if err != nil {
		return nil, ls, fmt.Errorf("read log %s/%s: %w", r.ns, r.log, err)
	}
	ledgers := map[int64]ledgerView{}
	for _, s := range ls.Segments {
		if _, ok := ledgers[s.LedgerID]; ok {
			continue
		}
		md, _, err := st.GetLedger(ctx, s.LedgerID)
		switch {
		case errors.Is(err, metadata.ErrNotFound):
			ledgers[s.LedgerID] = ledgerView{}
		case err != nil:
			return nil, ls, fmt.Errorf("read ledger %d of %s/%s: %w", s.LedgerID, r.ns, r.log, err)
		default:
			ledgers[s.LedgerID] = ledgerView{md: md, found: true}
		}
	}
	var owner *metadata.OwnerInfo
	if o, ok, err := st.GetOwner(ctx, r.ns, r.log); err != nil {
		return nil, ls, fmt.Errorf("read owner of %s/%s: %w", r.ns, r.log, err)
	} else if ok {
		owner = &o
	}
	return inspectLog(r.ns, r.log, ls, ledgers, owner), ls, nil
}

func runInspect(ctx context.Context, e *env, st metadata.Store, f inspectFlags, names []string) error {
	refs, err := listLogs(ctx, st, f, names)
	if err != nil {
		return err
	}
	var all []finding
	byLog := map[logRef][]finding{}
	for _, r := range refs {
		fs, _, err := inspectOne(ctx, st, r)
		if err != nil {
			return err
		}
		all = append(all, fs...)
		byLog[r] = fs
	}
	var toRepair []logRef
	nRepairs := 0
	for _, r := range refs {
		n := 0
		for _, fd := range byLog[r] {
			if fd.kind != repairNone {
				n++
			}
		}
		if n > 0 {
			toRepair = append(toRepair, r)
			nRepairs += n
		}
	}
	if f.repair && nRepairs > 0 {
		for _, fd := range all {
			if fd.kind != repairNone {
				fmt.Fprintf(e.stderr, "  %s/%s: %s: %s\n", fd.Namespace, fd.Log, fd.Problem, fd.Repair)
			}
		}
		if err := e.confirm(f.yes, fmt.Sprintf("repair %d problems in %d logs as listed?", nRepairs, len(toRepair))); err != nil {
			return err
		}
		if err := repairLogs(ctx, e, st, toRepair, byLog); err != nil {
			return err
		}
		remaining := map[string]bool{}
		var fresh []finding
		for _, r := range refs {
			fs, _, err := inspectOne(ctx, st, r)
			if err != nil {
				return err
			}
			for _, fd := range fs {
				remaining[fd.key()] = true
			}
			fresh = append(fresh, fs...)
		}
		seen := map[string]bool{}
		for i := range all {
			seen[all[i].key()] = true
			if remaining[all[i].key()] {
				all[i].Status = "remains"
			} else {
				all[i].Status = "repaired"
			}
		}
		for _, fd := range fresh { // problems the repair uncovered
			if !seen[fd.key()] {
				fd.Status = "remains"
				all = append(all, fd)
			}
		}
	}
	if f.repair {
		for i := range all {
			if all[i].Status == "found" {
				all[i].Status = "remains" // nothing --repair can do about it
			}
		}
	}
	p := e.printer()
	errorsLeft, warnings := 0, 0
	for _, fd := range all {
		if fd.Status != "repaired" {
			if fd.Severity == severityError {
				errorsLeft++
			} else {
				warnings++
			}
		}
		where := fd.Namespace + "/" + fd.Log
		lssn := "-"
		if fd.LSSN != 0 {
			lssn = strconv.FormatInt(fd.LSSN, 10)
		}
		action := fd.Repair
		if fd.Status == "found" && action == "" {
			action = "(manual)"
		}
		p.row(fd, where, lssn, fd.Severity, fd.Problem, fd.Status, fd.Detail, orDash(action))
	}
	if len(all) > 0 {
		if err := p.flush("LOG", "LSSN", "SEVERITY", "PROBLEM", "STATUS", "DETAIL", "REPAIR"); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stderr, "dlog admin inspect: %d logs, %d errors and %d warnings left\n", len(refs), errorsLeft, warnings)
	if !f.repair && nRepairs > 0 {
		fmt.Fprintln(e.stderr, "dlog admin inspect: run again with --repair to repair what the REPAIR column says")
	}
	if errorsLeft > 0 {
		return fmt.Errorf("%d inconsistencies need attention", errorsLeft)
	}
	return nil
}

// repairLogs runs the repairs of each log: ledgers first (a completed
// segment's ledger closed), then the log's keys by CAS on a fresh read
// (a writer needs a max lssn above every segment), then in-progress
// segments (a writer takes the log and recovers them), then the keys
// again (recovery may have deleted an empty segment).
func repairLogs(ctx context.Context, e *env, st metadata.Store, refs []logRef, byLog map[logRef][]finding) error {
	lc, err := newLedgerClient(ctx, st)
	if err != nil {
		return err
	}
	defer lc.Close()
	for _, r := range refs {
		recoverSegs := false
		for _, fd := range byLog[r] {
			switch fd.kind {
			case repairRecoverLedger:
				md, err := lc.Recover(ctx, fd.LedgerID)
				if err != nil {
					return fmt.Errorf("%s/%s: recover ledger %d: %w", r.ns, r.log, fd.LedgerID, err)
				}
				fmt.Fprintf(e.stderr, "  %s/%s: ledger %d closed at entry %d\n", r.ns, r.log, fd.LedgerID, md.LastEntryID)
			case repairRecoverSegments:
				recoverSegs = true
			}
		}
		if err := repairKeys(ctx, e, st, r); err != nil {
			return err
		}
		if !recoverSegs {
			continue
		}
		if err := recoverSegments(ctx, st, lc, r); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "  %s/%s: in-progress segments recovered\n", r.ns, r.log)
		if err := repairKeys(ctx, e, st, r); err != nil {
			return err
		}
	}
	return nil
}

// repairKeys inspects a log afresh and rewrites the keys its metadata
// findings name, by CAS on the versions just read.
func repairKeys(ctx context.Context, e *env, st metadata.Store, r logRef) error {
	fresh, ls, err := inspectOne(ctx, st, r)
	if err != nil {
		return err
	}
	ops := metadataRepairOps(r.ns, r.log, ls, fresh)
	for len(ops) > 0 {
		n := min(len(ops), metadata.MaxCommitOps)
		if _, err := st.Commit(ctx, ops[:n]...); err != nil {
			return fmt.Errorf("%s/%s: rewrite metadata: %w (the log changed meanwhile? run inspect again)", r.ns, r.log, err)
		}
		fmt.Fprintf(e.stderr, "  %s/%s: %d metadata keys rewritten\n", r.ns, r.log, n)
		ops = ops[n:]
	}
	return nil
}

// repairOwnerID is the writer id a repair takes logs under.
const repairOwnerID = "dlog-admin-repair"

// recoverSegments takes the log as a writer: opening a writer recovers
// every in-progress segment (fencing its ledger first); closing it
// completes its own new segment (deleted, being empty) and releases the
// log.
func recoverSegments(ctx context.Context, st metadata.Store, lc *ledger.Client, r logRef) error {
	cfg := namespace.DefaultConfig("")
	cfg.Store, cfg.Ledgers, cfg.Namespace = st, lc, r.ns
	cfg.OwnerID = repairOwnerID
	cfg.GCInterval = 0
	writable := 0
	for _, b := range lc.Bookies() {
		if b.State == metadata.BookieWritable {
			writable++
		}
	}
	cfg.EnsembleSize, cfg.WriteQuorum, cfg.AckQuorum = sandbox.Replication(writable)
	n, err := namespace.Open(ctx, cfg)
	if err != nil {
		return fmt.Errorf("%s/%s: open namespace: %w", r.ns, r.log, err)
	}
	defer n.Close()
	w, err := n.OpenWriter(ctx, r.log, namespace.WriterOptions{OwnerID: repairOwnerID})
	if err != nil {
		return fmt.Errorf("%s/%s: take the log to recover its segments: %w", r.ns, r.log, err)
	}
	if err := w.Close(ctx); err != nil {
		return fmt.Errorf("%s/%s: release the log after recovery: %w", r.ns, r.log, err)
	}
	return nil
}
