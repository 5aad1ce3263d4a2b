package journal

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// must holds the few assertions these tests need; each fails the test at
// once (t.Fatal). (testify is in go.mod but not usable without go.sum
// entries for its own dependencies, which this package may not add.)
var must asserter

type asserter struct{}

func fail(t testing.TB, msg []any, format string, args ...any) {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	if len(msg) > 0 {
		if f, ok := msg[0].(string); ok {
			s = fmt.Sprintf(f, msg[1:]...) + ": " + s
		}
	}
	t.Fatal(s)
}

func (asserter) NoError(t testing.TB, err error, msg ...any) {
	t.Helper()
	if err != nil {
		fail(t, msg, "unexpected error: %v", err)
	}
}

func (asserter) Error(t testing.TB, err error, msg ...any) {
	t.Helper()
	if err == nil {
		fail(t, msg, "want an error, got nil")
	}
}

func (asserter) ErrorIs(t testing.TB, err, target error, msg ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		fail(t, msg, "error %v does not match %v", err, target)
	}
}

func (asserter) ErrorAs(t testing.TB, err error, target any, msg ...any) {
	t.Helper()
	if !errors.As(err, target) {
		fail(t, msg, "error %v is not a %T", err, target)
	}
}

func (asserter) ErrorContains(t testing.TB, err error, sub string, msg ...any) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), sub) {
		fail(t, msg, "error %v does not contain %q", err, sub)
	}
}

func (asserter) Contains(t testing.TB, s, sub string, msg ...any) {
	t.Helper()
	if !strings.Contains(s, sub) {
		fail(t, msg, "%q does not contain %q", s, sub)
	}
}

func (asserter) Equal(t testing.TB, want, got any, msg ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		fail(t, msg, "not equal:\nwant %#v\n got %#v", want, got)
	}
}

func (asserter) True(t testing.TB, v bool, msg ...any) {
	t.Helper()
	if !v {
		fail(t, msg, "want true")
	}
}

func (asserter) False(t testing.TB, v bool, msg ...any) {
	t.Helper()
	if v {
		fail(t, msg, "want false")
	}
}

func (asserter) Len(t testing.TB, v any, n int, msg ...any) {
	t.Helper()
	if l := reflect.ValueOf(v).Len(); l != n {
		fail(t, msg, "length %d, want %d", l, n)
	}
}

func (asserter) Empty(t testing.TB, v any, msg ...any) {
	t.Helper()
	if l := reflect.ValueOf(v).Len(); l != 0 {
		fail(t, msg, "length %d, want empty", l)
	}
}

func (asserter) Zero(t testing.TB, v any, msg ...any) {
	t.Helper()
	if !reflect.ValueOf(v).IsZero() {
		fail(t, msg, "%v is not zero", v)
	}
}

func (asserter) Positive(t testing.TB, v int64, msg ...any) {
	t.Helper()
	if v <= 0 {
		fail(t, msg, "%d is not positive", v)
	}
}

func less[T cmp.Ordered](t testing.TB, a, b T, msg ...any) {
	t.Helper()
	if !(a < b) {
		fail(t, msg, "want %v < %v", a, b)
	}
}

func atLeast[T cmp.Ordered](t testing.TB, a, b T, msg ...any) {
	t.Helper()
	if a < b {
		fail(t, msg, "want %v >= %v", a, b)
	}
}
