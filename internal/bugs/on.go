//go:build dlogbugs

package bugs

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

// Available reports whether this binary was built with the dlogbugs tag.
const Available = true

var (
	mu  sync.RWMutex
	set = map[string]bool{}
)

func init() {
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
