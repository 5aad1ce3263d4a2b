package ledger

import (
	"errors"
	"fmt"

	"github.com/dlog-io/dlog"
)

// kindError is a package sentinel that also matches a dlog taxonomy error,
// so callers may test either errors.Is(err, ledger.ErrFenced) or
// errors.Is(err, dlog.ErrFenced).
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Sentinel errors. Detail is wrapped around them (fmt.Errorf with %w); match
// with errors.Is. Each also matches the dlog error named in its comment.
var (
	// ErrFenced: the writer lost the ledger. Some bookie answered FENCED, or
	// an ensemble change or close found the ledger in recovery or closed by
	// someone else. Every pending and later add of the writer fails with it,
	// and the writer never acknowledges anything again. Indeterminate: a
	// pending entry may still be in the recovered ledger. Matches
	// dlog.ErrFenced.
	ErrFenced error = &kindError{"ledger: fenced", dlog.ErrFenced}
	// ErrNotEnoughBookies: no ensemble, or no replacement for a failed
	// member, could be found among the writable registered bookies, and the
	// ack quorum can no longer be met. Pending and later adds fail with it
	// (indeterminate for pending ones). Matches dlog.ErrUnavailable.
	ErrNotEnoughBookies error = &kindError{"ledger: not enough bookies", dlog.ErrUnavailable}
	// ErrClosed: the writer, reader or client was closed (or aborted).
	// Matches dlog.ErrClosed. For adds that were pending when a writer was
	// aborted the outcome is unknown (they are wrapped with
	// dlog.Indeterminate).
	ErrClosed error = &kindError{"ledger: closed", dlog.ErrClosed}
	// ErrOverloaded: MaxPendingAdds entries are in flight and the caller's
	// context ended before one completed. Nothing was sent (definite).
	// Matches dlog.ErrOverCapacity.
	ErrOverloaded error = &kindError{"ledger: too many adds in flight", dlog.ErrOverCapacity}
	// ErrTooLarge: an entry exceeds Config.MaxEntryBytes. Nothing was sent.
	// Matches dlog.ErrRecordTooLarge.
	ErrTooLarge error = &kindError{"ledger: entry too large", dlog.ErrRecordTooLarge}
	// ErrNoLedger: the ledger's metadata does not exist. Matches
	// dlog.ErrNotFound.
	ErrNoLedger error = &kindError{"ledger: no such ledger", dlog.ErrNotFound}
	// ErrBeyondLAC: a read asked for an entry past the reader's LAC (or past
	// the last entry of a closed ledger). Nothing is known about it yet;
	// wait with WaitLAC. Matches dlog.ErrInvalidArgument.
	ErrBeyondLAC error = &kindError{"ledger: entry beyond the last add confirmed", dlog.ErrInvalidArgument}
	// ErrEndOfLedger: WaitLAC on a closed ledger whose last entry is not
	// after the caller's previous LAC: no entry will ever follow.
	ErrEndOfLedger error = errors.New("ledger: end of ledger")
	// ErrInconsistent: every bookie of an entry's write set explicitly
	// denies an entry at or below the LAC (or the ledger's closed end).
	// Acknowledged data is missing: never "end of data", never retried
	// silently. Matches dlog.ErrCorrupt.
	ErrInconsistent error = &kindError{"ledger: acknowledged entry missing on every bookie of its write set", dlog.ErrCorrupt}
	// ErrUnavailable: no bookie of the write set (or not enough of the
	// ensemble) answered usefully in time: transient, retry. Matches
	// dlog.ErrUnavailable.
	ErrUnavailable error = &kindError{"ledger: bookies unavailable", dlog.ErrUnavailable}
	// ErrRecoveryIncomplete: recovery could not finish safely (fencing not
	// covered, an entry neither readable nor provably absent, re-replication
	// short of the ack quorum, metadata unreachable). Nothing was closed;
	// retry later. Matches dlog.ErrUnavailable.
	ErrRecoveryIncomplete error = &kindError{"ledger: recovery incomplete; retry", dlog.ErrUnavailable}
	// ErrInvalidArgument: a call or configuration no ledger may use.
	// Matches dlog.ErrInvalidArgument.
	ErrInvalidArgument error = &kindError{"ledger: invalid argument", dlog.ErrInvalidArgument}
)

// fencedError builds the error a fenced writer fails its adds with.
func fencedError(id int64, why string) error {
	return fmt.Errorf("ledger %d: %w: %s", id, ErrFenced, why)
}
