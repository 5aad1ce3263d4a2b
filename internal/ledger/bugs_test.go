//go:build dlogbugs

package ledger

import (
	"testing"

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
