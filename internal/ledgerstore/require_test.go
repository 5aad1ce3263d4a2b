package ledgerstore

// A minimal stand-in for testify's require: testify v1.12.1 needs a go.sum
// entry (go.yaml.in/yaml/v3) that the shared go.sum lacks, and go.mod is not
// this package's to change.

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

type requireT struct{}

var require requireT

func msg(args []any) string {
	if len(args) == 0 {
		return ""
	}
	if f, ok := args[0].(string); ok {
		return ": " + fmt.Sprintf(f, args[1:]...)
	}
	return ": " + fmt.Sprint(args...)
}

func (requireT) NoError(t testing.TB, err error, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v%s", err, msg(args))
	}
}

func (requireT) Error(t testing.TB, err error, args ...any) {
	t.Helper()
	if err == nil {
		t.Fatalf("expected an error%s", msg(args))
	}
}

func (requireT) ErrorIs(t testing.TB, err, target error, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v is not %v%s", err, target, msg(args))
	}
}

func (requireT) NotErrorIs(t testing.TB, err, target error, args ...any) {
	t.Helper()
	if errors.Is(err, target) {
		t.Fatalf("error %v must not be %v%s", err, target, msg(args))
	}
}

func equal(a, b any) bool {
	if x, ok := a.([]byte); ok {
		if y, ok := b.([]byte); ok {
			return bytes.Equal(x, y)
		}
	}
	return reflect.DeepEqual(a, b)
}

func (requireT) Equal(t testing.TB, want, got any, args ...any) {
	t.Helper()
	if !equal(want, got) {
		w, g := fmt.Sprint(want), fmt.Sprint(got)
		if len(w) > 200 {
			w = w[:200] + "..."
		}
		if len(g) > 200 {
			g = g[:200] + "..."
		}
		t.Fatalf("not equal:\nwant %s\ngot  %s%s", w, g, msg(args))
	}
}

func (requireT) NotEqual(t testing.TB, a, b any, args ...any) {
	t.Helper()
	if equal(a, b) {
		t.Fatalf("values are equal: %v%s", a, msg(args))
	}
}

func (requireT) True(t testing.TB, v bool, args ...any) {
	t.Helper()
	if !v {
		t.Fatalf("expected true%s", msg(args))
	}
}

func (requireT) False(t testing.TB, v bool, args ...any) {
	t.Helper()
	if v {
		t.Fatalf("expected false%s", msg(args))
	}
}

func (requireT) Nil(t testing.TB, v any, args ...any) {
	t.Helper()
	if v != nil && !reflect.ValueOf(v).IsZero() {
		t.Fatalf("expected nil, got %v%s", v, msg(args))
	}
}

func toFloat(v any) float64 {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	}
	panic(fmt.Sprintf("not a number: %T", v))
}

func (requireT) Greater(t testing.TB, a, b any, args ...any) {
	t.Helper()
	if !(toFloat(a) > toFloat(b)) {
		t.Fatalf("%v is not greater than %v%s", a, b, msg(args))
	}
}

func (requireT) Less(t testing.TB, a, b any, args ...any) {
	t.Helper()
	if !(toFloat(a) < toFloat(b)) {
		t.Fatalf("%v is not less than %v%s", a, b, msg(args))
	}
}

func (requireT) Contains(t testing.TB, list []int64, v int64, args ...any) {
	t.Helper()
	if !slices.Contains(list, v) {
		t.Fatalf("%v does not contain %v%s", list, v, msg(args))
	}
}

func (requireT) NotContains(t testing.TB, list []int64, v int64, args ...any) {
	t.Helper()
	if slices.Contains(list, v) {
		t.Fatalf("%v contains %v%s", list, v, msg(args))
	}
}
