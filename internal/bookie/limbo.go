package bookie

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dlog-io/dlog/internal/journal"
)

// limboFileName is the limbo marker's name in Dir (see doc.go, "Limbo").
const limboFileName = "LIMBO"

// limboState is the limbo marker's content.
type limboState struct {
	Version int    `json:"version"`
	Since   string `json:"since"` // RFC 3339
	Reason  string `json:"reason"`
	Cut     string `json:"cut"` // journal position of the cut
}

// String is the reason read answers give.
func (l limboState) String() string {
	return fmt.Sprintf("bookie in limbo since %s (journal cut at %s: %s)", l.Since, l.Cut, l.Reason)
}

// unreadableLimbo stands for a marker that cannot be parsed.
var unreadableLimbo = limboState{Version: 1, Reason: "unreadable limbo marker", Cut: "?", Since: "?"}

// readLimbo reads the limbo marker in dir; found is false without one.
func readLimbo(fs vfs.FS, dir string) (l limboState, found bool, err error) {
	path := fs.PathJoin(dir, limboFileName)
	f, err := fs.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return l, false, nil
	}
	if err != nil {
		return l, false, fmt.Errorf("bookie: open %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return l, false, fmt.Errorf("bookie: read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &l); err != nil || l.Version != 1 {
		// Unreadable: still a limbo marker. Staying in limbo is safe.
		return unreadableLimbo, true, nil
	}
	return l, true, nil
}

// enterLimbo persists the limbo marker for a suspect journal cut before
// the journal makes the cut (journal.Config.BeforeCut): once cut, the
// damage is gone and the next start could not tell.
func (b *Bookie) enterLimbo(c journal.Cut) error {
	if !c.Suspect {
		return nil
	}
	l := limboState{Version: 1, Since: time.Now().UTC().Format(time.RFC3339), Reason: c.Reason, Cut: c.At.String()}
	if cur := b.limbo.Load(); cur != nil {
		return nil // already in limbo: keep the first reason
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := writeDurable(b.fs, b.cfg.Dir, limboFileName, append(data, '\n')); err != nil {
		return err
	}
	b.limbo.Store(&l)
	b.log.Error("journal replay cut records that may have been acknowledged: bookie in limbo; "+
		"reads of entries it does not hold answer IO_ERROR (unknown), not NO_ENTRY",
		"cut", l.Cut, "reason", l.Reason, "marker", b.fs.PathJoin(b.cfg.Dir, limboFileName))
	return nil
}

// Limbo returns why the bookie is in limbo, "" if it is not (see doc.go,
// "Limbo").
func (b *Bookie) Limbo() string {
	if l := b.limbo.Load(); l != nil {
		return l.String()
	}
	return ""
}

// LimboMarker is what a bookie's limbo marker (Dir/LIMBO) says. An
// unreadable marker reads as Unreadable, with "?" for Since and Cut: it
// still puts the bookie in limbo.
type LimboMarker struct {
	Since      string `json:"since"` // RFC 3339, or "?"
	Reason     string `json:"reason"`
	Cut        string `json:"cut"` // journal position of the cut, or "?"
	Unreadable bool   `json:"unreadable,omitempty"`
}

// String describes the marker as the bookie's reads do.
func (m LimboMarker) String() string {
	return limboState{Version: 1, Since: m.Since, Reason: m.Reason, Cut: m.Cut}.String()
}

// ReadLimboMarker reads the limbo marker of the bookie directory dir (a
// bookie's Config.Dir); found is false when the bookie is not in limbo.
// It only reads: the bookie may be running.
func ReadLimboMarker(fs vfs.FS, dir string) (m LimboMarker, found bool, err error) {
	l, found, err := readLimbo(fs, dir)
	if err != nil || !found {
		return LimboMarker{}, found, err
	}
	return LimboMarker{Since: l.Since, Reason: l.Reason, Cut: l.Cut, Unreadable: l == unreadableLimbo}, true, nil
}

// ReadBookieIdentity reads the cookie of the bookie directory dir: the
// bookie's id (its name in ledger ensembles) and its journal directory.
// found is false when dir holds no cookie (no bookie ever started there).
func ReadBookieIdentity(fs vfs.FS, dir string) (id, journalDir string, found bool, err error) {
	c, found, err := readCookie(fs, dir)
	if err != nil || !found {
		return "", "", found, err
	}
	journalDir = c.JournalDir
	if journalDir == "" {
		journalDir = Config{Dir: dir}.journalDir(fs)
	}
	return c.BookieID, journalDir, true, nil
}

// journalLockFileName is the journal's lock file (journal package doc:
// LOCK, taken with vfs.FS.Lock for as long as the journal is open).
const journalLockFileName = "LOCK"

// ClearLimboMarker takes a stopped bookie out of limbo: it removes
// dir/LIMBO and fsyncs dir. journalDir is the bookie's journal directory
// ("": the one its cookie names, else dir/journal). It takes the journal's
// lock for the duration and fails while a running bookie holds it: a
// running bookie keeps its limbo state in memory until it stops. A
// missing marker is not an error.
//
// Clearing is safe only once every ledger that had the bookie in an
// ensemble when the marker was written is closed or deleted (doc.go,
// "Limbo"); the caller checks that.
func ClearLimboMarker(fs vfs.FS, dir, journalDir string) error {
	if journalDir == "" {
		_, jd, found, err := ReadBookieIdentity(fs, dir)
		if err != nil {
			return err
		}
		if found {
			journalDir = jd
		} else {
			journalDir = Config{Dir: dir}.journalDir(fs)
		}
	}
	if _, err := fs.Stat(journalDir); err != nil {
		return fmt.Errorf("bookie: journal directory %s: %w", journalDir, err)
	}
	lockPath := fs.PathJoin(journalDir, journalLockFileName)
	lock, err := fs.Lock(lockPath)
	if err != nil {
		return fmt.Errorf("bookie: %s is in use (cannot take the journal lock %s): stop the bookie first: %w", dir, lockPath, err)
	}
	defer lock.Close()
	path := fs.PathJoin(dir, limboFileName)
	if err := fs.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("bookie: remove %s: %w", path, err)
	}
	return syncDir(fs, dir)
}
