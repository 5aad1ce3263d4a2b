package cluster

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func start(t *testing.T, n int, tune ...func(*Config)) *Cluster {
	t.Helper()
	cfg := DefaultConfig(t.TempDir())
	cfg.Bookies = n
	for _, f := range tune {
		f(&cfg)
	}
	c, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

func client(t *testing.T) *bookieclient.Client {
	t.Helper()
	bc, err := bookieclient.New(bookieclient.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bc.Close() })
	return bc
}

func add(entryID int64) *bookiepb.AddRequest {
	return &bookiepb.AddRequest{Entry: bookiepb.NewEntry(7, entryID, entryID-1, []byte("payload")), MasterKey: []byte("k")}
}

func registered(t *testing.T, c *Cluster) []string {
	t.Helper()
	bs, _, err := c.Store().ListBookies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, b := range bs {
		ids = append(ids, b.ID)
	}
	return ids
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestLifecycle: kill removes the registration, restart brings the same id
// back with its data, a wiped disk refuses the old identity, and Replace
// starts a new one.
func TestLifecycle(t *testing.T) {
	tests := []struct {
		name     string
		metadata string
		proxies  bool
	}{
		{"memory-proxied", "memory:", true},
		{"memory-direct", "memory:", false},
		{"etcd-proxied", "embedded:", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := start(t, 2, func(cfg *Config) { cfg.Metadata, cfg.Proxies = tt.metadata, tt.proxies })
			bc := client(t)
			ctx := t.Context()
			if got := registered(t, c); !slices.Equal(got, []string{"bookie-0", "bookie-1"}) {
				t.Fatalf("registered %v", got)
			}
			if err := bc.Add(ctx, c.Addr(1), add(0)); err != nil {
				t.Fatalf("add: %v", err)
			}
			if err := c.Kill(1); err != nil {
				t.Fatal(err)
			}
			if got := registered(t, c); !slices.Equal(got, []string{"bookie-0"}) {
				t.Fatalf("registered after kill: %v", got)
			}
			if err := c.Restart(ctx, 1); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the restarted bookie to answer", func() bool {
				r, err := bc.Read(ctx, c.Addr(1), &bookiepb.ReadRequest{LedgerId: 7, EntryId: 0})
				return err == nil && string(r.Entry.GetPayload()) == "payload"
			})
			if err := c.Kill(1); err != nil {
				t.Fatal(err)
			}
			if err := c.Wipe(1); err != nil {
				t.Fatal(err)
			}
			if err := c.Restart(ctx, 1); !errors.Is(err, bookie.ErrIdentity) {
				t.Fatalf("restart on a wiped disk: %v, want bookie.ErrIdentity", err)
			}
			if err := c.Replace(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if got := c.ID(1); got != "bookie-1-g1" {
				t.Fatalf("replaced id %q", got)
			}
			if got := registered(t, c); !slices.Equal(got, []string{"bookie-0", "bookie-1-g1"}) {
				t.Fatalf("registered after replace: %v", got)
			}
			if i, err := c.AddBookie(ctx); err != nil || i != 2 || !c.Running(2) {
				t.Fatalf("add bookie: %d %v", i, err)
			}
		})
	}
}

// TestProxy: messages pass, are dropped, or are held and released; Cut
// breaks the streams.
func TestProxy(t *testing.T) {
	c := start(t, 1)
	bc := client(t)
	p := c.Proxy(0)
	ctx := t.Context()
	if err := bc.Add(ctx, c.Addr(0), add(0)); err != nil {
		t.Fatalf("pass: %v", err)
	}

	p.OnRequest(func(r *bookiepb.Request) Verdict {
		if r.GetAdd() != nil {
			return Drop
		}
		return Pass
	})
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err := bc.Add(short, c.Addr(0), add(1))
	cancel()
	if !errors.Is(err, bookieclient.ErrTimeout) {
		t.Fatalf("dropped add: %v, want a timeout", err)
	}

	p.OnRequest(func(r *bookiepb.Request) Verdict {
		if r.GetAdd() != nil {
			return Hold
		}
		return Pass
	})
	done := make(chan error, 1)
	bc.AddAsync(ctx, c.Addr(0), add(2), func(err error) { done <- err })
	waitUntil(t, "a held add", func() bool { return p.Held() == 1 })
	p.OnRequest(nil)
	if n := p.Release(); n != 1 {
		t.Fatalf("released %d", n)
	}
	if err := <-done; err != nil {
		t.Fatalf("released add: %v", err)
	}

	p.OnResponse(func(*bookiepb.Response) Verdict { return Hold })
	bc.AddAsync(ctx, c.Addr(0), add(3), func(err error) { done <- err })
	waitUntil(t, "a held answer", func() bool { return p.Held() == 1 })
	p.Cut()
	if err := <-done; !errors.Is(err, bookieclient.ErrUnavailable) {
		t.Fatalf("add on a cut stream: %v, want unavailable", err)
	}
	p.OnResponse(nil)
	if n := p.Release(); n != 0 {
		t.Fatalf("released %d messages of a cut stream", n)
	}
	if err := bc.Add(ctx, c.Addr(0), add(4)); err != nil {
		t.Fatalf("add after a cut: %v", err)
	}
}
