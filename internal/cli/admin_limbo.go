package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/spf13/cobra"

	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/metadata"
)

// limboJSON is the output of `dlog admin limbo`.
type limboJSON struct {
	Dir      string `json:"dir"`
	BookieID string `json:"bookie-id,omitempty"`
	InLimbo  bool   `json:"in-limbo"`
	*bookie.LimboMarker
	// MetadataChecked: the ledgers were looked up in metadata, so
	// Blocking is the full list.
	MetadataChecked bool              `json:"metadata-checked"`
	Blocking        []limboLedgerJSON `json:"blocking-ledgers"`
	Cleared         bool              `json:"cleared"`
}

// limboLedgerJSON is a ledger that blocks a safe clear: not closed, with
// the bookie in an ensemble.
type limboLedgerJSON struct {
	LedgerID int64  `json:"ledger-id"`
	State    string `json:"state"`
	For      string `json:"for"`
}

func newAdminLimboCmd(e *env) *cobra.Command {
	var f metadataFlags
	var dir, journalDir string
	var doClear, force, yes bool
	c := &cobra.Command{
		Use:   "limbo --dir DIR [--journal-dir DIR] [--clear [--force] [--yes]]",
		Short: "Show a stopped bookie's limbo state, and take it out of limbo",
		Long: `Show whether the bookie whose data directory is --dir is in limbo: after a
journal replay cut records that may have been acknowledged it wrote
DIR/LIMBO, and while that marker exists its reads answer IO_ERROR
(unknown) instead of NO_ENTRY or NO_LEDGER, so that ledger recovery cannot
truncate an entry it lost. It never leaves limbo on its own.

With a metadata service (--metadata, DLOG_METADATA or the sandbox in the
default directory) it also lists the ledgers that are not closed and have
this bookie (its id is in DIR/COOKIE) in an ensemble: they block a safe
clear. Close them with ` + "`dlog admin recover-ledger ID`" + ` (or let their writers
close them) first.

--clear removes the marker; stop the bookie first (clearing takes the
journal's lock and fails while the bookie holds it). It refuses while
blocking ledgers exist, or when the metadata service cannot be checked,
unless --force, and asks for confirmation on a terminal unless --yes.`,
		Args: exactArgs(0, "no arguments (the bookie directory is --dir)"),
		RunE: func(c *cobra.Command, _ []string) error {
			if dir == "" {
				return Usagef("--dir is required: the bookie's data directory (its --dir)")
			}
			ctx, cancel := adminCtx(e.ctx, f)
			defer cancel()
			return e.runAdminLimbo(ctx, f, dir, journalDir, doClear, force, yes)
		},
	}
	addMetadataFlags(c, &f)
	fl := c.Flags()
	fl.StringVar(&dir, "dir", "", "the bookie's data directory (its --dir); required")
	fl.StringVar(&journalDir, "journal-dir", "", "the bookie's journal directory (default: the one its cookie names)")
	fl.BoolVar(&doClear, "clear", false, "remove the limbo marker (the bookie must be stopped)")
	fl.BoolVar(&force, "force", false, "with --clear: clear even while ledgers block it or metadata cannot be checked")
	fl.BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return c
}

func (e *env) runAdminLimbo(ctx context.Context, f metadataFlags, dir, journalDir string, doClear, force, yes bool) error {
	fs := vfs.Default
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return Usagef("--dir %s: %v", dir, err)
	}
	j := limboJSON{Dir: dir, Blocking: []limboLedgerJSON{}}
	id, _, hasCookie, err := bookie.ReadBookieIdentity(fs, dir)
	if err != nil {
		return err
	}
	j.BookieID = id
	m, inLimbo, err := bookie.ReadLimboMarker(fs, dir)
	if err != nil {
		return err
	}
	j.InLimbo = inLimbo
	if inLimbo {
		j.LimboMarker = &m
	}
	if inLimbo && hasCookie && (f.url != "" || sandboxMetadata(ctx) != "") {
		st, err := e.openMetadata(ctx, f)
		if err != nil {
			return err
		}
		defer st.Close()
		if j.Blocking, err = limboBlockers(ctx, st, id); err != nil {
			return err
		}
		j.MetadataChecked = true
	}
	if !doClear || !inLimbo {
		return e.printLimbo(j, doClear)
	}

	var refuse string
	switch {
	case force:
	case !hasCookie:
		refuse = fmt.Sprintf("%s has no COOKIE: cannot tell which bookie it is, nor which ledgers hold it; pass --force to clear anyway", dir)
	case !j.MetadataChecked:
		refuse = fmt.Sprintf("cannot check which ledgers still have bookie %s in an ensemble: pass --metadata (etcd URLs), or --force to clear unchecked", id)
	case len(j.Blocking) > 0:
		ids := make([]string, len(j.Blocking))
		for i, l := range j.Blocking {
			ids[i] = strconv.FormatInt(l.LedgerID, 10)
		}
		refuse = fmt.Sprintf("%d ledger(s) not closed have bookie %s in an ensemble (%s): clearing limbo now could let their recovery truncate an acknowledged entry the bookie lost; "+
			"close them first (`dlog admin recover-ledger ID`, or let their writers close them), then run this again; --force clears anyway",
			len(j.Blocking), id, strings.Join(ids, ", "))
	}
	if refuse != "" {
		if err := e.printLimbo(j, false); err != nil {
			return err
		}
		return errors.New(refuse)
	}
	if err := e.confirm(yes, fmt.Sprintf("take bookie %s (%s) out of limbo?", orDash(id), dir)); err != nil {
		return err
	}
	if err := bookie.ClearLimboMarker(fs, dir, journalDir); err != nil {
		return err
	}
	j.Cleared = true
	return e.printLimbo(j, true)
}

// limboBlockers lists the ledgers that are not closed and have bookie id
// in an ensemble.
func limboBlockers(ctx context.Context, st metadata.Store, id string) ([]limboLedgerJSON, error) {
	ids, err := allLedgerIDs(ctx, st)
	if err != nil {
		return nil, err
	}
	out := []limboLedgerJSON{}
	for _, lid := range ids {
		md, _, err := st.GetLedger(ctx, lid)
		if errors.Is(err, metadata.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("read ledger %d: %w", lid, err)
		}
		if md.State == metadata.LedgerClosed || !inEnsemble(md, id) {
			continue
		}
		out = append(out, limboLedgerJSON{LedgerID: lid, State: ledgerStateName(md.State), For: describeTags(md.Custom)})
	}
	return out, nil
}

func inEnsemble(md metadata.LedgerMetadata, id string) bool {
	for _, fr := range md.Fragments {
		for _, b := range fr.Bookies {
			if b == id {
				return true
			}
		}
	}
	return false
}

func (e *env) printLimbo(j limboJSON, doClear bool) error {
	if e.output == outputJSON {
		return writeJSON(e.stdout, j)
	}
	kv := [][2]string{{"dir", j.Dir}, {"bookie", orDash(j.BookieID)}}
	switch {
	case j.Cleared:
		kv = append(kv, [2]string{"limbo", "cleared (was in limbo since " + j.Since + ")"})
	case !j.InLimbo:
		kv = append(kv, [2]string{"limbo", "not in limbo"})
	default:
		kv = append(kv, [2]string{"limbo", "IN LIMBO"}, [2]string{"since", j.Since},
			[2]string{"reason", j.Reason}, [2]string{"cut", j.Cut})
		switch {
		case !j.MetadataChecked:
			kv = append(kv, [2]string{"blocking ledgers", "not checked (no --metadata)"})
		case len(j.Blocking) == 0:
			kv = append(kv, [2]string{"blocking ledgers", "none: safe to clear (stop the bookie, then --clear)"})
		default:
			for _, l := range j.Blocking {
				kv = append(kv, [2]string{"blocking ledger", fmt.Sprintf("%d (%s; %s)", l.LedgerID, l.State, l.For)})
			}
		}
	}
	if err := e.keyValues(kv); err != nil {
		return err
	}
	if doClear && !j.InLimbo && !j.Cleared {
		_, err := fmt.Fprintln(e.stdout, "nothing to clear")
		return err
	}
	return nil
}
