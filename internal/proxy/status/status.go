// Package status is the one table that maps dlog errors to the service
// API's status codes and back. The proxy turns every error it returns into
// a Connect error carrying a dlogpb.ErrorDetail (ToConnect, Detail); the Go
// client turns it back into an error that matches the same dlog sentinel
// with errors.Is and agrees with dlog.IsDefinite (FromConnect, FromDetail).
//
// Every row of the table pairs a sentinel with a Code (the class that
// drives what a client does: redirect, try another proxy, retry only if
// idempotent, give up) and a reason (the exact condition, so that
// dlog.ErrLogNotFound and dlog.ErrNamespaceNotFound, both CODE_NOT_FOUND,
// stay apart). The definite flag travels as computed by dlog.IsDefinite on
// the server, so an error made indeterminate with dlog.Indeterminate stays
// indeterminate on the client.
//
// The package has no state and no goroutines; it imports only the root
// dlog package, the generated API and connect, so the public client can
// use it.
package status

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
)

// kindError is a sentinel that also matches a dlog-wide one.
type kindError struct {
	msg  string
	base error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.base }

// Errors of the service tier that have no dlog sentinel of their own.
var (
	// ErrStreamUnavailable: this proxy does not take the log now (draining,
	// probation after repeated errors, too many logs, shutting down).
	// Nothing was done: ask another proxy. It matches dlog.ErrOverCapacity
	// (definite).
	ErrStreamUnavailable error = &kindError{"dlog: proxy does not take this log now; try another proxy", dlog.ErrOverCapacity}
	// ErrSequenceTooOld: an idempotent write whose sequence is at or below
	// the last one known for its producer, but whose record the proxy does
	// not remember (outside the dedup window, or skipped by a producer that
	// sent sequences out of order). Nothing was written by this call. It
	// matches dlog.ErrInvalidArgument (definite).
	ErrSequenceTooOld error = &kindError{"dlog: idempotent write sequence is older than the proxy remembers", dlog.ErrInvalidArgument}
)

// row is one line of the status table.
type row struct {
	err    error // matched with errors.Is; nil for the OwnedError row
	code   dlogpb.Code
	reason string
	wire   connect.Code
	// rebuild is the error a client gets back (defaults to err).
	rebuild func(msg string) error
}

// Reasons of rows without a sentinel of their own.
const (
	reasonOwned    = "owned"
	reasonInternal = "internal"
)

// table is ordered: the first row whose sentinel the error matches wins,
// so specific errors come before the general ones they also match.
var table = []row{
	{err: ErrStreamUnavailable, code: dlogpb.Code_CODE_STREAM_UNAVAILABLE, reason: "stream-unavailable", wire: connect.CodeUnavailable},
	{err: ErrSequenceTooOld, code: dlogpb.Code_CODE_SEQUENCE_TOO_OLD, reason: "sequence-too-old", wire: connect.CodeFailedPrecondition},
	{code: dlogpb.Code_CODE_REDIRECT, reason: reasonOwned, wire: connect.CodeFailedPrecondition},
	{err: dlog.ErrFenced, code: dlogpb.Code_CODE_FENCED, reason: "fenced", wire: connect.CodeAborted},
	{err: dlog.ErrCorrupt, code: dlogpb.Code_CODE_INTERNAL, reason: "corrupt", wire: connect.CodeDataLoss},
	{err: dlog.ErrInvalidName, code: dlogpb.Code_CODE_INVALID_ARGUMENT, reason: "invalid-name", wire: connect.CodeInvalidArgument},
	{err: dlog.ErrInvalidDLSN, code: dlogpb.Code_CODE_INVALID_ARGUMENT, reason: "invalid-dlsn", wire: connect.CodeInvalidArgument,
		rebuild: func(msg string) error { return &multiError{msg, []error{dlog.ErrInvalidArgument, dlog.ErrInvalidDLSN}} }},
	{err: dlog.ErrRecordTooLarge, code: dlogpb.Code_CODE_TOO_LARGE, reason: "record-too-large", wire: connect.CodeInvalidArgument},
	{err: dlog.ErrTxIDOutOfOrder, code: dlogpb.Code_CODE_TXID_OUT_OF_ORDER, reason: "txid-out-of-order", wire: connect.CodeFailedPrecondition},
	{err: dlog.ErrLogNotFound, code: dlogpb.Code_CODE_NOT_FOUND, reason: "log-not-found", wire: connect.CodeNotFound},
	{err: dlog.ErrNamespaceNotFound, code: dlogpb.Code_CODE_NOT_FOUND, reason: "namespace-not-found", wire: connect.CodeNotFound},
	{err: dlog.ErrNotFound, code: dlogpb.Code_CODE_NOT_FOUND, reason: "not-found", wire: connect.CodeNotFound},
	{err: dlog.ErrLogExists, code: dlogpb.Code_CODE_ALREADY_EXISTS, reason: "log-exists", wire: connect.CodeAlreadyExists},
	{err: dlog.ErrNamespaceExists, code: dlogpb.Code_CODE_ALREADY_EXISTS, reason: "namespace-exists", wire: connect.CodeAlreadyExists},
	{err: dlog.ErrNamespaceNotEmpty, code: dlogpb.Code_CODE_NOT_EMPTY, reason: "namespace-not-empty", wire: connect.CodeFailedPrecondition},
	{err: dlog.ErrEndOfStream, code: dlogpb.Code_CODE_END_OF_STREAM, reason: "end-of-stream", wire: connect.CodeOutOfRange},
	{err: dlog.ErrTruncated, code: dlogpb.Code_CODE_TRUNCATED, reason: "truncated", wire: connect.CodeOutOfRange},
	{err: dlog.ErrWriterActive, code: dlogpb.Code_CODE_WRITER_ACTIVE, reason: "writer-active", wire: connect.CodeFailedPrecondition},
	{err: dlog.ErrOverCapacity, code: dlogpb.Code_CODE_OVER_CAPACITY, reason: "over-capacity", wire: connect.CodeResourceExhausted},
	{err: dlog.ErrClosed, code: dlogpb.Code_CODE_STREAM_UNAVAILABLE, reason: "closed", wire: connect.CodeUnavailable},
	{err: dlog.ErrInvalidArgument, code: dlogpb.Code_CODE_INVALID_ARGUMENT, reason: "invalid-argument", wire: connect.CodeInvalidArgument},
	{err: dlog.ErrUnavailable, code: dlogpb.Code_CODE_UNAVAILABLE, reason: "unavailable", wire: connect.CodeUnavailable},
	{err: context.DeadlineExceeded, code: dlogpb.Code_CODE_TIMEOUT, reason: "deadline-exceeded", wire: connect.CodeDeadlineExceeded},
	{err: context.Canceled, code: dlogpb.Code_CODE_TIMEOUT, reason: "canceled", wire: connect.CodeCanceled},
	{err: dlog.ErrIndeterminate, code: dlogpb.Code_CODE_INTERNAL, reason: "indeterminate", wire: connect.CodeInternal},
}

var internalRow = row{code: dlogpb.Code_CODE_INTERNAL, reason: reasonInternal, wire: connect.CodeInternal}

func lookup(err error) row {
	for _, r := range table {
		if r.err == nil {
			var owned *dlog.OwnedError
			if errors.As(err, &owned) {
				return r
			}
			continue
		}
		if errors.Is(err, r.err) {
			return r
		}
	}
	return internalRow
}

func byReason(reason string) (row, bool) {
	for _, r := range table {
		if r.reason == reason {
			return r, true
		}
	}
	return internalRow, reason == reasonInternal
}

// Code returns the API code of err (CODE_OK for nil).
func Code(err error) dlogpb.Code {
	if err == nil {
		return dlogpb.Code_CODE_OK
	}
	return lookup(err).code
}

// Detail describes err for the wire: its code, reason, whether it is
// definite, the owner's address for a redirect, and its message. Nil for
// a nil error.
func Detail(err error) *dlogpb.ErrorDetail {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		var ce *connect.Error
		if errors.As(err, &ce) && !isOurs(ce) {
			// The RPC framework's own error (a malformed or oversized
			// message on a stream, a client gone): classified as the
			// client would classify it.
			e, _ = FromConnect(ce, "").(*Error)
		}
	}
	if e != nil {
		// Classified already (it came from the wire): keep that.
		return &dlogpb.ErrorDetail{Code: e.Code, Reason: e.Reason, Definite: e.Definite, Location: e.Location, Message: err.Error()}
	}
	r := lookup(err)
	d := &dlogpb.ErrorDetail{Code: r.code, Reason: r.reason, Definite: dlog.IsDefinite(err), Message: err.Error()}
	var owned *dlog.OwnedError
	if r.code == dlogpb.Code_CODE_REDIRECT && errors.As(err, &owned) {
		d.Location = owned.Owner
	}
	return d
}

// ToConnect turns err into a Connect error with its ErrorDetail attached
// (nil for nil). Connect and gRPC clients see the wire code; the detail
// is what the Go client and JSON users read. The framework's own errors
// keep their wire code.
func ToConnect(err error) error {
	if err == nil {
		return nil
	}
	d := Detail(err)
	wire := internalRow.wire
	if r, ok := byReason(d.Reason); ok {
		wire = r.wire
	}
	var ce *connect.Error
	if errors.As(err, &ce) && !isOurs(ce) {
		wire = ce.Code()
	}
	out := connect.NewError(wire, errors.New(d.Message))
	if det, derr := connect.NewErrorDetail(d); derr == nil {
		out.AddDetail(det)
	}
	return out
}

func isOurs(ce *connect.Error) bool {
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if _, ok := v.(*dlogpb.ErrorDetail); ok {
				return true
			}
		}
	}
	return false
}

// Error is an error that crossed the wire: the server's classification
// and message. It unwraps to the dlog sentinel of its reason (wrapped
// with dlog.Indeterminate when the server said the outcome is unknown),
// so errors.Is, errors.As(*dlog.OwnedError) and dlog.IsDefinite work as
// on the server.
type Error struct {
	Code     dlogpb.Code
	Reason   string
	Definite bool
	// Location is the owner's address of a redirect.
	Location string
	// Transport is set for failures to reach the server at all (no answer
	// from it): the client may exclude the host for a while.
	Transport bool
	msg       string
	err       error
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.err }

// multiError matches several sentinels.
type multiError struct {
	msg  string
	errs []error
}

func (e *multiError) Error() string   { return e.msg }
func (e *multiError) Unwrap() []error { return e.errs }

// FromDetail rebuilds the error a detail describes; log names the log of
// a redirect (for dlog.OwnedError). Nil for a nil detail or CODE_OK.
func FromDetail(d *dlogpb.ErrorDetail, log string) error {
	if d == nil || d.Code == dlogpb.Code_CODE_OK {
		return nil
	}
	msg := d.Message
	if msg == "" {
		msg = "dlog: " + d.Code.String()
	}
	r, ok := byReason(d.Reason)
	if !ok {
		// A reason this client does not know (a newer server): fall back
		// to the code's first row.
		for _, cand := range table {
			if cand.code == d.Code {
				r, ok = cand, true
				break
			}
		}
	}
	var base error
	switch {
	case r.code == dlogpb.Code_CODE_REDIRECT:
		base = &dlog.OwnedError{Log: log, Owner: d.Location}
	case r.rebuild != nil:
		base = r.rebuild(msg)
	case r.err != nil:
		base = r.err
	default:
		base = dlog.ErrIndeterminate
	}
	if !d.Definite && dlog.IsDefinite(base) {
		base = dlog.Indeterminate(base)
	}
	return &Error{Code: d.Code, Reason: r.reason, Definite: d.Definite, Location: d.Location, msg: msg, err: base}
}

// FromConnect maps an error of a Connect call back to the dlog taxonomy.
// Errors with an ErrorDetail become what FromDetail says. Others come from
// the transport or the RPC framework: "unavailable" without an answer
// (connection refused, reset) is marked Transport and indeterminate; a
// message over the size limit is dlog.ErrRecordTooLarge (definite: it was
// refused before it was handled); a malformed request is
// dlog.ErrInvalidArgument; deadlines and cancellation wrap ctx's errors;
// the rest is indeterminate. log names the log of the call.
func FromConnect(err error, log string) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if !errors.As(err, &ce) {
		if dlog.IsDefinite(err) {
			return err
		}
		return dlog.Indeterminate(err)
	}
	for _, det := range ce.Details() {
		v, derr := det.Value()
		if derr != nil {
			continue
		}
		if d, ok := v.(*dlogpb.ErrorDetail); ok {
			return FromDetail(d, log)
		}
	}
	msg := ce.Error()
	mk := func(code dlogpb.Code, reason string, definite bool, base error) error {
		if !definite {
			base = dlog.Indeterminate(base)
		}
		return &Error{Code: code, Reason: reason, Definite: definite, msg: msg, err: fmt.Errorf("%s: %w", msg, base)}
	}
	switch ce.Code() {
	case connect.CodeUnavailable:
		// Our own answers always carry a detail: a bare "unavailable" is the
		// transport's (connection refused or reset) or an intermediary's.
		e := mk(dlogpb.Code_CODE_UNAVAILABLE, "unavailable", false, dlog.ErrUnavailable).(*Error)
		e.Transport = true
		return e
	case connect.CodeResourceExhausted:
		return mk(dlogpb.Code_CODE_TOO_LARGE, "record-too-large", true, dlog.ErrRecordTooLarge)
	case connect.CodeInvalidArgument, connect.CodeUnimplemented:
		if connect.IsWireError(ce) {
			return mk(dlogpb.Code_CODE_INVALID_ARGUMENT, "invalid-argument", true, dlog.ErrInvalidArgument)
		}
	case connect.CodeDeadlineExceeded:
		return mk(dlogpb.Code_CODE_TIMEOUT, "deadline-exceeded", false, context.DeadlineExceeded)
	case connect.CodeCanceled:
		return mk(dlogpb.Code_CODE_TIMEOUT, "canceled", false, context.Canceled)
	}
	e := mk(dlogpb.Code_CODE_INTERNAL, reasonInternal, false, dlog.ErrIndeterminate).(*Error)
	e.Transport = !connect.IsWireError(ce)
	return e
}

// IsTransport reports whether err is a failure to get any answer from the
// server (see Error.Transport).
func IsTransport(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Transport
}

// Reasons lists every reason of the table, in table order (for
// documentation and tests).
func Reasons() []string {
	out := make([]string, 0, len(table)+1)
	for _, r := range table {
		out = append(out, r.reason)
	}
	return append(out, reasonInternal)
}

// CodeOfReason returns the code of a reason.
func CodeOfReason(reason string) (dlogpb.Code, bool) {
	r, ok := byReason(reason)
	return r.code, ok
}
