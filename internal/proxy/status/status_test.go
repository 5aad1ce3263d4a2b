package status

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"go.uber.org/goleak"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// sentinels is the dlog error taxonomy plus the service tier's own.
var sentinels = []error{
	dlog.ErrInvalidName, dlog.ErrInvalidArgument, dlog.ErrInvalidDLSN, dlog.ErrRecordTooLarge, dlog.ErrTxIDOutOfOrder,
	dlog.ErrLogNotFound, dlog.ErrLogExists, dlog.ErrNamespaceNotFound, dlog.ErrEndOfStream, dlog.ErrOverCapacity,
	dlog.ErrWriterActive, dlog.ErrClosed, dlog.ErrTruncated, dlog.ErrNotFound,
	dlog.ErrFenced, dlog.ErrUnavailable, dlog.ErrCorrupt, dlog.ErrIndeterminate,
	context.DeadlineExceeded, context.Canceled,
	ErrStreamUnavailable, ErrSequenceTooOld,
}

// wire sends err through the Connect error encoding (binary details, as a
// client receives them).
func wire(t *testing.T, err error) error {
	t.Helper()
	ce := ToConnect(err)
	var c *connect.Error
	if !errors.As(ce, &c) {
		t.Fatalf("ToConnect(%v) = %T", err, ce)
	}
	out := connect.NewWireError(c.Code(), errors.New(c.Message()))
	for _, d := range c.Details() {
		nd, derr := connect.NewErrorDetail(mustValue(t, d))
		if derr != nil {
			t.Fatal(derr)
		}
		out.AddDetail(nd)
	}
	return FromConnect(out, "ns/log")
}

func mustValue(t *testing.T, d *connect.ErrorDetail) *dlogpb.ErrorDetail {
	v, err := d.Value()
	if err != nil {
		t.Fatal(err)
	}
	return v.(*dlogpb.ErrorDetail)
}

// TestRoundTrip: every error of the taxonomy, as is, wrapped, and made
// indeterminate, comes back from the wire matching the same sentinel and
// with the same definiteness.
func TestRoundTrip(t *testing.T) {
	for _, s := range sentinels {
		cases := map[string]error{
			"bare":          s,
			"wrapped":       fmt.Errorf("log a/b: write: %w", s),
			"indeterminate": dlog.Indeterminate(fmt.Errorf("after sending: %w", s)),
		}
		for name, err := range cases {
			t.Run(s.Error()+"/"+name, func(t *testing.T) {
				got := wire(t, err)
				if !errors.Is(got, s) {
					t.Fatalf("%v came back as %v, which does not match %v", err, got, s)
				}
				if dlog.IsDefinite(got) != dlog.IsDefinite(err) {
					t.Fatalf("IsDefinite: sent %v, got %v (%v)", dlog.IsDefinite(err), dlog.IsDefinite(got), got)
				}
				if got.Error() != err.Error() {
					t.Fatalf("message %q, sent %q", got.Error(), err.Error())
				}
				var e *Error
				if !errors.As(got, &e) || e.Code != Code(err) {
					t.Fatalf("code of %v: %v, want %v", got, e, Code(err))
				}
			})
		}
	}
}

func TestRedirectRoundTrip(t *testing.T) {
	err := fmt.Errorf("acquire: %w", &dlog.OwnedError{Log: "ns/log", OwnerID: "proxy-1", Owner: "10.0.0.1:7000"})
	got := wire(t, err)
	var owned *dlog.OwnedError
	if !errors.As(got, &owned) || owned.Owner != "10.0.0.1:7000" || owned.Log != "ns/log" {
		t.Fatalf("redirect came back as %v (%+v)", got, owned)
	}
	if !dlog.IsDefinite(got) {
		t.Fatal("a redirect is definite")
	}
	if Code(err) != dlogpb.Code_CODE_REDIRECT {
		t.Fatalf("code %v", Code(err))
	}
	// A delete refused because of an owner keeps both matches: the owner
	// decides (redirect).
	both := fmt.Errorf("%w: %w", dlog.ErrWriterActive, &dlog.OwnedError{Owner: "h:1"})
	if Code(both) != dlogpb.Code_CODE_REDIRECT {
		t.Fatalf("code of %v: %v", both, Code(both))
	}
}

func TestUnknownErrorsAreIndeterminate(t *testing.T) {
	got := wire(t, errors.New("something odd"))
	if dlog.IsDefinite(got) || !errors.Is(got, dlog.ErrIndeterminate) || Code(got) != dlogpb.Code_CODE_INTERNAL {
		t.Fatalf("unknown error came back as %v (definite %v)", got, dlog.IsDefinite(got))
	}
}

// TestFrameworkErrors: errors without a detail (from the transport or
// the RPC framework) are classified safely.
func TestFrameworkErrors(t *testing.T) {
	cases := []struct {
		name      string
		err       error
		match     error
		definite  bool
		transport bool
	}{
		{"connection refused", connect.NewError(connect.CodeUnavailable, errors.New("dial tcp: connection refused")), dlog.ErrUnavailable, false, true},
		{"message too large", connect.NewWireError(connect.CodeResourceExhausted, errors.New("message size 20000000 is larger than configured max")), dlog.ErrRecordTooLarge, true, false},
		{"malformed", connect.NewWireError(connect.CodeInvalidArgument, errors.New("unmarshal")), dlog.ErrInvalidArgument, true, false},
		{"deadline", connect.NewError(connect.CodeDeadlineExceeded, context.DeadlineExceeded), context.DeadlineExceeded, false, false},
		{"internal", connect.NewWireError(connect.CodeInternal, errors.New("boom")), dlog.ErrIndeterminate, false, false},
		{"not connect", errors.New("plain"), dlog.ErrIndeterminate, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := FromConnect(c.err, "")
			if !errors.Is(got, c.match) || dlog.IsDefinite(got) != c.definite || IsTransport(got) != c.transport {
				t.Fatalf("%v: is %v: %v, definite %v, transport %v", got, c.match, errors.Is(got, c.match), dlog.IsDefinite(got), IsTransport(got))
			}
		})
	}
}

func TestTableReasonsUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Reasons() {
		if seen[r] {
			t.Fatalf("reason %q twice", r)
		}
		seen[r] = true
		if _, ok := CodeOfReason(r); !ok {
			t.Fatalf("reason %q has no code", r)
		}
	}
}

// TestDetailOfForwardedError: an error that came from another proxy keeps
// its classification when passed on.
func TestDetailOfForwardedError(t *testing.T) {
	got := wire(t, fmt.Errorf("%w: x", dlog.ErrTruncated))
	d := Detail(fmt.Errorf("forwarded: %w", got))
	if d.Code != dlogpb.Code_CODE_TRUNCATED || d.Reason != "truncated" || !d.Definite {
		t.Fatalf("detail %v", d)
	}
}
