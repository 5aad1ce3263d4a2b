package cli

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// port returns the port of a free loopback address.
func port(t *testing.T) string {
	t.Helper()
	_, p, err := net.SplitHostPort(freeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestThreeBookiesExample runs examples/three-bookies/run.sh as its README
// says: etcd, three bookies and two proxies as separate processes on free
// loopback ports; writes through one proxy and reads through the other;
// kills a bookie by its PID and keeps writing; then stops the script with
// SIGTERM and checks that every process it started is gone.
func TestThreeBookiesExample(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	p1, p2 := port(t), port(t)
	env := []string{
		"DLOG=" + dlogBin, "DIR=" + dir, "HOST=127.0.0.1", "METADATA=",
		"ETCD_CLIENT_PORT=" + port(t), "ETCD_PEER_PORT=" + port(t),
		"BOOKIE_PORTS=" + port(t) + " " + port(t) + " " + port(t),
		"PROXY_PORTS=" + p1 + " " + p2, "PROXY_HTTP_PORTS=" + port(t) + " " + port(t),
		"DLOG_CONFIG=", "DLOG_SERVER=", "DLOG_METADATA=",
	}
	script := filepath.Join(moduleRoot(t), "examples", "three-bookies", "run.sh")
	run := startProcess(t, nil, env, "/bin/sh", script)
	var metadataURL, servers string
	for {
		line, ok := run.line(ctx)
		if !ok {
			t.Fatalf("run.sh exited before it was ready: %v\n%s", run.err, run.stderr.String())
		}
		if _, v, ok := strings.Cut(line, "export DLOG_SERVER="); ok {
			servers = v
		}
		if _, v, ok := strings.Cut(line, "export DLOG_METADATA="); ok {
			metadataURL = v
		}
		if strings.Contains(line, "Ctrl-C stops everything") {
			break
		}
	}
	if servers != "127.0.0.1:"+p1+",127.0.0.1:"+p2 || !strings.HasPrefix(metadataURL, "http://127.0.0.1:") {
		t.Fatalf("run.sh printed servers %q, metadata %q", servers, metadataURL)
	}
	pids := map[string]int{}
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		pid, name, _ := strings.Cut(l, " ")
		n, err := strconv.Atoi(pid)
		if err != nil {
			t.Fatalf("pids line %q", l)
		}
		pids[name] = n
	}
	if len(pids) != 6 {
		t.Fatalf("pids: %v", pids)
	}
	t.Cleanup(func() { // whatever happens, nothing the script started survives
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	bin := func(stdin string, args ...string) result {
		t.Helper()
		r := runBin(t, ctx, stdin, nil, args...)
		if r.code != 0 {
			t.Fatalf("dlog %s: %s", strings.Join(args, " "), r)
		}
		return r
	}
	first, second := "127.0.0.1:"+p1, "127.0.0.1:"+p2
	bin("", "log", "create", "events", "--server", servers)
	bin("one\ntwo\n", "write", "events", "--server", second)
	if r := bin("", "read", "events", "--server", first); r.stdout != "one\ntwo\n" {
		t.Fatalf("read through the other proxy: %q", r.stdout)
	}
	if n := len(bin("", "bookies", "-o", "json", "--server", first).jsonLines(t)); n != 3 {
		t.Fatalf("%d bookies", n)
	}
	if n := len(bin("", "proxies", "-o", "json", "--server", first).jsonLines(t)); n != 2 {
		t.Fatalf("%d proxies", n)
	}

	// A bookie dies (kill -9 by its PID): writes go on with the other two.
	if err := syscall.Kill(pids["bookie-2"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	bin("three\nfour\n", "write", "events", "--server", servers)
	if r := bin("", "read", "events", "--server", servers); r.stdout != "one\ntwo\nthree\nfour\n" {
		t.Fatalf("read after losing a bookie: %q", r.stdout)
	}
	bin("", "admin", "inspect", "events", "--metadata", metadataURL)

	// SIGTERM to the script stops everything it started.
	run.signal(syscall.SIGTERM)
	if code := run.exitCode(); code != 0 {
		t.Fatalf("run.sh exit %d after SIGTERM\n%s", code, run.stderr.String())
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after run.sh stopped: %v", name, pid, err)
		}
	}
}
