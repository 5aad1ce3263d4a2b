package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/loopback"
	"github.com/dlog-io/dlog/internal/sandbox"
)

// dlogBin is the dlog binary the tests run as child processes: built
// once per test run (without -race, so children start fast) in TestMain.
var dlogBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dlog-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	dlogBin = filepath.Join(dir, "dlog")
	code := func() int {
		defer os.RemoveAll(dir)
		if out, err := buildBinary(dlogBin); err != nil {
			fmt.Fprintf(os.Stderr, "build dlog: %v\n%s", err, out)
			return 1
		}
		return runWithLeakCheck(m)
	}()
	os.Exit(code)
}

// runWithLeakCheck is goleak.VerifyTestMain without its os.Exit.
func runWithLeakCheck(m *testing.M) int {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			return 1
		}
	}
	return code
}

// buildBinary builds ./cmd/dlog of this module into out.
func buildBinary(out string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/dlog-io/dlog/cmd/dlog")
	return cmd.CombinedOutput()
}

// moduleRoot is the repository root (internal/cli is two levels down).
func moduleRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(filepath.Dir(wd))
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	a, err := loopback.Addrs(1)
	if err != nil {
		t.Fatal(err)
	}
	return a[0]
}

// result is a finished command.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// jsonLines parses stdout as one JSON object per line.
func (r result) jsonLines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimRight(r.stdout, "\n"), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line %q is not a JSON object: %v\n%s", line, err, r)
		}
		out = append(out, m)
	}
	return out
}

// runDlog runs the command line in-process (as main would) with stdin.
func runDlog(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mustDlog runs runDlog and fails the test unless it exits 0.
func mustDlog(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	r := runDlog(t, stdin, args...)
	if r.code != ExitOK {
		t.Fatalf("dlog %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// runBin runs the dlog binary as a child process and waits for it.
func runBin(t testing.TB, ctx context.Context, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, dlogBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run dlog %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// child is a dlog process the test started; Stop and Kill act on its PID
// only.
type child struct {
	t      testing.TB
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line
	stderr *syncBuffer
	done   chan struct{}
	quit   chan struct{} // closed at cleanup: stdout lines are dropped
	err    error
}

// syncBuffer is a bytes.Buffer safe for one writer and readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startChild starts the dlog binary; its stdout lines arrive on lines.
func startChild(t testing.TB, env []string, args ...string) *child {
	t.Helper()
	return startChildIn(t, nil, env, args...)
}

// startChildIn is startChild with stdin.
func startChildIn(t testing.TB, stdin io.Reader, env []string, args ...string) *child {
	t.Helper()
	return startProcess(t, stdin, env, dlogBin, args...)
}

// startProcess starts any program as a child (see startChild).
func startProcess(t testing.TB, stdin io.Reader, env []string, path string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, cmd: cmd, lines: make(chan string, 1<<16), stderr: &syncBuffer{}, done: make(chan struct{}), quit: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			case <-c.quit: // the test is over: drop the rest
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		c.err = cmd.Wait()
		close(c.lines)
	}()
	t.Cleanup(func() {
		close(c.quit)
		c.Kill()
	})
	return c
}

// line waits for the next stdout line (false when stdout ended).
func (c *child) line(ctx context.Context) (string, bool) {
	select {
	case l, ok := <-c.lines:
		return l, ok
	case <-ctx.Done():
		c.t.Fatalf("no output from dlog %v: %v\nstderr:\n%s", c.cmd.Args[1:], ctx.Err(), c.stderr.String())
		return "", false
	}
}

// exitTimeout bounds how long a child may take to exit after a signal.
const exitTimeout = 90 * time.Second

// signal sends sig to the child's PID and waits for it to exit; a child
// still running after exitTimeout fails the test and is killed.
func (c *child) signal(sig syscall.Signal) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(sig)
	t := time.NewTimer(exitTimeout)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		_ = c.cmd.Process.Signal(syscall.SIGQUIT) // dump its goroutines to stderr
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		c.t.Errorf("dlog %v did not exit within %v of %v; stderr:\n%s", c.cmd.Args[1:], exitTimeout, sig, c.stderr.String())
	}
}

// Stop interrupts the child (SIGINT, as Ctrl-C) and waits for it.
func (c *child) Stop() { c.signal(syscall.SIGINT) }

// Kill kills the child (SIGKILL, as kill -9) and waits for it.
func (c *child) Kill() { c.signal(syscall.SIGKILL) }

// exitCode waits for the child and returns its exit code.
func (c *child) exitCode() int {
	<-c.done
	return c.cmd.ProcessState.ExitCode()
}

// sandboxInfo is the ready line of `dlog sandbox -o json`.
type sandboxInfo struct {
	Server   string `json:"server"`
	HTTP     string `json:"http"`
	Metadata string `json:"metadata"`
	Dir      string `json:"dir"`
	Bookies  []struct {
		ID     string `json:"id"`
		Listen string `json:"listen"`
	} `json:"bookies"`
	Restarted bool `json:"restarted"`
}

// startSandboxProcess runs `dlog sandbox` as a child on dir and listen and
// waits for its ready line.
func startSandboxProcess(t testing.TB, dir, listen string, extra ...string) (*child, sandboxInfo) {
	t.Helper()
	args := append([]string{"sandbox", "--dir", dir, "--listen", listen, "--http", "127.0.0.1:0", "-o", "json"}, extra...)
	c := startChild(t, nil, args...)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	line, ok := c.line(ctx)
	if !ok {
		t.Fatalf("dlog sandbox exited before it was ready (%v)\nstderr:\n%s", c.err, c.stderr.String())
	}
	var info sandboxInfo
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		t.Fatalf("sandbox ready line %q: %v", line, err)
	}
	return c, info
}

// testSandbox starts an in-process sandbox for command tests.
func testSandbox(t testing.TB, bookies int) *sandbox.Sandbox {
	t.Helper()
	cfg := sandbox.DefaultConfig(t.TempDir())
	cfg.Bookies = bookies
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Bookie = func(_ int, b *bookie.Config) {
		b.JournalFileSizeBytes = 1 << 20
		b.WriteCacheMaxBytes = 16 << 20
		b.MinFreeBytes = 0
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	sb, err := sandbox.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Close() })
	return sb
}

// waitFor polls cond until it holds or the deadline passes (a condition,
// not a sleep).
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
