package history

import (
	"context"
	"errors"

	"github.com/dlog-io/dlog"
)

// Error classes recorded in Event.Error. Definite classes name the dlog
// sentinel that made the error definite; the checker reports definite
// errors that nevertheless took effect per class, so a misclassified
// sentinel can be found by name.
const (
	ClassFenced        = "fenced"
	ClassUnavailable   = "unavailable"
	ClassCorrupt       = "corrupt"
	ClassIndeterminate = "indeterminate"
	ClassDeadline      = "deadline-exceeded"
	ClassCanceled      = "canceled"
	ClassUnknown       = "unknown"
	ClassOwned         = "owned"
)

var definiteClasses = []struct {
	err   error
	class string
}{
	{dlog.ErrInvalidName, "invalid-name"},
	{dlog.ErrInvalidArgument, "invalid-argument"},
	{dlog.ErrRecordTooLarge, "record-too-large"},
	{dlog.ErrTxIDOutOfOrder, "txid-out-of-order"},
	{dlog.ErrLogNotFound, "log-not-found"},
	{dlog.ErrLogExists, "log-exists"},
	{dlog.ErrNamespaceNotFound, "namespace-not-found"},
	{dlog.ErrEndOfStream, "end-of-stream"},
	{dlog.ErrOverCapacity, "over-capacity"},
	{dlog.ErrWriterActive, "writer-active"},
	{dlog.ErrClosed, "closed"},
	{dlog.ErrTruncated, "truncated"},
	{dlog.ErrNotFound, "not-found"},
}

// ErrorClass returns the class of err for Event.Error: "" for nil, a
// definite class (e.g. "over-capacity", "owned") when dlog.IsDefinite(err),
// otherwise one of the indeterminate classes ("fenced", "unavailable",
// "corrupt", "deadline-exceeded", "canceled", "indeterminate", "unknown").
func ErrorClass(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, dlog.ErrFenced) {
		return ClassFenced
	}
	if dlog.IsDefinite(err) {
		var owned *dlog.OwnedError
		if errors.As(err, &owned) {
			return ClassOwned
		}
		for _, d := range definiteClasses {
			if errors.Is(err, d.err) {
				return d.class
			}
		}
		return ClassUnknown // IsDefinite learned a sentinel this table lacks
	}
	switch {
	case errors.Is(err, dlog.ErrIndeterminate):
		return ClassIndeterminate
	case errors.Is(err, dlog.ErrUnavailable):
		return ClassUnavailable
	case errors.Is(err, dlog.ErrCorrupt):
		return ClassCorrupt
	case errors.Is(err, context.DeadlineExceeded):
		return ClassDeadline
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	}
	return ClassUnknown
}

// TypeOf returns the completion type for err: OK for nil, Fail for a
// definite error (dlog.IsDefinite), Info for anything else.
func TypeOf(err error) Type {
	switch {
	case err == nil:
		return OK
	case dlog.IsDefinite(err):
		return Fail
	}
	return Info
}
