package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/ledger"
)

// TestAdminLimbo: a bookie with a limbo marker and an open ledger on it is
// reported in limbo with that ledger blocking; clearing refuses while the
// bookie runs and while the ledger is open, and removes the marker once
// the bookie is stopped and the ledger closed; afterwards it reports the
// bookie out of limbo.
func TestAdminLimbo(t *testing.T) {
	sb := testSandbox(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	md := []string{"--metadata", sb.MetadataURL()}

	// A fourth bookie, outside the sandbox so that the test can stop it.
	dir := t.TempDir()
	bcfg := bookie.DefaultConfig()
	bcfg.ID = "limbo-bookie"
	bcfg.Dir = dir
	bcfg.ListenAddr = "127.0.0.1:0"
	bcfg.Metadata = sb.Store()
	bcfg.JournalFileSizeBytes = 1 << 20
	bcfg.WriteCacheMaxBytes = 16 << 20
	bcfg.MinFreeBytes = 0
	b, err := bookie.Open(ctx, bcfg)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := b.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(stop)
	waitFor(t, time.Minute, "the bookie to register", b.Registered)

	lc, err := ledger.New(ctx, sb.Store(), ledger.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	// Ensemble 4 of 4 bookies: the ledger is on limbo-bookie.
	var w *ledger.Writer
	waitFor(t, time.Minute, "a ledger on 4 bookies", func() bool {
		w, err = lc.Create(ctx, ledger.CreateOptions{EnsembleSize: 4, WriteQuorum: 4, AckQuorum: 2})
		return err == nil
	})
	defer w.Abort()
	for range 3 {
		if _, err := w.Add(ctx, []byte("entry")); err != nil {
			t.Fatal(err)
		}
	}

	limbo := func(args ...string) result {
		return runDlog(t, "", append(append([]string{"admin", "limbo", "--dir", dir, "-o", "json"}, md...), args...)...)
	}
	report := func(r result) limboJSON {
		t.Helper()
		var j limboJSON
		if err := json.Unmarshal([]byte(r.stdout), &j); err != nil {
			t.Fatalf("output is not one JSON object: %v\n%s", err, r)
		}
		return j
	}

	// No marker: not in limbo, nothing to clear.
	r := limbo()
	if j := report(r); r.code != ExitOK || j.InLimbo || j.BookieID != "limbo-bookie" {
		t.Fatalf("bookie without marker: %+v\n%s", j, r)
	}

	marker := filepath.Join(dir, "LIMBO")
	if err := os.WriteFile(marker, []byte(`{"version":1,"since":"2026-01-02T03:04:05Z","reason":"bad checksum","cut":"00000001.journal:4096"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	// The bookie runs: clearing is refused even with --force.
	r = limbo("--clear", "--yes", "--force")
	if r.code != ExitError || !strings.Contains(r.stderr, "stop the bookie") {
		t.Fatalf("clear while running: %s", r)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("refused clear touched the marker: %v", err)
	}
	stop()

	// Stopped, in limbo, the open ledger blocks.
	r = limbo()
	j := report(r)
	if r.code != ExitOK || !j.InLimbo || j.LimboMarker == nil || j.Reason != "bad checksum" || j.Cut != "00000001.journal:4096" || !j.MetadataChecked {
		t.Fatalf("in limbo: %+v\n%s", j, r)
	}
	if len(j.Blocking) != 1 || j.Blocking[0].LedgerID != w.ID() || j.Blocking[0].State != "open" {
		t.Fatalf("blocking ledgers %+v, want ledger %d open\n%s", j.Blocking, w.ID(), r)
	}
	// Human output names the ledger too.
	if r := runDlog(t, "", append([]string{"admin", "limbo", "--dir", dir}, md...)...); r.code != ExitOK ||
		!strings.Contains(r.stdout, "IN LIMBO") || !strings.Contains(r.stdout, "bad checksum") {
		t.Fatalf("human output: %s", r)
	}
	r = limbo("--clear", "--yes")
	if r.code != ExitError || !strings.Contains(r.stderr, "recover-ledger") {
		t.Fatalf("clear with an open ledger: %s", r)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("refused clear removed the marker: %v", err)
	}
	// Without a terminal, and without --yes, nothing is cleared either.
	if r := limbo("--clear", "--force"); r.code != ExitUsage || !strings.Contains(r.stderr, "--yes") {
		t.Fatalf("clear without confirmation: %s", r)
	}

	// The ledger closed: the marker goes.
	if _, err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r = limbo("--clear", "--yes")
	if j := report(r); r.code != ExitOK || !j.Cleared || len(j.Blocking) != 0 {
		t.Fatalf("clear: %+v\n%s", j, r)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("marker after clear: %v", err)
	}
	r = limbo()
	if j := report(r); r.code != ExitOK || j.InLimbo {
		t.Fatalf("after clear: %+v\n%s", j, r)
	}
}
