//go:build dlogbugs

package ledger

import (
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/bugs"
)

// withBug switches a seeded bug on for one test.
func withBug(t *testing.T, name string) {
	t.Helper()
	if err := bugs.Set(name, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bugs.Set(name, false) })
}

// TestBugRecoveryReadsDoNotFence: without the fence flag on recovery reads
// the staged BookKeeper #2614 scenario acknowledges entry 10 to the old
// writer after recovery closed the ledger at 9: data loss is observable.
func TestBugRecoveryReadsDoNotFence(t *testing.T) {
	withBug(t, bugs.RecoveryReadsDoNotFence)
	res := fencingHole(t)
	if res.closedAt != 9 {
		t.Fatalf("recovery closed at %d, want 9", res.closedAt)
	}
	if res.entry10 != nil || res.entry10ID != 10 {
		t.Fatalf("with the bug, entry 10 should be acknowledged past the closed end; got id %d err %v", res.entry10ID, res.entry10)
	}
}

// TestBugAckBeforeEnsembleCAS: with the switch on, entries that rely on the
// replacement bookie are acknowledged while the metadata CAS naming it is
// still held (BookKeeper #1591): a recovery at that moment would look for
// their second copy on the old ensemble.
func TestBugAckBeforeEnsembleCAS(t *testing.T) {
	withBug(t, bugs.AckBeforeEnsembleCAS)
	res := ackBeforeCAS(t, true)
	if res.ackedDuringCAS == 0 || res.sentToNewMember == 0 {
		t.Fatalf("with the bug: %d entries acknowledged and %d adds sent to the replacement while the CAS was held; want some",
			res.ackedDuringCAS, res.sentToNewMember)
	}
}

// TestBugReaderPastLAC: with the switch on, a non-recovery reader serves an
// entry beyond the LAC (one that might never be acknowledged).
func TestBugReaderPastLAC(t *testing.T) {
	withBug(t, bugs.ReaderPastLAC)
	c := startCluster(t, 3)
	wcl := newClient(t, c, func(cfg *Config) { cfg.ExplicitLACDelay = 0 })
	rcl := newClient(t, c)
	ctx := deadline(t, 60*time.Second)
	w, err := wcl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	for e := range int64(5) {
		_, err := w.Add(ctx, payload("past", e, 16))
		must(t, err, "add %d", e)
	}
	r, err := rcl.OpenReader(ctx, w.ID())
	must(t, err, "open reader")
	if r.LAC() != 3 {
		t.Fatalf("reader LAC %d, want 3", r.LAC())
	}
	got, err := r.Read(ctx, 4, 4)
	if err != nil || len(got) != 1 || got[0].ID != 4 {
		t.Fatalf("with the bug, reading entry 4 past LAC 3 should succeed; got %v, %v", got, err)
	}
}
