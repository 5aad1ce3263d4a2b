package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/internal/nemesis"
)

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// binary returns the dlog binary the cluster processes run: $DLOG_VERIFY_BIN,
// or ./cmd/dlog built once per test binary (with -tags dlogbugs in the
// sensitivity tests' build). It skips the test where that is impossible.
func binary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the harness signals processes: needs a Unix system")
	}
	if b := os.Getenv("DLOG_VERIFY_BIN"); b != "" {
		return b
	}
	built.once.Do(func() {
		if _, err := exec.LookPath("go"); err != nil {
			built.err = fmt.Errorf("%w: %w", nemesis.ErrNoGo, err)
			return
		}
		built.dir, built.err = os.MkdirTemp("", "dlog-verify-bin-")
		if built.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		built.bin, built.err = nemesis.Build(ctx, nemesis.BuildConfig{Out: filepath.Join(built.dir, "dlog"), Tags: buildTags})
	})
	if errors.Is(built.err, nemesis.ErrNoGo) {
		t.Skipf("cannot build the dlog binary: %v", built.err)
	}
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// runScenario runs one scenario and returns its result; the run's
// directory is kept (and named in the failure) when keep reports true.
func runScenario(t *testing.T, name string, d time.Duration, bugList []string) *RunResult {
	t.Helper()
	sc, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	bin := binary(t)
	dir, err := os.MkdirTemp("", "dlog-verify-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), d+8*time.Minute)
	defer cancel()
	res := Execute(ctx, RunConfig{Scenario: sc, Binary: bin, Dir: dir, Duration: d, Bugs: bugList, Logger: testLogger(t)})
	t.Logf("%s: %s", name, RunLine(res))
	for _, n := range res.Notes {
		t.Logf("%s: note: %s", name, n)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kept %s (history.jsonl, drain.jsonl, result.json, logs/)", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return res
}

// violations names the failed properties of a result.
func violations(r *RunResult) []string {
	var out []string
	if r.Report != nil {
		out = r.Report.Failed()
	}
	for _, m := range r.Metadata {
		out = append(out, "metadata: "+m)
	}
	if !r.Liveness {
		out = append(out, "liveness")
	}
	return out
}

// requirePass fails unless the run completed with no violation and some
// acknowledged appends.
func requirePass(t *testing.T, r *RunResult, minAcked int) {
	t.Helper()
	if r.Err != "" {
		t.Fatalf("run error: %s", r.Err)
	}
	if v := violations(r); len(v) > 0 {
		t.Fatalf("violations: %s", strings.Join(v, "; "))
	}
	if r.Acknowledged() < minAcked {
		t.Fatalf("only %d acknowledged appends (want at least %d)", r.Acknowledged(), minAcked)
	}
}
