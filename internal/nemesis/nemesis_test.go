package nemesis

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as the child process of the supervisor tests:
// with NEMESIS_HELPER set it runs a small server instead of the tests.
func TestMain(m *testing.M) {
	switch os.Getenv("NEMESIS_HELPER") {
	case "echo":
		helperEcho()
		return
	case "dial":
		helperDial()
		return
	case "exit":
		fmt.Println("not ready")
		os.Exit(3)
	}
	goleak.VerifyTestMain(m)
}

// helperEcho serves an echo server on NEMESIS_ADDR (or a free port),
// prints the listening line and keeps a file in NEMESIS_DIR.
func helperEcho() {
	addr := os.Getenv("NEMESIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if d := os.Getenv("NEMESIS_DIR"); d != "" {
		_ = os.MkdirAll(d, 0o755)
		_ = os.WriteFile(filepath.Join(d, "data"), []byte("x"), 0o644)
	}
	b, _ := json.Marshal(map[string]string{"event": "listening", "addr": ln.Addr().String()})
	fmt.Println(string(b))
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() { _, _ = io.Copy(c, c) }()
	}
}

// helperDial connects to NEMESIS_ADDR, says hello, prints what came back
// as the ready line and then waits to be killed.
func helperDial() {
	c, err := net.Dial("tcp", os.Getenv("NEMESIS_ADDR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintln(c, "hello")
	line, _ := bufio.NewReader(c).ReadString('\n')
	b, _ := json.Marshal(map[string]string{"event": "listening", "echo": strings.TrimSpace(line)})
	fmt.Println(string(b))
	select {}
}

func newSupervisor(t *testing.T) *Supervisor {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("process signals need a Unix system")
	}
	s, err := NewSupervisor(SupervisorConfig{Binary: os.Args[0], LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func readyAddr(t *testing.T, p *Process) string {
	t.Helper()
	var v struct{ Addr string }
	if err := json.Unmarshal(p.ReadyLine(), &v); err != nil || v.Addr == "" {
		t.Fatalf("ready line %q: %v", p.ReadyLine(), err)
	}
	return v.Addr
}

// echo sends msg on c and reads it back within d; it reports whether the
// echo arrived.
func echo(t *testing.T, c net.Conn, msg string, d time.Duration) bool {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg); err != nil {
		return false
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return err == nil && string(buf) == msg
}

func TestProcessLifecycle(t *testing.T) {
	s := newSupervisor(t)
	ctx := deadline(t, 60*time.Second)
	dir := filepath.Join(t.TempDir(), "data")
	p, err := s.Start(ctx, Spec{Name: "echo", Env: []string{"NEMESIS_HELPER=echo", "NEMESIS_DIR=" + dir}, DataDirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	addr := readyAddr(t, p)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !echo(t, c, "one", 10*time.Second) {
		t.Fatal("no echo")
	}

	// Paused: the kernel still accepts bytes, but nothing answers.
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if !p.Paused() {
		t.Fatal("not paused")
	}
	if echo(t, c, "two", 300*time.Millisecond) {
		t.Fatal("a paused process answered")
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "two" {
		t.Fatalf("after resume: %q %v", buf, err)
	}

	if err := p.Wipe(); !errors.Is(err, ErrRunning) {
		t.Fatalf("wipe while running: %v", err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if p.Running() || p.PID() != 0 {
		t.Fatal("still running after kill")
	}
	if err := p.Kill(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second kill: %v", err)
	}
	if err := p.Wipe(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir survived the wipe: %v", err)
	}
	if err := p.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
		t.Fatalf("restarted helper did not recreate its data: %v", err)
	}
	if starts, kills := p.Stats(); starts != 2 || kills != 1 {
		t.Fatalf("stats: %d starts, %d kills", starts, kills)
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(s.LogPath("echo"))
	if err != nil || strings.Count(string(log), "=== nemesis: start") != 2 {
		t.Fatalf("log %q: %v", log, err)
	}
}

func TestProcessExitsBeforeReady(t *testing.T) {
	s := newSupervisor(t)
	_, err := s.Start(deadline(t, 60*time.Second), Spec{Name: "bad", Env: []string{"NEMESIS_HELPER=exit"}})
	if !errors.Is(err, ErrExitedEarly) || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("got %v", err)
	}
}

func TestProcessDLOGEnvNotInherited(t *testing.T) {
	t.Setenv("DLOG_SECRET_FLAG", "x")
	s := newSupervisor(t)
	p := &Process{sup: s, spec: Spec{Env: []string{"DLOG_BUGS=a"}}}
	env := strings.Join(p.env(), "\n")
	if strings.Contains(env, "DLOG_SECRET_FLAG") || !strings.Contains(env, "DLOG_BUGS=a") {
		t.Fatalf("env: %s", env)
	}
}

func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() { _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func newNet(t *testing.T, cfg NetConfig) *Net {
	n := NewNet(cfg)
	t.Cleanup(n.Close)
	return n
}

func TestNetFaults(t *testing.T) {
	n := newNet(t, NetConfig{})
	f, err := n.AddFront("srv", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	aAddr, err := f.AddrFor("a")
	if err != nil {
		t.Fatal(err)
	}
	bAddr, _ := f.AddrFor("b")
	a, err := net.Dial("tcp", aAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("tcp", bAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !echo(t, a, "a1", 10*time.Second) || !echo(t, b, "b1", 10*time.Second) {
		t.Fatal("no echo through the front")
	}

	// One-way loss on a's link only.
	n.SetLink("a", "srv", Fault{DropTx: true})
	if echo(t, a, "a2", 300*time.Millisecond) {
		t.Fatal("a's request went through a drop")
	}
	if !echo(t, b, "b2", 10*time.Second) {
		t.Fatal("b was hit by a's fault")
	}
	waitCounted(t, "dropped bytes counted", &n.Stats("a", "srv").DroppedTx)
	// Healing closes the connection with the hole; a new one works.
	n.SetLink("a", "srv", Fault{})
	_ = a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := a.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection with a hole survived the heal")
	}
	a2, err := net.Dial("tcp", aAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	if !echo(t, a2, "a3", 10*time.Second) {
		t.Fatal("no echo after heal")
	}

	// Pause holds bytes and delivers them afterwards.
	n.SetLink(AnySource, "srv", Fault{PauseRx: true})
	if echo(t, b, "b3", 300*time.Millisecond) {
		t.Fatal("answer passed a paused link")
	}
	n.HealAll()
	buf := make([]byte, 2)
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "b3" {
		t.Fatalf("held answer: %q %v", buf, err)
	}

	// Delay: the echo takes at least twice the one-way delay.
	n.SetLink("b", "srv", Fault{Delay: 100 * time.Millisecond})
	start := time.Now()
	if !echo(t, b, "b4", 10*time.Second) {
		t.Fatal("no echo with delay")
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("echo took %v under a 100 ms delay each way", took)
	}

	// Refuse cuts live connections and refuses new ones.
	n.SetLink("b", "srv", Fault{Refuse: true})
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := b.Read(make([]byte, 1)); err == nil {
		t.Fatal("refusing link kept its connection")
	}
	n.HealAll()

	// A partition at connect time: silence, then a reset at heal.
	n.SetLink("a", "srv", Blackhole)
	a3, err := net.Dial("tcp", aAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer a3.Close()
	if echo(t, a3, "a4", 300*time.Millisecond) {
		t.Fatal("echo through a black hole")
	}
	n.HealAll()
	_ = a3.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := a3.Read(make([]byte, 1)); err == nil {
		t.Fatal("black-holed connection survived the heal")
	}
}

func TestNetSourceTarget(t *testing.T) {
	n := newNet(t, NetConfig{})
	f, err := n.AddFront("srv", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	other, err := n.AddFront("detour", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := f.AddrFor("a")
	f.SetSourceTarget("a", other.Addr())
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !echo(t, c, "x", 10*time.Second) {
		t.Fatal("no echo via the detour")
	}
	waitCounted(t, "the detour saw bytes from this process", &n.Stats(n.cfg.SelfName, "detour").BytesTx)
}

func TestNetAttributesSharedListener(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("source attribution needs /proc")
	}
	s := newSupervisor(t)
	n := newNet(t, NetConfig{Names: s.PIDNames})
	f, err := n.AddFront("srv", startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	// This process.
	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !echo(t, c, "me", 10*time.Second) {
		t.Fatal("no echo")
	}
	waitCounted(t, "own connection attributed to the harness", &n.Stats("harness", "srv").BytesTx)
	// A child: its requests are dropped by a rule naming it.
	n.SetLink("child", "srv", Fault{DropRx: true})
	ctx := deadline(t, 60*time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := s.Start(ctx, Spec{Name: "child", Env: []string{"NEMESIS_HELPER=dial", "NEMESIS_ADDR=" + f.Addr()}})
		done <- err
	}()
	deadlineAt := time.Now().Add(30 * time.Second)
	for n.Stats("child", "srv").DroppedRx.Load() == 0 {
		if time.Now().After(deadlineAt) {
			t.Fatal("child's answer was not dropped by its link rule")
		}
		time.Sleep(20 * time.Millisecond) // polling a counter, not synchronising
	}
	n.HealAll()
	// The heal closes the child's connection: it reads EOF, reports ready.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitCounted waits (up to 10 s) until counter is non-zero. The proxy counts
// bytes after it forwarded or dropped them, so an echo can come back (or
// time out) before the count.
func waitCounted(t *testing.T, what string, counter *atomic.Int64) {
	t.Helper()
	by := time.Now().Add(10 * time.Second)
	for counter.Load() == 0 {
		if time.Now().After(by) {
			t.Fatalf("not counted: %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling a counter, not synchronising
	}
}
