//go:build dlogbugs

package bugs

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Available reports whether this binary was built with the dlogbugs tag.
const Available = true

var (
	mu  sync.RWMutex
	set = map[string]bool{}
)

// failpoints are the failpoints of this process, from DLOG_FAILPOINTS.
var failpoints = Failpoints{JournalFsyncEIOAfter: -1}

func init() {
	fp, err := ParseFailpoints(os.Getenv(FailpointsEnv))
	if err != nil {
		panic(err)
	}
	failpoints = fp
	for _, n := range strings.Split(os.Getenv("DLOG_BUGS"), ",") {
		if n = strings.TrimSpace(n); n != "" {
			if err := Set(n, true); err != nil {
				panic(err)
			}
		}
	}
}

// On reports whether the named bug is switched on.
func On(name string) bool {
	mu.RLock()
	defer mu.RUnlock()
	return set[name]
}

// Set switches the named bug on or off.
func Set(name string, on bool) error {
	if !slices.Contains(All, name) {
		return fmt.Errorf("bugs: unknown switch %q (known: %s)", name, strings.Join(All, ", "))
	}
	mu.Lock()
	defer mu.Unlock()
	set[name] = on
	return nil
}

// WrapFS wraps fs with the failpoints of DLOG_FAILPOINTS (see Failpoints),
// announcing each on stderr (FailpointArmedMarker, then
// FailpointFiredMarker when it first fires); without failpoints it returns
// fs. A bookie calls it where it sets up its file system.
func WrapFS(fs vfs.FS) vfs.FS {
	if failpoints.LoseUnsynced {
		fmt.Fprintf(os.Stderr, "%s %s (pid %d)\n", FailpointArmedMarker, LoseUnsynced, os.Getpid())
		fs = LoseUnsyncedFS(fs)
	}
	if failpoints.JournalFsyncEIOAfter < 0 {
		return fs
	}
	fmt.Fprintf(os.Stderr, "%s %s-after=%d (pid %d)\n", FailpointArmedMarker, JournalFsyncEIO, failpoints.JournalFsyncEIOAfter, os.Getpid())
	return FsyncEIOFS(fs, failpoints.JournalFsyncEIOAfter, nil, os.Stderr)
}
