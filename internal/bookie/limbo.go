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
		return limboState{Version: 1, Reason: "unreadable limbo marker", Cut: "?", Since: "?"}, true, nil
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
