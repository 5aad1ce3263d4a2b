//go:build !linux

package journal

import "github.com/cockroachdb/pebble/v2/vfs"

// enableDirectIO is not supported here: files are zero-filled through the
// page cache.
func enableDirectIO(vfs.File) (restore func() error, ok bool) { return nil, false }
