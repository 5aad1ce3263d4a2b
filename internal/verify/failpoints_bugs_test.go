//go:build dlogbugs

package verify

import (
	"strings"
	"testing"
	"time"
)

// TestFsyncEIO runs the fsync-eio scenario: one bookie's journal fsyncs
// fail with EIO (failpoint) again and again; nothing acknowledged may be
// lost and the run must be clean. It fails, loudly, when the failpoint is
// not wired into the bookie (bugs.WrapFS): a scenario that injects
// nothing must not pass.
//
//	go test -tags dlogbugs -run TestFsyncEIO ./internal/verify
func TestFsyncEIO(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a fault scenario")
	}
	r := runScenario(t, "fsync-eio", 25*time.Second, nil)
	requirePass(t, r, 100)
	fired := false
	for _, n := range r.Notes {
		fired = fired || strings.Contains(n, "journal fsync failed (EIO)")
	}
	if !fired {
		t.Fatalf("no note that the failpoint fired: %v", r.Notes)
	}
}

// TestPowerLoss runs the power-loss scenario: every bookie loses its
// unsynced writes whenever it is killed (failpoint lose-unsynced), one or
// all at once; nothing acknowledged may be lost. Like TestFsyncEIO it
// fails when the failpoint is not wired into the bookie.
//
//	go test -tags dlogbugs -run TestPowerLoss ./internal/verify
func TestPowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a fault scenario")
	}
	r := runScenario(t, "power-loss", 25*time.Second, nil)
	requirePass(t, r, 100)
	lost := false
	for _, n := range r.Notes {
		lost = lost || strings.Contains(n, "power losses:")
	}
	if !lost {
		t.Fatalf("no note of the power losses: %v", r.Notes)
	}
}
