package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"no placement", func(c *Config) { c.Placement = 0 }, false},
		{"region-aware without regions", func(c *Config) { c.Placement, c.MinRegions = PlacementRegionAware, 0 }, false},
		{"no pending adds", func(c *Config) { c.MaxPendingAdds = 0 }, false},
		{"zero add timeout", func(c *Config) { c.AddTimeout = 0 }, false},
		{"negative explicit LAC delay", func(c *Config) { c.ExplicitLACDelay = -1 }, false},
		{"explicit LAC off", func(c *Config) { c.ExplicitLACDelay = 0 }, true},
		{"speculation off", func(c *Config) { c.SpeculativeReadTimeout = 0 }, true},
		{"floor above ceiling", func(c *Config) { c.SpeculativeReadTimeoutMin = time.Second }, false},
		{"no recovery window", func(c *Config) { c.RecoveryWindow = 0 }, false},
		{"no read ahead", func(c *Config) { c.ReadAhead = 0 }, false},
		{"bad bookie client", func(c *Config) { c.BookieClient.MaxPendingPerBookie = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, dlog.ErrInvalidArgument) {
				t.Fatalf("error %v does not match dlog.ErrInvalidArgument", err)
			}
		})
	}
}

func TestLatencyWindow(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		adaptive bool
		samples  []time.Duration
		want     time.Duration
	}{
		{"not adaptive", false, repeat(100, ms), 50 * ms},
		{"too few samples", true, repeat(10, ms), 50 * ms},
		{"fast reads", true, repeat(100, 3*ms), 3 * ms},
		{"floored", true, repeat(100, 100*time.Microsecond), 2 * ms},
		{"capped", true, repeat(100, time.Second), 50 * ms},
		{"p99 of a mix", true, append(repeat(124, ms), repeat(4, 20*ms)...), 20 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newLatencyWindow(50*ms, 2*ms, tt.adaptive)
			for _, d := range tt.samples {
				w.observe(d)
			}
			if got := w.timeout(); got != tt.want {
				t.Fatalf("timeout %v, want %v", got, tt.want)
			}
		})
	}
}

func repeat(n int, d time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestWithFragment(t *testing.T) {
	base := metadata.LedgerMetadata{Fragments: []metadata.Fragment{{FirstEntryID: 0, Bookies: []string{"a", "b", "c"}}}}
	tests := []struct {
		name  string
		md    metadata.LedgerMetadata
		first int64
		want  []metadata.Fragment
	}{
		{"append", base, 5, []metadata.Fragment{frag(0, "a", "b", "c"), frag(5, "a", "d", "c")}},
		{"replace an empty last fragment", base, 0, []metadata.Fragment{frag(0, "a", "d", "c")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := withFragment(tt.md, tt.first, []string{"a", "d", "c"})
			if !sameLedger(got, metadata.LedgerMetadata{Fragments: tt.want}) {
				t.Fatalf("got %+v, want %+v", got.Fragments, tt.want)
			}
			if !sameLedger(tt.md, base) {
				t.Fatal("withFragment modified its input")
			}
			if i := fragmentFor(got, tt.first); got.Fragments[i].FirstEntryID != tt.first {
				t.Fatalf("fragmentFor(%d) = %d", tt.first, i)
			}
		})
	}
}

func frag(first int64, bookies ...string) metadata.Fragment {
	return metadata.Fragment{FirstEntryID: first, Bookies: bookies}
}

func TestErrorTaxonomy(t *testing.T) {
	tests := []struct {
		err      error
		dlogErr  error
		definite bool
	}{
		{fencedError(1, "x"), dlog.ErrFenced, false},
		{ErrNotEnoughBookies, dlog.ErrUnavailable, false},
		{ErrRecoveryIncomplete, dlog.ErrUnavailable, false},
		{ErrInconsistent, dlog.ErrCorrupt, false},
		{ErrOverloaded, dlog.ErrOverCapacity, true},
		{ErrTooLarge, dlog.ErrRecordTooLarge, true},
		{ErrNoLedger, dlog.ErrNotFound, true},
		{ErrClosed, dlog.ErrClosed, true},
		{dlog.Indeterminate(ErrClosed), dlog.ErrClosed, false},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			if !errors.Is(tt.err, tt.dlogErr) {
				t.Fatalf("%v does not match %v", tt.err, tt.dlogErr)
			}
			if dlog.IsDefinite(tt.err) != tt.definite {
				t.Fatalf("IsDefinite(%v) = %v", tt.err, !tt.definite)
			}
		})
	}
}

// TestCreateAndAddRefusals: definite refusals of Create and AddAsync.
func TestCreateAndAddRefusals(t *testing.T) {
	c := startCluster(t, 2)
	cl := newClient(t, c, func(cfg *Config) { cfg.MaxPendingAdds = 1; cfg.MaxEntryBytes = 1024 })
	ctx := deadline(t, 60*time.Second)
	if _, err := cl.Create(ctx, CreateOptions{EnsembleSize: 2, WriteQuorum: 3, AckQuorum: 2}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("create with Qw > E: %v", err)
	}
	if _, err := cl.Create(ctx, DefaultCreateOptions()); !errors.Is(err, ErrNotEnoughBookies) {
		t.Fatalf("create E=3 on two bookies: %v", err)
	}
	w, err := cl.Create(ctx, CreateOptions{EnsembleSize: 2, WriteQuorum: 2, AckQuorum: 2})
	must(t, err, "create")
	if err := w.AddAsync(ctx, make([]byte, 1025), func(int64, error) {}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("add too large: %v", err)
	}
	// One add held at a bookie fills the single slot: the next one waits
	// for admission until its ctx ends.
	for i := range c.Len() {
		c.Proxy(i).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
			if r.GetAdd() != nil {
				return cluster.Hold
			}
			return cluster.Pass
		})
	}
	done := make(chan error, 1)
	must(t, w.AddAsync(ctx, []byte("first"), func(_ int64, err error) { done <- err }), "first add")
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = w.AddAsync(short, []byte("second"), func(int64, error) {})
	cancel()
	if !errors.Is(err, ErrOverloaded) || !dlog.IsDefinite(err) {
		t.Fatalf("add beyond MaxPendingAdds: %v, want a definite ErrOverloaded", err)
	}
	for i := range c.Len() {
		c.Proxy(i).OnRequest(nil)
		c.Proxy(i).Release()
	}
	must(t, <-done, "first add after release")
	_, err = w.Close(ctx)
	must(t, err, "close")
	if err := w.AddAsync(ctx, []byte("late"), func(int64, error) {}); !errors.Is(err, ErrClosed) {
		t.Fatalf("add after close: %v", err)
	}
	if _, err := w.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
