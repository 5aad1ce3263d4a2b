package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(t.Context(), []string{"version"}, nil, &out, &errb); code != ExitOK || !strings.HasPrefix(out.String(), "dlog ") {
		t.Fatalf("version: code %d, out %q", code, out.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main(t.Context(), []string{"version", "--no-such-flag"}, nil, &out, &errb); code != ExitUsage {
		t.Fatalf("bad flag: code %d; want %d (stderr %q)", code, ExitUsage, errb.String())
	}
}
