package dlog

import (
	"fmt"
	"strings"
)

// MaxNameLength is the longest namespace, log or subscription name, in bytes.
const MaxNameLength = 200

// ValidateName checks a namespace, log or subscription name. A valid name is
// 1 to MaxNameLength bytes of ASCII letters, digits, '-', '_' and '.', does
// not start with '.' or "__" (reserved) and does not contain "..". These
// rules keep every name a single path element: a valid name maps to exactly
// one metadata key under its parent's prefix and can never escape it. The
// error wraps ErrInvalidName and says which rule failed.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w: %d bytes, longer than %d", ErrInvalidName, len(name), MaxNameLength)
	case name[0] == '.':
		return fmt.Errorf("%w: %q starts with '.' (reserved)", ErrInvalidName, name)
	case strings.HasPrefix(name, "__"):
		return fmt.Errorf("%w: %q starts with \"__\" (reserved)", ErrInvalidName, name)
	case strings.Contains(name, ".."):
		return fmt.Errorf("%w: %q contains \"..\"", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("%w: %q has byte %#x at %d; allowed are letters, digits, '-', '_', '.'", ErrInvalidName, printable(name), c, i)
		}
	}
	return nil
}

// printable keeps control bytes out of error messages and logs.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
