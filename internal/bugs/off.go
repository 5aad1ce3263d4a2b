//go:build !dlogbugs

package bugs

import "errors"

// Available reports whether this binary was built with the dlogbugs tag.
const Available = false

// On reports whether the named bug is switched on; always false here.
func On(string) bool { return false }

// Set fails: this binary was built without the dlogbugs tag.
func Set(name string, on bool) error {
	return errors.New("bugs: binary built without the dlogbugs tag")
}
