package bookie

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

var testKey = []byte("secret")

// testConfig is a small bookie on dir listening on a free loopback port.
func testConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig()
	cfg.ID = "bookie-1"
	cfg.Dir = dir
	cfg.ListenAddr = "127.0.0.1:0"
	cfg.MinFreeBytes = 0
	cfg.JournalFileSizeBytes = 1 << 20
	cfg.WriteCacheMaxBytes = 16 << 20
	cfg.GCInterval = -1
	cfg.Logger = testLogger(t)
	return cfg
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// start opens a bookie that the test's cleanup closes.
func start(t testing.TB, cfg Config) *Bookie {
	t.Helper()
	b, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open bookie: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func newClient(t testing.TB) *bookieclient.Client {
	t.Helper()
	c, err := bookieclient.New(bookieclient.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func payloadOf(l, e int64) []byte { return fmt.Appendf(nil, "ledger %d entry %d payload", l, e) }

func addReq(l, e, lac int64) *bookiepb.AddRequest {
	return &bookiepb.AddRequest{Entry: bookiepb.NewEntry(l, e, lac, payloadOf(l, e)), MasterKey: testKey}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func noErr(t testing.TB, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

func wantErr(t testing.TB, err, target error, what string, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want %v", fmt.Sprintf(what, args...), err, target)
	}
}

// waitUntil polls cond until it holds or d passes (then fails the test).
// It synchronises on a condition, never on a duration.
func waitUntil(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// readEntry reads one entry and checks its bytes.
func readEntry(t testing.TB, c *bookieclient.Client, addr string, l, e int64, want []byte) {
	t.Helper()
	r, err := c.Read(ctxTimeout(t, 10*time.Second), addr, &bookiepb.ReadRequest{LedgerId: l, EntryId: e})
	noErr(t, err, "read %d:%d", l, e)
	if r.Entry == nil || string(r.Entry.Payload) != string(want) {
		t.Fatalf("read %d:%d: got %v, want payload %q", l, e, r.Entry, want)
	}
}

// verifyEntries reads n entries (pipelined, 256 at a time) and calls check
// on each payload; any read error or check error fails the test.
func verifyEntries(t testing.TB, c *bookieclient.Client, addr string, n int, id func(int) (int64, int64), check func(int, []byte) error) {
	t.Helper()
	ctx := ctxTimeout(t, 60*time.Second)
	sem := make(chan struct{}, 256)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
	)
	for i := range n {
		sem <- struct{}{}
		l, e := id(i)
		wg.Add(1)
		c.Go(ctx, addr, &bookiepb.Request{Body: &bookiepb.Request_Read{Read: &bookiepb.ReadRequest{LedgerId: l, EntryId: e}}},
			func(r *bookiepb.Response, err error) {
				defer func() { <-sem; wg.Done() }()
				if err == nil {
					if en := r.GetRead().GetEntry(); en == nil || !en.Verify() || en.LedgerId != l || en.EntryId != e {
						err = fmt.Errorf("bad entry %v", en)
					} else {
						err = check(i, en.Payload)
					}
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("acknowledged entry %d:%d: %w", l, e, err)
					}
					mu.Unlock()
				}
			})
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
