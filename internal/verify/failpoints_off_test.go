//go:build !dlogbugs

package verify

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestFsyncEIOWithoutFailpointsFails: on a binary without failpoints (no
// dlogbugs tag) the fsync-eio scenario must not pass as if it had tested
// something: the run fails with ErrFaultNotInjected.
// The power-loss scenario likewise.
func TestFsyncEIOWithoutFailpointsFails(t *testing.T) {
	if testing.Short() {
		t.Skip("long: starts a cluster")
	}
	if os.Getenv("DLOG_VERIFY_BIN") != "" {
		t.Skip("DLOG_VERIFY_BIN may have failpoints")
	}
	for _, sc := range []string{"fsync-eio", "power-loss"} {
		r := runScenario(t, sc, 10*time.Second, nil)
		if !r.Failed() || !strings.Contains(r.Err, ErrFaultNotInjected.Error()) {
			t.Fatalf("%s without failpoints: failed %v, error %q; want %v", sc, r.Failed(), r.Err, ErrFaultNotInjected)
		}
	}
}
