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
	requirePassWithNote(t, "fsync-eio", "journal fsync failed (EIO)")
}

// requirePassWithNote runs scenario for 25 s and requires a clean run
// whose notes say the fault fired.
func requirePassWithNote(t *testing.T, scenario, note string) {
	r := runScenario(t, scenario, 25*time.Second, nil)
	requirePass(t, r, 100)
	for _, n := range r.Notes {
		if strings.Contains(n, note) {
			return
		}
	}
	t.Fatalf("no note %q: %v", note, r.Notes)
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
	requirePassWithNote(t, "power-loss", "power losses:")
}
