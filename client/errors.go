package client

import "github.com/dlog-io/dlog/internal/proxy/status"

// Errors of the service tier without a dlog sentinel of their own. Both
// are definite.
var (
	// ErrStreamUnavailable: the proxy does not take the log now (draining,
	// probation, shutting down, too many logs). The client already tried
	// the other proxies when a call returns it. Matches
	// dlog.ErrOverCapacity.
	ErrStreamUnavailable = status.ErrStreamUnavailable
	// ErrSequenceTooOld: an idempotent write whose sequence is at or below
	// the producer's last one but whose record the proxy does not remember
	// (older than its dedup window, or sent out of order). Nothing was
	// written by the call. Matches dlog.ErrInvalidArgument.
	ErrSequenceTooOld = status.ErrSequenceTooOld
)

// Error is an error a proxy answered: its status code, reason, whether it
// is definite and, for redirects, the owner's address. It unwraps to the
// dlog sentinel of its reason, so errors.Is and dlog.IsDefinite work on it
// as on the server; use errors.As to read the code.
type Error = status.Error
