//go:build !dlogbugs

package bugs

import (
	"errors"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Available reports whether this binary was built with the dlogbugs tag.
const Available = false

// On reports whether the named bug is switched on; always false here.
func On(string) bool { return false }

// Set fails: this binary was built without the dlogbugs tag.
func Set(name string, on bool) error {
	return errors.New("bugs: binary built without the dlogbugs tag")
}

// WrapFS returns fs: failpoints (DLOG_FAILPOINTS) exist only in binaries
// built with the dlogbugs tag.
func WrapFS(fs vfs.FS) vfs.FS { return fs }
