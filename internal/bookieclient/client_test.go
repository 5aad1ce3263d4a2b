package bookieclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

var key = []byte("k")

func bookieConfig(t *testing.T) bookie.Config {
	cfg := bookie.DefaultConfig()
	cfg.ID = "b1"
	cfg.Dir = t.TempDir()
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.MinFreeBytes = 0
	cfg.JournalFileSizeBytes = 4 << 20
	cfg.GCInterval = -1
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

func startBookie(t *testing.T, cfg bookie.Config) *bookie.Bookie {
	t.Helper()
	b, err := bookie.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func newClient(t *testing.T) *bookieclient.Client {
	t.Helper()
	c, err := bookieclient.New(bookieclient.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func add(l, e int64) *bookiepb.AddRequest {
	return &bookiepb.AddRequest{Entry: bookiepb.NewEntry(l, e, e-1, fmt.Appendf(nil, "%d:%d", l, e)), MasterKey: key}
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPipelining keeps thousands of adds in flight on one stream.
func TestPipelining(t *testing.T) {
	b := startBookie(t, bookieConfig(t))
	c := newClient(t)
	ctx := withTimeout(t, 60*time.Second)
	n := 5000
	if testing.Short() {
		n = 2000
	}
	var wg sync.WaitGroup
	var failed atomic.Int64
	for e := range int64(n) {
		wg.Add(1)
		c.AddAsync(ctx, b.ListenAddr(), add(int64(e%4), e/4), func(err error) {
			if err != nil {
				failed.Add(1)
				t.Errorf("add %d: %v", e, err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.FailNow()
	}
	for e := range int64(n) {
		r, err := c.Read(ctx, b.ListenAddr(), &bookiepb.ReadRequest{LedgerId: e % 4, EntryId: e / 4})
		if err != nil || string(r.Entry.Payload) != fmt.Sprintf("%d:%d", e%4, e/4) {
			t.Fatalf("read %d: %v %v", e, r, err)
		}
	}
}

// TestAnswersOutOfOrder: requests sent after a long poll on the same
// stream are answered while the poll is still held, and each answer reaches
// its own caller.
func TestAnswersOutOfOrder(t *testing.T) {
	b := startBookie(t, bookieConfig(t))
	c := newClient(t)
	ctx := withTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	if err := c.Add(ctx, addr, add(1, 0)); err != nil {
		t.Fatal(err)
	}
	polled := make(chan *bookiepb.ReadLACResponse, 1)
	go func() {
		r, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 1, LongPoll: true, PreviousLac: -1})
		if err != nil {
			t.Errorf("long poll: %v", err)
		}
		polled <- r
	}()
	waitUntil(t, "the long poll to be held", func() bool { return heldLongPolls(t, b) == 1 })
	// Later requests on other ledgers complete while the poll is held.
	for e := range int64(20) {
		if err := c.Add(ctx, addr, add(2, e)); err != nil {
			t.Fatal(err)
		}
		r, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 2, EntryId: e})
		if err != nil || r.Entry.LedgerId != 2 || r.Entry.EntryId != e {
			t.Fatalf("read 2:%d: %v %v", e, r, err)
		}
	}
	select {
	case r := <-polled:
		t.Fatalf("long poll answered early: %v", r)
	default:
	}
	if err := c.Add(ctx, addr, add(1, 1)); err != nil { // lac 0: wakes the poll
		t.Fatal(err)
	}
	if r := <-polled; r == nil || r.Lac != 0 {
		t.Fatalf("long poll answer %v", r)
	}
}

// heldLongPolls is the number of long polls the bookie holds.
func heldLongPolls(t *testing.T, b *bookie.Bookie) int64 { return b.LongPolls() }

// stallFS blocks journal fsyncs while stalled.
type stallFS struct {
	mu      sync.Mutex
	stalled chan struct{} // nil when not stalled; closed to release
	waiting atomic.Int64
}

func (s *stallFS) stall() {
	s.mu.Lock()
	s.stalled = make(chan struct{})
	s.mu.Unlock()
}

func (s *stallFS) release() {
	s.mu.Lock()
	if s.stalled != nil {
		close(s.stalled)
		s.stalled = nil
	}
	s.mu.Unlock()
}

func (s *stallFS) MaybeError(op errorfs.Op) error {
	if op.Kind != errorfs.OpFileSyncData || !strings.Contains(op.Path, "journal") {
		return nil
	}
	s.mu.Lock()
	ch := s.stalled
	s.mu.Unlock()
	if ch != nil {
		s.waiting.Add(1)
		<-ch
		s.waiting.Add(-1)
	}
	return nil
}

func (s *stallFS) String() string { return "stall" }

// TestPerRequestDeadline: an add stuck behind a stalled journal fsync fails
// with ErrTimeout at its deadline while the stream keeps serving others.
func TestPerRequestDeadline(t *testing.T) {
	stall := &stallFS{}
	cfg := bookieConfig(t)
	cfg.Dir = "/b"
	cfg.FS = errorfs.Wrap(vfs.NewMem(), stall)
	b := startBookie(t, cfg)
	t.Cleanup(stall.release) // runs before the bookie's Close
	c := newClient(t)
	addr := b.ListenAddr()
	if err := c.Add(withTimeout(t, 30*time.Second), addr, add(1, 0)); err != nil {
		t.Fatal(err)
	}
	stall.stall()
	short, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := c.Add(short, addr, add(1, 1))
	if !errors.Is(err, bookieclient.ErrTimeout) {
		t.Fatalf("add behind a stalled fsync: %v, want ErrTimeout", err)
	}
	if bookieclient.IsExplicitNegative(err) {
		t.Fatal("a timeout is not an explicit negative")
	}
	// The same stream still answers reads.
	r, err := c.Read(withTimeout(t, 30*time.Second), addr, &bookiepb.ReadRequest{LedgerId: 1, EntryId: 0})
	if err != nil || r.Entry.EntryId != 0 {
		t.Fatalf("read during the stall: %v %v", r, err)
	}
	stall.release()
}

// proxy forwards TCP connections to target until cut.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(out, in); out.Close() })
		p.wg.Go(func() { _, _ = io.Copy(in, out); in.Close() })
	}
}

// cut closes every connection (the listener keeps accepting).
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) close() {
	p.ln.Close()
	p.cut()
	p.wg.Wait()
}

// TestStreamBreak: when the connection breaks, every pending request fails
// with ErrUnavailable (outcome unknown) and the next request reconnects.
func TestStreamBreak(t *testing.T) {
	b := startBookie(t, bookieConfig(t))
	p := newProxy(t, b.ListenAddr())
	c := newClient(t)
	ctx := withTimeout(t, 30*time.Second)
	if err := c.Add(ctx, p.addr(), add(2, 0)); err != nil {
		t.Fatal(err)
	}
	const polls = 10
	errs := make(chan error, polls)
	for range polls {
		go func() {
			_, err := c.ReadLAC(ctx, p.addr(), &bookiepb.ReadLACRequest{LedgerId: 2, LongPoll: true, PreviousLac: 5})
			errs <- err
		}()
	}
	waitUntil(t, "the long polls to be held", func() bool { return b.LongPolls() == polls })
	p.cut()
	for range polls {
		err := <-errs
		if !errors.Is(err, bookieclient.ErrUnavailable) {
			t.Fatalf("pending request after the break: %v, want ErrUnavailable", err)
		}
	}
	if err := c.Add(ctx, p.addr(), add(2, 1)); err != nil {
		t.Fatalf("add after the break: %v", err)
	}
}

// TestCloseFailsPending: Close fails pending requests with ErrClosed, later
// calls fail with ErrClosed, and no client goroutine survives.
func TestCloseFailsPending(t *testing.T) {
	b := startBookie(t, bookieConfig(t))
	ignore := goleak.IgnoreCurrent()
	c, err := bookieclient.New(bookieclient.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := withTimeout(t, 30*time.Second)
	if err := c.Add(ctx, b.ListenAddr(), add(3, 0)); err != nil {
		t.Fatal(err)
	}
	const polls = 10
	errs := make(chan error, polls)
	for range polls {
		go func() {
			_, err := c.ReadLAC(ctx, b.ListenAddr(), &bookiepb.ReadLACRequest{LedgerId: 3, LongPoll: true, PreviousLac: 5})
			errs <- err
		}()
	}
	waitUntil(t, "the long polls to be held", func() bool { return b.LongPolls() == polls })
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range polls {
		if err := <-errs; !errors.Is(err, bookieclient.ErrClosed) {
			t.Fatalf("pending request at Close: %v, want ErrClosed", err)
		}
	}
	if err := c.Add(ctx, b.ListenAddr(), add(3, 1)); !errors.Is(err, bookieclient.ErrClosed) {
		t.Fatalf("add after Close: %v", err)
	}
	// The bookie notices the stream ended and lets its long polls go.
	waitUntil(t, "the bookie to drop the polls", func() bool { return b.LongPolls() == 0 })
	goleak.VerifyNone(t, ignore)
}

// TestStatusErrors: each status maps to its sentinel; only NO_LEDGER and
// NO_ENTRY are explicit negatives.
func TestStatusErrors(t *testing.T) {
	b := startBookie(t, bookieConfig(t))
	c := newClient(t)
	ctx := withTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	if err := c.Add(ctx, addr, add(4, 0)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		do       func() error
		want     error
		negative bool
	}{
		{"no ledger", func() error {
			_, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 5, EntryId: 0})
			return err
		}, bookieclient.ErrNoLedger, true},
		{"no entry", func() error {
			_, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 4, EntryId: 9})
			return err
		}, bookieclient.ErrNoEntry, true},
		{"unauthorized", func() error {
			return c.Add(ctx, addr, &bookiepb.AddRequest{Entry: bookiepb.NewEntry(4, 1, 0, nil), MasterKey: []byte("x")})
		}, bookieclient.ErrUnauthorized, false},
		{"bad request", func() error {
			return c.Add(ctx, addr, &bookiepb.AddRequest{Entry: bookiepb.NewEntry(4, -1, -1, nil), MasterKey: key})
		}, bookieclient.ErrBadRequest, false},
		{"unreachable bookie", func() error {
			return c.Add(withTimeout(t, 5*time.Second), "127.0.0.1:1", add(4, 1))
		}, bookieclient.ErrUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if !errors.Is(err, tt.want) || bookieclient.IsExplicitNegative(err) != tt.negative {
				t.Fatalf("got %v (explicit negative %v), want %v", err, bookieclient.IsExplicitNegative(err), tt.want)
			}
			var se *bookieclient.StatusError
			if tt.want != bookieclient.ErrUnavailable && !errors.As(err, &se) {
				t.Fatalf("%v is not a *StatusError", err)
			}
		})
	}
}

// TestSilentBookie: a bookie that accepts TCP connections but never
// speaks cannot hold a request past its deadline, and Close does not wait
// for the connection attempt.
func TestSilentBookie(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	defer func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()
	c, err := bookieclient.New(bookieclient.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		err := c.Add(ctx, ln.Addr().String(), add(1, 0))
		cancel()
		if !errors.Is(err, bookieclient.ErrTimeout) {
			t.Fatalf("add to a silent bookie: %v, want ErrTimeout", err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
