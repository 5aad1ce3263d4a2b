package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// ledgerOwner is the segment a ledger stores.
type ledgerOwner struct {
	Namespace    string `json:"namespace"`
	Log          string `json:"log"`
	LSSN         int64  `json:"lssn"`
	SegmentState string `json:"segment-state"`
}

// findLedgerOwner finds the segment that references ledger id: first
// where the ledger's tags point (every segment's ledger is tagged with
// its log), then, for an untagged ledger, in every log.
func findLedgerOwner(ctx context.Context, st metadata.Store, id int64, tags map[string]string) (*ledgerOwner, error) {
	check := func(ns, log string) (*ledgerOwner, error) {
		ls, err := st.GetLogState(ctx, ns, log)
		if errors.Is(err, metadata.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read log %s/%s: %w", ns, log, err)
		}
		for _, s := range ls.Segments {
			if s.LedgerID == id {
				state := "completed"
				if s.State == metadata.SegmentInProgress {
					state = "in-progress"
				}
				return &ledgerOwner{Namespace: ns, Log: log, LSSN: s.LSSN, SegmentState: state}, nil
			}
		}
		return nil, nil
	}
	if log, ok := tags["dlog.log"]; ok {
		if o, err := check(tags["dlog.namespace"], log); o != nil || err != nil {
			return o, err
		}
	}
	nss, err := st.ListNamespaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range nss {
		logs, err := allLogs(ctx, st, ns)
		if err != nil {
			return nil, err
		}
		for _, l := range logs {
			if o, err := check(ns, l); o != nil || err != nil {
				return o, err
			}
		}
	}
	return nil, nil
}

// foundLedgerJSON is `dlog admin find-ledger -o json`.
type foundLedgerJSON struct {
	LedgerID    int64  `json:"ledger-id"`
	InMetadata  bool   `json:"in-metadata"`
	LedgerState string `json:"ledger-state,omitempty"`
	*ledgerOwner
}

func newFindLedgerCmd(e *env) *cobra.Command {
	var f metadataFlags
	c := &cobra.Command{
		Use:   "find-ledger ID",
		Short: "Say which log and segment a ledger belongs to",
		Long: `Say which log and segment reference a ledger: where the ledger's tags
point, or, for a ledger without tags, by looking through every log. It
exits with status 1 when no segment references the ledger (a leaked
ledger: see dlog admin audit-ledgers).`,
		Args: exactArgs(1, "a ledger ID"),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseLedgerID(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := adminCtx(e.ctx, f)
			defer cancel()
			st, err := e.openMetadata(ctx, f)
			if err != nil {
				return err
			}
			defer st.Close()
			md, _, err := st.GetLedger(ctx, id)
			inMetadata := err == nil
			if err != nil && !errors.Is(err, metadata.ErrNotFound) {
				return fmt.Errorf("read ledger %d: %w", id, err)
			}
			owner, err := findLedgerOwner(ctx, st, id, md.Custom)
			if err != nil {
				return err
			}
			j := foundLedgerJSON{LedgerID: id, InMetadata: inMetadata, ledgerOwner: owner}
			if inMetadata {
				j.LedgerState = ledgerStateName(md.State)
			}
			if owner == nil {
				if !inMetadata {
					return fmt.Errorf("ledger %d has no metadata and no segment references it (never created, or deleted)", id)
				}
				if e.output == outputJSON {
					if err := writeJSON(e.stdout, j); err != nil {
						return err
					}
				}
				return fmt.Errorf("no segment references ledger %d (%s; created for %s): it leaked; `dlog admin audit-ledgers --delete` removes leaks",
					id, j.LedgerState, describeTags(md.Custom))
			}
			if e.output == outputJSON {
				return writeJSON(e.stdout, j)
			}
			state := j.LedgerState
			if !inMetadata {
				state = "missing from metadata (see dlog admin inspect)"
			}
			return e.keyValues([][2]string{
				{"ledger", strconv.FormatInt(id, 10)}, {"ledger state", state},
				{"namespace", owner.Namespace}, {"log", owner.Log},
				{"segment", fmt.Sprintf("%d (%s)", owner.LSSN, owner.SegmentState)},
			})
		},
	}
	addMetadataFlags(c, &f)
	return c
}

func describeTags(tags map[string]string) string {
	if l, ok := tags["dlog.log"]; ok {
		return fmt.Sprintf("%s/%s segment %s", tags["dlog.namespace"], l, tags["dlog.lssn"])
	}
	return "no log (untagged)"
}

// recoveredJSON is `dlog admin recover-ledger -o json`.
type recoveredJSON struct {
	LedgerID    int64  `json:"ledger-id"`
	State       string `json:"state"`
	LastEntryID int64  `json:"last-entry-id"`
	Length      int64  `json:"length"`
	WasClosed   bool   `json:"was-closed"`
}

func newRecoverLedgerCmd(e *env) *cobra.Command {
	var f metadataFlags
	var force, yes bool
	c := &cobra.Command{
		Use:   "recover-ledger ID [--force] [--yes]",
		Short: "Fence a ledger and close it at its last entry",
		Long: `Run ledger recovery on a ledger whose writer is gone: fence it on its
bookies (its writer, if alive, can never add to it again), find its last
entry, re-replicate the tail and close it in metadata. A closed ledger is
left as it is.

Recovering the ledger of a log that a writer owns fences that writer (its
pending writes fail as indeterminate and the log is taken over again):
that takes --force.`,
		Args: exactArgs(1, "a ledger ID"),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseLedgerID(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := adminCtx(e.ctx, f)
			defer cancel()
			st, err := e.openMetadata(ctx, f)
			if err != nil {
				return err
			}
			defer st.Close()
			md, _, err := st.GetLedger(ctx, id)
			if errors.Is(err, metadata.ErrNotFound) {
				return fmt.Errorf("ledger %d has no metadata: nothing to recover (`dlog admin audit-ledgers` finds data left on bookies)", id)
			}
			if err != nil {
				return fmt.Errorf("read ledger %d: %w", id, err)
			}
			if md.State == metadata.LedgerClosed {
				return e.printRecovered(recoveredJSON{LedgerID: id, State: "closed", LastEntryID: md.LastEntryID, Length: md.Length, WasClosed: true})
			}
			owner, err := findLedgerOwner(ctx, st, id, md.Custom)
			if err != nil {
				return err
			}
			if owner != nil && owner.SegmentState == "in-progress" {
				o, owned, err := st.GetOwner(ctx, owner.Namespace, owner.Log)
				if err != nil {
					return fmt.Errorf("read owner of %s/%s: %w", owner.Namespace, owner.Log, err)
				}
				if owned && !force {
					return Usagef("ledger %d is the segment %d %s/%s's writer %s is appending to: recovering it fences that writer; pass --force to do it anyway",
						id, owner.LSSN, owner.Namespace, owner.Log, o.ID)
				}
			}
			if err := e.confirm(yes, fmt.Sprintf("fence and close ledger %d (%s)?", id, ledgerStateName(md.State))); err != nil {
				return err
			}
			lc, err := newLedgerClient(ctx, st)
			if err != nil {
				return err
			}
			defer lc.Close()
			md, err = lc.Recover(ctx, id)
			if err != nil {
				return fmt.Errorf("recover ledger %d: %w", id, err)
			}
			return e.printRecovered(recoveredJSON{LedgerID: id, State: ledgerStateName(md.State), LastEntryID: md.LastEntryID, Length: md.Length})
		},
	}
	addMetadataFlags(c, &f)
	c.Flags().BoolVar(&force, "force", false, "recover even while a writer owns the ledger's log (fences it)")
	c.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return c
}

func (e *env) printRecovered(j recoveredJSON) error {
	if e.output == outputJSON {
		return writeJSON(e.stdout, j)
	}
	var err error
	if j.WasClosed {
		_, err = fmt.Fprintf(e.stdout, "ledger %d was already closed at entry %d; nothing to do\n", j.LedgerID, j.LastEntryID)
	} else {
		_, err = fmt.Fprintf(e.stdout, "ledger %d recovered: %s at entry %d\n", j.LedgerID, j.State, j.LastEntryID)
	}
	return err
}

// leakJSON is one line of `dlog admin audit-ledgers`.
type leakJSON struct {
	LedgerID int64  `json:"ledger-id"`
	Where    string `json:"where"` // "metadata" or "bookie"
	Bookie   string `json:"bookie,omitempty"`
	State    string `json:"state,omitempty"`
	Created  string `json:"created,omitempty"`
	For      string `json:"created-for,omitempty"`
	// Status: "leaked", "too-young" (within --min-age: may be a segment
	// being created), "deleted".
	Status string `json:"status"`
}

type auditFlags struct {
	md          metadataFlags
	deleteLeaks bool
	yes         bool
	minAge      time.Duration
	bookies     bool
	maxProbe    int64
}

func newAuditLedgersCmd(e *env) *cobra.Command {
	var f auditFlags
	c := &cobra.Command{
		Use:   "audit-ledgers [--delete [--yes]] [--min-age 10m] [--bookies=false]",
		Short: "Find ledgers that no segment references, and delete them",
		Long: `Find leaked ledgers: ledgers whose metadata exists but that no segment of
any log references (left by a crash between creating a ledger and its
segment, or between deleting a segment and its ledger), and, with
--bookies (the default), ledgers that bookies still store although their
metadata is gone (a bookie that was down when its ledger was deleted).

Ledgers younger than --min-age are reported as too-young and never
deleted: a writer creates a ledger just before the segment that names it.
To learn the highest ledger id ever issued the audit draws one id from
the counter (ids may have gaps; that is harmless).

--delete asks for confirmation (--yes in scripts), checks each ledger
again, and deletes it: metadata and bookie copies, or the bookie copy.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(c *cobra.Command, _ []string) error {
			if f.yes && !f.deleteLeaks {
				return Usagef("--yes confirms --delete: give --delete too")
			}
			if f.minAge < 0 || f.maxProbe < 0 {
				return Usagef("--min-age and --max-probe cannot be negative")
			}
			ctx, cancel := adminCtx(e.ctx, f.md)
			defer cancel()
			st, err := e.openMetadata(ctx, f.md)
			if err != nil {
				return err
			}
			defer st.Close()
			lc, err := newLedgerClient(ctx, st)
			if err != nil {
				return err
			}
			defer lc.Close()
			return runAudit(ctx, e, st, lc, f)
		},
	}
	addMetadataFlags(c, &f.md)
	fs := c.Flags()
	fs.BoolVar(&f.deleteLeaks, "delete", false, "delete the leaked ledgers (asks first)")
	fs.BoolVar(&f.yes, "yes", false, "do not ask before deleting")
	fs.DurationVar(&f.minAge, "min-age", 10*time.Minute, "ignore ledgers younger than this")
	fs.BoolVar(&f.bookies, "bookies", true, "also ask every bookie about ledgers whose metadata is gone")
	fs.Int64Var(&f.maxProbe, "max-probe", 100000, "most ledger ids to ask bookies about (the newest)")
	return c
}

// referencedLedgers returns every ledger id a segment of any log names.
func referencedLedgers(ctx context.Context, st metadata.Store) (map[int64]bool, error) {
	out := map[int64]bool{}
	nss, err := st.ListNamespaces(ctx)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range nss {
		logs, err := allLogs(ctx, st, ns)
		if err != nil {
			return nil, err
		}
		for _, l := range logs {
			ls, err := st.GetLogState(ctx, ns, l)
			if errors.Is(err, metadata.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read log %s/%s: %w", ns, l, err)
			}
			for _, s := range ls.Segments {
				out[s.LedgerID] = true
			}
		}
	}
	return out, nil
}

func allLedgerIDs(ctx context.Context, st metadata.Store) ([]int64, error) {
	var out []int64
	var after int64
	for {
		ids, err := st.ListLedgers(ctx, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("list ledgers: %w", err)
		}
		out = append(out, ids...)
		if len(ids) < 1000 {
			return out, nil
		}
		after = ids[len(ids)-1]
	}
}

func runAudit(ctx context.Context, e *env, st metadata.Store, lc *ledger.Client, f auditFlags) error {
	// Ledgers are listed before segments: a ledger created after the
	// listing is not looked at, and one listed whose segment appears
	// before the segments are read is seen as referenced.
	ids, err := allLedgerIDs(ctx, st)
	if err != nil {
		return err
	}
	referenced, err := referencedLedgers(ctx, st)
	if err != nil {
		return err
	}
	now := time.Now()
	var rows []leakJSON
	for _, id := range ids {
		if referenced[id] {
			continue
		}
		md, _, err := st.GetLedger(ctx, id)
		if errors.Is(err, metadata.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return fmt.Errorf("read ledger %d: %w", id, err)
		}
		r := leakJSON{LedgerID: id, Where: "metadata", State: ledgerStateName(md.State), For: describeTags(md.Custom), Status: "leaked"}
		if !md.Created.IsZero() {
			r.Created = md.Created.UTC().Format(time.RFC3339)
			if now.Sub(md.Created) < f.minAge {
				r.Status = "too-young"
			}
		}
		rows = append(rows, r)
	}
	if f.bookies {
		bookieRows, err := auditBookies(ctx, e, st, lc, ids, referenced, f.maxProbe)
		if err != nil {
			return err
		}
		rows = append(rows, bookieRows...)
	}
	leaks := 0
	for _, r := range rows {
		if r.Status == "leaked" {
			leaks++
		}
	}
	if f.deleteLeaks && leaks > 0 {
		if err := e.confirm(f.yes, fmt.Sprintf("delete %d leaked ledgers?", leaks)); err != nil {
			printLeaks(e, rows)
			return err
		}
		for i := range rows {
			if rows[i].Status != "leaked" {
				continue
			}
			if err := deleteLeak(ctx, st, lc, &rows[i]); err != nil {
				printLeaks(e, rows)
				return err
			}
		}
	}
	if err := printLeaks(e, rows); err != nil {
		return err
	}
	deleted := 0
	for _, r := range rows {
		if r.Status == "deleted" {
			deleted++
		}
	}
	fmt.Fprintf(e.stderr, "dlog admin audit-ledgers: %d ledgers in metadata, %d leaked, %d deleted\n", len(ids), leaks, deleted)
	if leaks > deleted && !f.deleteLeaks {
		fmt.Fprintln(e.stderr, "dlog admin audit-ledgers: run again with --delete to delete the leaked ones")
	}
	return nil
}

func printLeaks(e *env, rows []leakJSON) error {
	if len(rows) == 0 {
		return nil
	}
	p := e.printer()
	for _, r := range rows {
		p.row(r, strconv.FormatInt(r.LedgerID, 10), r.Where, orDash(r.Bookie), orDash(r.State), orDash(r.Created), orDash(r.For), r.Status)
	}
	return p.flush("LEDGER", "WHERE", "BOOKIE", "STATE", "CREATED", "CREATED-FOR", "STATUS")
}

// deleteLeak checks a leak again and deletes it.
func deleteLeak(ctx context.Context, st metadata.Store, lc *ledger.Client, r *leakJSON) error {
	md, _, err := st.GetLedger(ctx, r.LedgerID)
	exists := err == nil
	if err != nil && !errors.Is(err, metadata.ErrNotFound) {
		return fmt.Errorf("read ledger %d: %w", r.LedgerID, err)
	}
	if exists {
		if owner, err := findLedgerOwner(ctx, st, r.LedgerID, md.Custom); err != nil {
			return err
		} else if owner != nil {
			r.Status = "referenced" // a segment appeared since the audit
			return nil
		}
	}
	switch r.Where {
	case "metadata":
		if !exists {
			r.Status = "deleted"
			return nil
		}
		if err := lc.Delete(ctx, r.LedgerID); err != nil && !errors.Is(err, ledger.ErrNoLedger) {
			return fmt.Errorf("delete ledger %d: %w", r.LedgerID, err)
		}
	case "bookie":
		if exists {
			r.Status = "in-metadata" // recreated meanwhile: not a leak any more
			return nil
		}
		addr, ok := lc.Address(r.Bookie)
		if !ok {
			return fmt.Errorf("delete ledger %d from bookie %s: the bookie is not registered any more", r.LedgerID, r.Bookie)
		}
		if err := lc.BookieClient().Delete(ctx, addr, r.LedgerID); err != nil && !errors.Is(err, bookieclient.ErrNoLedger) {
			return fmt.Errorf("delete ledger %d from bookie %s: %w", r.LedgerID, r.Bookie, err)
		}
	}
	r.Status = "deleted"
	return nil
}

// auditBookies asks every registered bookie about each ledger id ever
// issued that has no metadata and no segment: an explicit "no such
// ledger" is the only answer that counts as absent.
func auditBookies(ctx context.Context, e *env, st metadata.Store, lc *ledger.Client, ids []int64, referenced map[int64]bool, maxProbe int64) ([]leakJSON, error) {
	upper, err := st.NewLedgerID(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the ledger id counter: %w", err)
	}
	known := map[int64]bool{}
	for _, id := range ids {
		known[id] = true
	}
	var candidates []int64
	for id := upper - 1; id >= 1 && int64(len(candidates)) < maxProbe; id-- {
		if !known[id] && !referenced[id] {
			candidates = append(candidates, id)
		}
	}
	if int64(len(candidates)) == maxProbe && maxProbe > 0 {
		fmt.Fprintf(e.stderr, "dlog admin audit-ledgers: asking bookies about the newest %d ledger ids only (see --max-probe)\n", maxProbe)
	}
	bookies, _, err := st.ListBookies(ctx)
	if err != nil {
		return nil, fmt.Errorf("list bookies: %w", err)
	}
	type probe struct {
		bookie metadata.BookieInfo
		id     int64
	}
	probes := make(chan probe)
	var mu sync.Mutex
	var rows []leakJSON
	var unknown int
	var wg sync.WaitGroup
	bc := lc.BookieClient()
	for range 16 {
		wg.Go(func() {
			for p := range probes {
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := bc.ReadLAC(pctx, p.bookie.Address, &bookiepb.ReadLACRequest{LedgerId: p.id})
				cancel()
				mu.Lock()
				switch {
				case err == nil:
					rows = append(rows, leakJSON{LedgerID: p.id, Where: "bookie", Bookie: p.bookie.ID, Status: "leaked"})
				case !errors.Is(err, bookieclient.ErrNoLedger):
					unknown++
				}
				mu.Unlock()
			}
		})
	}
	for _, id := range candidates {
		for _, b := range bookies {
			select {
			case probes <- probe{b, id}:
			case <-ctx.Done():
			}
		}
	}
	close(probes)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if unknown > 0 {
		fmt.Fprintf(e.stderr, "dlog admin audit-ledgers: %d bookie answers were neither yes nor no (bookie down or busy); run again to cover them\n", unknown)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].LedgerID != rows[j].LedgerID {
			return rows[i].LedgerID < rows[j].LedgerID
		}
		return rows[i].Bookie < rows[j].Bookie
	})
	return rows, nil
}
