package dlog

import (
	"errors"
	"fmt"
)

// Errors are three-valued: success, a definite failure (nothing of the
// operation reached the log and nothing ever will) and an indeterminate one
// (the operation may or may not have taken effect; a reader will tell).
// IsDefinite tells them apart; every error that is not known to be definite
// is treated as indeterminate, which is the safe reading.

// Definite errors: the operation had no effect.
var (
	ErrInvalidName       = errors.New("dlog: invalid name")
	ErrInvalidArgument   = errors.New("dlog: invalid argument")
	ErrRecordTooLarge    = errors.New("dlog: record too large")
	ErrTxIDOutOfOrder    = errors.New("dlog: txid out of order")
	ErrLogNotFound       = errors.New("dlog: log not found")
	ErrLogExists         = errors.New("dlog: log already exists")
	ErrNamespaceNotFound = errors.New("dlog: namespace not found")
	ErrNamespaceExists   = errors.New("dlog: namespace already exists")
	// ErrNamespaceNotEmpty: a namespace that still holds logs cannot be
	// deleted.
	ErrNamespaceNotEmpty = errors.New("dlog: namespace not empty")
	// ErrEndOfStream: the log was sealed with MarkEndOfStream. Writers get it
	// for every later write (definite); readers get it after the last record.
	ErrEndOfStream = errors.New("dlog: end of stream")
	// ErrOverCapacity: a rate or pending-write limit refused the operation
	// before anything was sent.
	ErrOverCapacity = errors.New("dlog: over capacity")
	// ErrWriterActive: a log with an active writer cannot be deleted without
	// force.
	ErrWriterActive = errors.New("dlog: log has an active writer")
	// ErrClosed: the writer, reader or namespace was closed before the call.
	ErrClosed = errors.New("dlog: closed")
	// ErrTruncated: the requested position lies in truncated data.
	ErrTruncated = errors.New("dlog: position is truncated")
	// ErrNotFound: a named object other than a log (a subscription, a
	// ledger, a segment) does not exist.
	ErrNotFound = errors.New("dlog: not found")
)

// Indeterminate errors: the operation may or may not have taken effect.
var (
	// ErrFenced: this writer lost the log to another writer (its segment was
	// fenced, or its ownership lease ended). Writes pending when it happened
	// may still be in the log; no write of this writer will be acknowledged
	// again.
	ErrFenced = errors.New("dlog: writer fenced or ownership lost")
	// ErrUnavailable: metadata or bookies could not be reached in time; retry.
	ErrUnavailable = errors.New("dlog: service unavailable")
	// ErrCorrupt: stored data failed its checksum. Never retried silently.
	ErrCorrupt = errors.New("dlog: corrupt data")
	// ErrIndeterminate marks any failure whose effect is unknown.
	ErrIndeterminate = errors.New("dlog: outcome indeterminate")
)

var definite = []error{
	ErrInvalidName, ErrInvalidArgument, ErrInvalidDLSN, ErrRecordTooLarge, ErrTxIDOutOfOrder,
	ErrLogNotFound, ErrLogExists, ErrNamespaceNotFound, ErrEndOfStream, ErrOverCapacity,
	ErrWriterActive, ErrClosed, ErrTruncated, ErrNotFound, ErrNamespaceExists, ErrNamespaceNotEmpty,
}

// IsDefinite reports whether err is a definite failure: the operation had no
// effect at all. It is false for nil, for indeterminate errors and for any
// error it does not know (unknown means indeterminate).
func IsDefinite(err error) bool {
	if err == nil || errors.Is(err, ErrIndeterminate) || errors.Is(err, ErrFenced) {
		return false
	}
	var owned *OwnedError
	if errors.As(err, &owned) {
		return true
	}
	for _, d := range definite {
		if errors.Is(err, d) {
			return true
		}
	}
	return false
}

// IsIndeterminate reports whether err leaves the outcome unknown.
func IsIndeterminate(err error) bool { return err != nil && !IsDefinite(err) }

// Indeterminate wraps err so that IsDefinite reports false for it, whatever
// sentinel it also matches (a definite-looking error that happened after
// bytes were sent is indeterminate).
func Indeterminate(err error) error {
	if err == nil {
		return nil
	}
	return &indeterminateError{err}
}

type indeterminateError struct{ err error }

func (e *indeterminateError) Error() string { return e.err.Error() }
func (e *indeterminateError) Unwrap() []error {
	return []error{e.err, ErrIndeterminate}
}

// OwnedError reports that another writer owns the log. Nothing was written
// (definite); Owner tells whom to ask instead (a proxy address, when known).
type OwnedError struct {
	Log     string
	OwnerID string
	Owner   string // address for redirects; may be empty
}

func (e *OwnedError) Error() string {
	if e.Owner != "" {
		return fmt.Sprintf("dlog: log %s is owned by %s (%s)", e.Log, e.OwnerID, e.Owner)
	}
	return fmt.Sprintf("dlog: log %s is owned by %s", e.Log, e.OwnerID)
}
