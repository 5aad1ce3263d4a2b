package bookie

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrIdentity: the data directories do not belong to this bookie, or
	// were wiped or swapped (see IdentityError for the detail and what the
	// operator can do). Open refuses to start rather than answer "no such
	// entry" for data it once acknowledged.
	ErrIdentity = errors.New("bookie: identity check failed")
	// ErrClosed: the bookie was closed.
	ErrClosed = errors.New("bookie: closed")
	// ErrReadOnly is reported by Ready while the bookie refuses writes
	// because its journal or its ledger store failed.
	ErrReadOnly = errors.New("bookie: read-only")
)

// IdentityError explains an identity check failure.
type IdentityError struct {
	// BookieID is the bookie's configured id.
	BookieID string
	// Problem says what does not match.
	Problem string
	// Remedy says what the operator can do.
	Remedy string
}

func (e *IdentityError) Error() string {
	return fmt.Sprintf("bookie %s: identity check failed: %s; %s", e.BookieID, e.Problem, e.Remedy)
}

// Unwrap returns ErrIdentity.
func (e *IdentityError) Unwrap() error { return ErrIdentity }
