package bookieclient

import (
	"errors"
	"fmt"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// Sentinel errors, one per bookie status, plus transport failures.
//
// ErrNoLedger and ErrNoEntry are explicit negatives: the bookie is sure it
// never stored the thing. Everything else that is not nil — in particular
// ErrIO, ErrCorrupt, ErrTimeout and ErrUnavailable — means "unknown" and must
// never be counted as absence (see IsExplicitNegative).
var (
	ErrNoLedger     = errors.New("bookieclient: no such ledger")
	ErrNoEntry      = errors.New("bookieclient: no such entry")
	ErrFenced       = errors.New("bookieclient: ledger fenced")
	ErrUnauthorized = errors.New("bookieclient: master key mismatch")
	ErrReadOnly     = errors.New("bookieclient: bookie is read-only")
	ErrTooLarge     = errors.New("bookieclient: entry too large")
	ErrBadRequest   = errors.New("bookieclient: bad request")
	ErrIO           = errors.New("bookieclient: bookie I/O error")
	ErrCorrupt      = errors.New("bookieclient: stored entry failed its checksum")
	ErrTimeout      = errors.New("bookieclient: timed out")
	ErrOverloaded   = errors.New("bookieclient: bookie overloaded")
	ErrShuttingDown = errors.New("bookieclient: bookie shutting down")
	// ErrWrongBookie: the request named the bookie it was meant for
	// (Request.expected_bookie_id) and another bookie answered at that
	// address (STATUS_WRONG_BOOKIE): nothing was done. A failure of the
	// bookie meant, to be replaced; never an ack, a fence or a negative.
	ErrWrongBookie = errors.New("bookieclient: another bookie answered at the address")
	// ErrUnavailable: the bookie could not be reached or the connection
	// broke while the request was pending (outcome unknown).
	ErrUnavailable = errors.New("bookieclient: bookie unavailable")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("bookieclient: client closed")
	// ErrBadResponse: the bookie answered something malformed (e.g. an entry
	// failing its checksum in transit). Unknown, never absent.
	ErrBadResponse = errors.New("bookieclient: malformed response")
)

// StatusError is a non-OK answer from a bookie.
type StatusError struct {
	Bookie  string
	Status  bookiepb.Status
	Message string
	err     error
}

func (e *StatusError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("bookie %s: %v: %s", e.Bookie, e.err, e.Message)
	}
	return fmt.Sprintf("bookie %s: %v", e.Bookie, e.err)
}

func (e *StatusError) Unwrap() error { return e.err }

var statusErrors = map[bookiepb.Status]error{
	bookiepb.Status_STATUS_NO_LEDGER:     ErrNoLedger,
	bookiepb.Status_STATUS_NO_ENTRY:      ErrNoEntry,
	bookiepb.Status_STATUS_FENCED:        ErrFenced,
	bookiepb.Status_STATUS_UNAUTHORIZED:  ErrUnauthorized,
	bookiepb.Status_STATUS_READ_ONLY:     ErrReadOnly,
	bookiepb.Status_STATUS_TOO_LARGE:     ErrTooLarge,
	bookiepb.Status_STATUS_BAD_REQUEST:   ErrBadRequest,
	bookiepb.Status_STATUS_IO_ERROR:      ErrIO,
	bookiepb.Status_STATUS_CORRUPT:       ErrCorrupt,
	bookiepb.Status_STATUS_TIMEOUT:       ErrTimeout,
	bookiepb.Status_STATUS_OVERLOADED:    ErrOverloaded,
	bookiepb.Status_STATUS_SHUTTING_DOWN: ErrShuttingDown,
	bookiepb.Status_STATUS_WRONG_BOOKIE:  ErrWrongBookie,
}

// statusErr converts a response status to nil or a *StatusError.
func statusErr(addr string, r *bookiepb.Response) error {
	if r.Status == bookiepb.Status_STATUS_OK {
		return nil
	}
	err, ok := statusErrors[r.Status]
	if !ok {
		err = ErrBadResponse
	}
	return &StatusError{Bookie: addr, Status: r.Status, Message: r.Message, err: err}
}

// IsExplicitNegative reports whether err says for sure that the ledger or
// entry does not exist on that bookie. Only such answers may count toward
// "absent" in recovery.
func IsExplicitNegative(err error) bool {
	return errors.Is(err, ErrNoEntry) || errors.Is(err, ErrNoLedger)
}
