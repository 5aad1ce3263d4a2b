package dlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestErrorClasses(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		definite bool
	}{
		{"nil", nil, false},
		{"too large", fmt.Errorf("write: %w", ErrRecordTooLarge), true},
		{"txid", ErrTxIDOutOfOrder, true},
		{"bad dlsn", fmt.Errorf("open reader: %w", ErrInvalidDLSN), true},
		{"owned", &OwnedError{Log: "a", OwnerID: "p1", Owner: "127.0.0.1:1"}, true},
		{"fenced", ErrFenced, false},
		{"timeout", context.DeadlineExceeded, false},
		{"unknown", errors.New("boom"), false},
		{"definite made indeterminate", Indeterminate(ErrRecordTooLarge), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := IsDefinite(c.err); got != c.definite {
				t.Fatalf("IsDefinite(%v) = %v; want %v", c.err, got, c.definite)
			}
			if c.err != nil && IsIndeterminate(c.err) == c.definite {
				t.Fatalf("IsIndeterminate(%v) disagrees with IsDefinite", c.err)
			}
		})
	}
	if !errors.Is(Indeterminate(ErrRecordTooLarge), ErrRecordTooLarge) {
		t.Fatal("Indeterminate hides the wrapped sentinel")
	}
}

func TestValidateName(t *testing.T) {
	good := []string{"a", "orders", "orders.v2", "a-b_c.D9", strings.Repeat("x", MaxNameLength)}
	bad := []string{"", ".", "..", ".hidden", "__sys", "a/b", "a..b", "../x", "a\x00b", "a\nb", "a b", "ünï", "%2e%2e%2f", strings.Repeat("x", MaxNameLength+1)}
	for _, n := range good {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q) = %v; want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidateName(n); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v; want ErrInvalidName", n, err)
		}
	}
}
