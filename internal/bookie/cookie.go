package bookie

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/dlog-io/dlog/internal/metadata"
)

// cookieFileName is the cookie's name in Dir and in the journal directory.
const cookieFileName = "COOKIE"

// cookieVersion is the format version of the cookie file.
const cookieVersion = 1

// maxCookieBytes bounds the cookie file read.
const maxCookieBytes = 64 << 10

// cookie is a bookie's identity as written in its directories (JSON, one
// object; see doc.go).
type cookie struct {
	Version    int       `json:"version"`
	BookieID   string    `json:"bookie-id"`
	InstanceID string    `json:"instance-id"`
	Address    string    `json:"address"`
	Dir        string    `json:"dir"`
	JournalDir string    `json:"journal-dir"`
	Created    time.Time `json:"created"`
}

func newInstanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// readCookie reads dir/COOKIE; found is false when the file does not exist.
func readCookie(fs vfs.FS, dir string) (c cookie, found bool, err error) {
	path := fs.PathJoin(dir, cookieFileName)
	f, err := fs.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return cookie{}, false, nil
	}
	if err != nil {
		return cookie{}, false, fmt.Errorf("bookie: open cookie %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCookieBytes+1))
	if err != nil {
		return cookie{}, false, fmt.Errorf("bookie: read cookie %s: %w", path, err)
	}
	if len(b) > maxCookieBytes {
		return cookie{}, false, fmt.Errorf("bookie: cookie %s: over %d bytes", path, maxCookieBytes)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return cookie{}, false, fmt.Errorf("bookie: cookie %s: %w", path, err)
	}
	if c.Version != cookieVersion || c.InstanceID == "" || c.BookieID == "" {
		return cookie{}, false, fmt.Errorf("bookie: cookie %s: version %d, instance %q, bookie %q", path, c.Version, c.InstanceID, c.BookieID)
	}
	return c, true, nil
}

// writeCookie writes dir/COOKIE durably: a temporary file, fsync, rename,
// fsync of the directory.
func writeCookie(fs vfs.FS, dir string, c cookie) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeDurable(fs, dir, cookieFileName, append(b, '\n'))
}

// writeDurable writes dir/name atomically and durably: a temporary file,
// fsync, rename, fsync of the directory (created, and its parent synced,
// if needed).
func writeDurable(fs vfs.FS, dir, name string, b []byte) error {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bookie: create %s: %w", dir, err)
	}
	if parent := fs.PathDir(dir); parent != "" && parent != dir {
		if err := syncDir(fs, parent); err != nil {
			return err
		}
	}
	tmp := fs.PathJoin(dir, name+".tmp")
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("bookie: create %s: %w", tmp, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bookie: write %s: %w", tmp, err)
	}
	if err := fs.Rename(tmp, fs.PathJoin(dir, name)); err != nil {
		return fmt.Errorf("bookie: install %s in %s: %w", name, dir, err)
	}
	return syncDir(fs, dir)
}

func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("bookie: open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("bookie: sync dir %s: %w", dir, err)
	}
	return nil
}

// holdsData reports whether dir exists and holds a file whose name
// satisfies match.
func holdsData(fs vfs.FS, dir string, match func(string) bool) (bool, error) {
	names, err := fs.List(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("bookie: list %s: %w", dir, err)
	}
	for _, n := range names {
		if match(n) {
			return true, nil
		}
	}
	return false, nil
}

// checkIdentity implements the cookie rules of doc.go and returns the
// bookie's cookie, writing it (locally and in metadata) on a first start.
func checkIdentity(ctx context.Context, cfg Config, fs vfs.FS, id, addr string) (cookie, error) {
	journalDir := cfg.journalDir(fs)
	refuse := func(problem, remedy string) (cookie, error) {
		return cookie{}, &IdentityError{BookieID: id, Problem: problem, Remedy: remedy}
	}
	dataC, okData, err := readCookie(fs, cfg.Dir)
	if err != nil {
		return cookie{}, err
	}
	jourC, okJour, err := readCookie(fs, journalDir)
	if err != nil {
		return cookie{}, err
	}
	var remote *metadata.Cookie
	if cfg.Metadata != nil {
		c, _, err := cfg.Metadata.GetCookie(ctx, id)
		switch {
		case errors.Is(err, metadata.ErrNotFound):
		case err != nil:
			return cookie{}, fmt.Errorf("bookie: read cookie of %s from metadata: %w", id, err)
		default:
			remote = &c
		}
	}
	ledgerData, err := holdsData(fs, cfg.ledgersDir(fs), func(string) bool { return true })
	if err != nil {
		return cookie{}, err
	}
	journalData, err := holdsData(fs, journalDir, func(n string) bool { return strings.HasSuffix(n, ".journal") })
	if err != nil {
		return cookie{}, err
	}
	if okJour && !okData && !ledgerData && !journalData && (remote == nil || remote.InstanceID == jourC.InstanceID) {
		// A first start crashed between the two cookie writes (the journal
		// one goes first) before anything else was written: finish it.
		if err := writeCookie(fs, cfg.Dir, jourC); err != nil {
			return cookie{}, err
		}
		dataC, okData = jourC, true
	}
	switch {
	case !okData && !okJour:
		if ledgerData || journalData {
			return refuse(fmt.Sprintf("%s and %s hold data but no cookie", cfg.Dir, journalDir),
				"the cookies were deleted or the directories come from elsewhere; restore the cookies from a backup, or wipe both directories to start as a new, empty instance")
		}
		if remote != nil {
			return refuse(fmt.Sprintf("data directory was wiped or replaced: metadata says bookie %s was instance %s (created %s, dirs %s), but %s holds no cookie",
				id, remote.InstanceID, remote.Created.Format(time.RFC3339), strings.Join(remote.Dirs, ", "), cfg.Dir),
				"if the original disks exist, mount them again; if the data is lost, let its ledgers be re-replicated from the other bookies, then delete the cookie of "+id+" from metadata and start again as a new instance")
		}
		c := cookie{Version: cookieVersion, BookieID: id, InstanceID: newInstanceID(), Address: addr,
			Dir: cfg.Dir, JournalDir: journalDir, Created: time.Now().UTC().Truncate(time.Second)}
		// Journal directory first: a crash between the two writes leaves a
		// journal cookie only, which the next start refuses loudly rather
		// than silently accepting a half-initialised bookie.
		if err := writeCookie(fs, journalDir, c); err != nil {
			return cookie{}, err
		}
		if err := writeCookie(fs, cfg.Dir, c); err != nil {
			return cookie{}, err
		}
		if cfg.Metadata != nil {
			if err := putRemoteCookie(ctx, cfg.Metadata, c); err != nil {
				return cookie{}, err
			}
		}
		return c, nil
	case okData != okJour:
		have, missing, c := cfg.Dir, journalDir, dataC
		if okJour {
			have, missing, c = journalDir, cfg.Dir, jourC
		}
		return refuse(fmt.Sprintf("%s has the cookie of instance %s but %s has none: a disk was replaced or wiped", have, c.InstanceID, missing),
			"mount the original disk again; if its data is lost, wipe both directories (and delete the metadata cookie) so the bookie starts as a new instance and its ledgers are re-replicated")
	}
	if dataC.InstanceID != jourC.InstanceID || dataC.BookieID != jourC.BookieID {
		return refuse(fmt.Sprintf("%s holds instance %s of bookie %s but %s holds instance %s of bookie %s: swapped or mixed-up disks",
			cfg.Dir, dataC.InstanceID, dataC.BookieID, journalDir, jourC.InstanceID, jourC.BookieID),
			"point Dir and JournalDir at the directories of one instance")
	}
	if dataC.BookieID != id {
		return refuse(fmt.Sprintf("%s belongs to bookie %s (instance %s)", cfg.Dir, dataC.BookieID, dataC.InstanceID),
			"start it with --id "+dataC.BookieID+", or use another directory")
	}
	if remote != nil && remote.InstanceID != dataC.InstanceID {
		return refuse(fmt.Sprintf("metadata says bookie %s is instance %s but %s holds instance %s: the directory was replaced",
			id, remote.InstanceID, cfg.Dir, dataC.InstanceID),
			"mount the directories of instance "+remote.InstanceID+"; if they are lost, delete the metadata cookie of "+id+" after its ledgers were re-replicated")
	}
	if cfg.Metadata != nil && remote == nil {
		// Metadata lost the cookie (or never had it): the disks are
		// consistent, so restore it.
		if err := putRemoteCookie(ctx, cfg.Metadata, dataC); err != nil {
			return cookie{}, err
		}
	}
	return dataC, nil
}

func putRemoteCookie(ctx context.Context, md metadata.Store, c cookie) error {
	_, err := md.PutCookie(ctx, metadata.Cookie{
		BookieID: c.BookieID, InstanceID: c.InstanceID, Address: c.Address,
		Dirs: []string{c.Dir, c.JournalDir}, Created: c.Created,
	}, 0)
	if errors.Is(err, metadata.ErrExists) {
		return &IdentityError{BookieID: c.BookieID, Problem: "another instance registered a cookie for this id at the same time",
			Remedy: "make sure only one process runs as bookie " + c.BookieID}
	}
	if err != nil {
		return fmt.Errorf("bookie: write cookie of %s to metadata: %w", c.BookieID, err)
	}
	return nil
}
