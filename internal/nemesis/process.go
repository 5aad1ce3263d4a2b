package nemesis

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Errors of process control.
var (
	// ErrNotRunning: the operation needs a running process.
	ErrNotRunning = errors.New("nemesis: process not running")
	// ErrRunning: the operation needs a stopped process (restart, wipe).
	ErrRunning = errors.New("nemesis: process still running")
	// ErrExitedEarly: the process exited before it reported ready.
	ErrExitedEarly = errors.New("nemesis: process exited before it was ready")
	// ErrClosed: the supervisor was closed.
	ErrClosed = errors.New("nemesis: supervisor closed")
)

// killWait bounds how long a SIGKILLed process may take to be reaped.
const killWait = 30 * time.Second

// SupervisorConfig configures a Supervisor.
type SupervisorConfig struct {
	// Binary is the program every process runs (the dlog binary). Required.
	Binary string
	// LogDir receives one file per process, <name>.log, with its stdout and
	// stderr across every start. Required.
	LogDir string
	// Env is added to every process's environment (after the filtered
	// environment of this process, see Spec.Env).
	Env []string
	// Logger receives one line per start, kill, pause and exit; nil
	// discards.
	Logger *slog.Logger
}

// Supervisor starts the components of a test cluster as OS processes and
// injects process faults into them: SIGKILL, SIGSTOP/SIGCONT, restart on
// the same directories, wiped directories. Every process runs in its own
// process group (signals reach anything it spawned) and, on Linux, dies
// with the supervisor's process (PR_SET_PDEATHSIG), so a crashed harness
// leaves nothing behind. Close kills whatever still runs and waits for it.
//
// Methods are safe for concurrent use; operations on one Process are
// serialised by the caller (the nemesis goroutine of a scenario).
type Supervisor struct {
	cfg SupervisorConfig
	log *slog.Logger
	mu  struct {
		sync.Mutex
		procs  map[string]*Process
		order  []string
		closed bool
	}
}

// NewSupervisor returns a supervisor. It creates cfg.LogDir.
func NewSupervisor(cfg SupervisorConfig) (*Supervisor, error) {
	if cfg.Binary == "" || cfg.LogDir == "" {
		return nil, errors.New("nemesis: supervisor needs a binary and a log directory")
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, err
	}
	s := &Supervisor{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mu.procs = make(map[string]*Process)
	return s, nil
}

// Spec describes one process.
type Spec struct {
	// Name identifies the process ("etcd-0", "bookie-2", "agent-a"); unique
	// per supervisor. It names the log file and is what PIDNames reports.
	Name string
	// Args follow the binary on the command line.
	Args []string
	// Env is added to the process's environment. The supervisor's own
	// DLOG_* variables are not inherited (they would act as flags of the
	// child), except those the caller lists here or in SupervisorConfig.Env.
	Env []string
	// DataDirs are removed by Wipe.
	DataDirs []string
	// Ready reports whether a stdout line says the process serves. Nil: a
	// JSON object with "event":"listening" (what dlog servers print with
	// -o json).
	Ready func(line []byte) bool
}

// Process is one supervised component. It may be started, killed and
// restarted many times; its log file accumulates every run.
type Process struct {
	sup  *Supervisor
	spec Spec
	mu   struct {
		sync.Mutex
		cmd     *exec.Cmd
		pid     int
		running bool
		paused  bool
		exited  chan struct{}
		exitErr error
		ready   []byte
		starts  int
		kills   int
	}
}

// Start starts a new process from spec and waits until it reports ready
// (or ctx ends, or it exits: then it is killed and an error returned, with
// the tail of its log).
func (s *Supervisor) Start(ctx context.Context, spec Spec) (*Process, error) {
	if spec.Name == "" || strings.ContainsAny(spec.Name, `/\`) {
		return nil, fmt.Errorf("nemesis: bad process name %q", spec.Name)
	}
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := s.mu.procs[spec.Name]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("nemesis: process %q exists", spec.Name)
	}
	p := &Process{sup: s, spec: spec}
	s.mu.procs[spec.Name] = p
	s.mu.order = append(s.mu.order, spec.Name)
	s.mu.Unlock()
	if err := p.start(ctx); err != nil {
		return p, err
	}
	return p, nil
}

// Process returns the named process, or nil.
func (s *Supervisor) Process(name string) *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.procs[name]
}

// Processes returns every process in start order.
func (s *Supervisor) Processes() []*Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Process, 0, len(s.mu.order))
	for _, n := range s.mu.order {
		out = append(out, s.mu.procs[n])
	}
	return out
}

// PIDNames maps the pid of every running process to its name.
func (s *Supervisor) PIDNames() map[int]string {
	out := make(map[int]string)
	for _, p := range s.Processes() {
		if pid := p.PID(); pid > 0 {
			out[pid] = p.spec.Name
		}
	}
	return out
}

// LogPath returns the log file of the named process.
func (s *Supervisor) LogPath(name string) string {
	return filepath.Join(s.cfg.LogDir, name+".log")
}

// Close kills every running process (SIGCONT first for paused ones, so
// nothing stays stopped) and waits for them. Later Starts fail.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	s.mu.closed = true
	s.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, 0)
	var emu sync.Mutex
	for _, p := range s.Processes() {
		wg.Go(func() {
			if err := p.Kill(); err != nil && !errors.Is(err, ErrNotRunning) {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Name returns the process's name.
func (p *Process) Name() string { return p.spec.Name }

// Spec returns the process's spec.
func (p *Process) Spec() Spec { return p.spec }

// PID returns the pid of the running process, or 0.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mu.running {
		return 0
	}
	return p.mu.pid
}

// Running reports whether the process runs (paused counts as running).
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.running
}

// Paused reports whether the process is stopped by SIGSTOP.
func (p *Process) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.running && p.mu.paused
}

// ReadyLine returns the stdout line by which the last start reported
// ready.
func (p *Process) ReadyLine() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.ready
}

// Exited returns a channel closed when the current run ends, and the
// run's exit error once it has (nil channel if never started).
func (p *Process) Exited() (<-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.exited, p.mu.exitErr
}

// Stats returns how often the process was started and killed.
func (p *Process) Stats() (starts, kills int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.starts, p.mu.kills
}

func (p *Process) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DLOG_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, p.sup.cfg.Env...)
	return append(env, p.spec.Env...)
}

func (p *Process) start(ctx context.Context) error {
	p.mu.Lock()
	if p.mu.running {
		p.mu.Unlock()
		return ErrRunning
	}
	logPath := p.sup.LogPath(p.spec.Name)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	cmd := exec.Command(p.sup.cfg.Binary, p.spec.Args...)
	cmd.Env = p.env()
	cmd.SysProcAttr = sysProcAttr()
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.mu.Unlock()
		logf.Close()
		return err
	}
	p.mu.starts++
	fmt.Fprintf(logf, "=== nemesis: start #%d of %s at %s: %s %s\n", p.mu.starts, p.spec.Name,
		time.Now().UTC().Format(time.RFC3339Nano), p.sup.cfg.Binary, strings.Join(p.spec.Args, " "))
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		logf.Close()
		return fmt.Errorf("nemesis: start %s: %w", p.spec.Name, err)
	}
	exited := make(chan struct{})
	readyc := make(chan []byte, 1)
	p.mu.cmd, p.mu.pid, p.mu.running, p.mu.paused = cmd, cmd.Process.Pid, true, false
	p.mu.exited, p.mu.exitErr, p.mu.ready = exited, nil, nil
	pid := cmd.Process.Pid
	p.mu.Unlock()
	p.sup.log.Info("process started", "process", p.spec.Name, "pid", pid)

	ready := p.spec.Ready
	if ready == nil {
		ready = ListeningLine
	}
	// The reaper owns cmd: it copies stdout to the log (watching for the
	// ready line), then waits for the exit. It ends when the process does.
	go func() {
		sent := false
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			logf.Write(append(slices.Clip(line), '\n'))
			if !sent && ready(line) {
				readyc <- slices.Clone(line)
				sent = true
			}
		}
		_, _ = io.Copy(logf, stdout) // a line beyond the scanner's limit
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== nemesis: %s (pid %d) exited at %s: %v\n", p.spec.Name, pid,
			time.Now().UTC().Format(time.RFC3339Nano), err)
		logf.Close()
		p.mu.Lock()
		p.mu.running, p.mu.paused, p.mu.exitErr = false, false, err
		p.mu.Unlock()
		close(exited)
		p.sup.log.Info("process exited", "process", p.spec.Name, "pid", pid, "err", err)
	}()

	select {
	case line := <-readyc:
		p.mu.Lock()
		p.mu.ready = line
		p.mu.Unlock()
		return nil
	case <-exited:
		_, err := p.Exited()
		return fmt.Errorf("%w: %s: %v\n%s", ErrExitedEarly, p.spec.Name, err, tail(logPath, 4<<10))
	case <-ctx.Done():
		_ = p.Kill()
		return fmt.Errorf("nemesis: %s not ready: %w\n%s", p.spec.Name, context.Cause(ctx), tail(logPath, 4<<10))
	}
}

// Restart starts the stopped process again with the same spec (same
// directories, same ports) and waits until it is ready.
func (p *Process) Restart(ctx context.Context) error {
	if p.Running() {
		return ErrRunning
	}
	p.sup.mu.Lock()
	closed := p.sup.mu.closed
	p.sup.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return p.start(ctx)
}

// Kill sends SIGKILL to the process group and waits until the process is
// reaped. A paused process is killed too (SIGKILL needs no SIGCONT).
func (p *Process) Kill() error {
	p.mu.Lock()
	if !p.mu.running {
		p.mu.Unlock()
		return ErrNotRunning
	}
	pid, exited := p.mu.pid, p.mu.exited
	p.mu.kills++
	p.mu.Unlock()
	signalGroup(pid, syscall.SIGKILL)
	select {
	case <-exited:
		p.sup.log.Info("process killed", "process", p.spec.Name, "pid", pid)
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("nemesis: %s (pid %d) not reaped %v after SIGKILL", p.spec.Name, pid, killWait)
	}
}

// Stop asks the process to shut down (SIGTERM; SIGCONT first if paused)
// and waits up to grace, then kills it.
func (p *Process) Stop(grace time.Duration) error {
	p.mu.Lock()
	if !p.mu.running {
		p.mu.Unlock()
		return ErrNotRunning
	}
	pid, exited, paused := p.mu.pid, p.mu.exited, p.mu.paused
	p.mu.paused = false
	p.mu.Unlock()
	if paused {
		signalGroup(pid, syscall.SIGCONT)
	}
	signalGroup(pid, syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		return p.Kill()
	}
}

// Quit sends SIGQUIT (a Go process then writes every goroutine's stack
// to its stderr, the log file, and exits) and waits up to grace, then
// kills it. For diagnosing a stuck process before tearing it down.
func (p *Process) Quit(grace time.Duration) error {
	p.mu.Lock()
	if !p.mu.running {
		p.mu.Unlock()
		return ErrNotRunning
	}
	pid, exited, paused := p.mu.pid, p.mu.exited, p.mu.paused
	p.mu.Unlock()
	if paused {
		signalGroup(pid, syscall.SIGCONT)
	}
	signalGroup(pid, syscall.SIGQUIT)
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		return p.Kill()
	}
}

// Pause stops the process with SIGSTOP: it keeps its sockets and state but
// runs no code (a long GC pause, a frozen VM).
func (p *Process) Pause() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mu.running {
		return ErrNotRunning
	}
	signalGroup(p.mu.pid, syscall.SIGSTOP)
	waitStopped(p.mu.pid)
	p.mu.paused = true
	p.sup.log.Info("process paused", "process", p.spec.Name, "pid", p.mu.pid)
	return nil
}

// Resume continues a paused process with SIGCONT.
func (p *Process) Resume() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mu.running {
		return ErrNotRunning
	}
	signalGroup(p.mu.pid, syscall.SIGCONT)
	p.mu.paused = false
	p.sup.log.Info("process resumed", "process", p.spec.Name, "pid", p.mu.pid)
	return nil
}

// Wipe removes the process's data directories (a lost disk). The process
// must be stopped.
func (p *Process) Wipe() error {
	if p.Running() {
		return ErrRunning
	}
	for _, d := range p.spec.DataDirs {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	p.sup.log.Info("process data wiped", "process", p.spec.Name, "dirs", strings.Join(p.spec.DataDirs, ","))
	return nil
}

// ListeningLine reports whether line is a JSON object with
// "event":"listening", the line dlog servers print once they serve.
func ListeningLine(line []byte) bool {
	if len(line) == 0 || line[0] != '{' {
		return false
	}
	var v struct {
		Event string `json:"event"`
	}
	return json.Unmarshal(line, &v) == nil && v.Event == "listening"
}

// tail returns up to n bytes of the end of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(b, off)
	return string(b)
}
