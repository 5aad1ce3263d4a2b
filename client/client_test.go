package client

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRingDeterministicAndBalanced(t *testing.T) {
	hosts := []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000", "10.0.0.4:7000"}
	a := newRing(hosts, 100)
	b := newRing([]string{hosts[3], hosts[1], hosts[0], hosts[2], hosts[1]}, 100)
	counts := map[string]int{}
	const keys = 20000
	for i := range keys {
		k := fmt.Sprintf("ns/log-%d", i)
		h := a.pick(k, nil)
		if h != b.pick(k, nil) {
			t.Fatalf("key %s: rings built from the same hosts disagree", k)
		}
		counts[h]++
	}
	for _, h := range hosts {
		// 100 virtual nodes keep every host near a quarter.
		if c := counts[h]; c < keys/4*6/10 || c > keys/4*14/10 {
			t.Fatalf("host %s got %d of %d keys: %v", h, c, keys, counts)
		}
	}
}

func TestRingFailoverMovesOnlyTheFailedHostsKeys(t *testing.T) {
	hosts := []string{"a:1", "b:1", "c:1"}
	r := newRing(hosts, 100)
	skipB := func(h string) bool { return h == "b:1" }
	without := newRing([]string{"a:1", "c:1"}, 100)
	for i := range 5000 {
		k := fmt.Sprint("log-", i)
		before, after := r.pick(k, nil), r.pick(k, skipB)
		if before != "b:1" && after != before {
			t.Fatalf("key %s moved from %s to %s though %s is up", k, before, after, before)
		}
		if after == "b:1" {
			t.Fatalf("key %s picked the skipped host", k)
		}
		// Skipping a host is the same as the ring without it: every
		// client fails over to the same proxy.
		if w := without.pick(k, nil); w != after {
			t.Fatalf("key %s: skip gives %s, the ring without the host %s", k, after, w)
		}
	}
	if h := r.pick("x", func(string) bool { return true }); h != "" {
		t.Fatalf("every host skipped: picked %q", h)
	}
	if h := newRing(nil, 10).pick("x", nil); h != "" {
		t.Fatalf("empty ring picked %q", h)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"no servers", func(c *Config) { c.Servers = nil }, false},
		{"bad namespace", func(c *Config) { c.Namespace = "a/b" }, false},
		{"bad protocol", func(c *Config) { c.Protocol = "carrier-pigeon" }, false},
		{"connect", func(c *Config) { c.Protocol = "connect" }, true},
		{"negative blackout", func(c *Config) { c.Blackout = -time.Second }, false},
		{"backoff inverted", func(c *Config) { c.RetryBackoffMin, c.RetryBackoffMax = time.Second, time.Millisecond }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig("127.0.0.1:7000")
			c.mod(&cfg)
			err := cfg.Validate()
			if (err == nil) != c.ok || (err != nil && !errors.Is(err, dlog.ErrInvalidArgument) && !errors.Is(err, dlog.ErrInvalidName)) {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

// TestProducerPool: each producer id is used by one write at a time, and
// the pool is bounded.
func TestProducerPool(t *testing.T) {
	p := newProducerPool("c-x", 2)
	ctx := t.Context()
	a, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.id == b.id {
		t.Fatal("two writes in flight share a producer id")
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = p.get(short)
	cancel()
	if !errors.Is(err, dlog.ErrOverCapacity) || !dlog.IsDefinite(err) {
		t.Fatalf("third producer beyond the bound: %v", err)
	}
	a.next = 5
	p.put(a)
	c, err := p.get(ctx)
	if err != nil || c != a || c.next != 5 {
		t.Fatalf("a returned producer keeps its sequence: %+v %v", c, err)
	}
}

// TestClientWithoutProxies: a client whose proxies are unreachable fails
// calls with an indeterminate unavailable error once its attempts or ctx
// run out, and closes cleanly.
func TestClientWithoutProxies(t *testing.T) {
	cfg := DefaultConfig("127.0.0.1:1")
	cfg.MaxAttempts = 3
	cfg.RetryBackoffMin = time.Millisecond
	cfg.RetryBackoffMax = 5 * time.Millisecond
	c, err := New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Write(t.Context(), "log", dlog.Record{Payload: []byte("x")})
	if !errors.Is(err, dlog.ErrUnavailable) || dlog.IsDefinite(err) {
		t.Fatalf("write with no proxy: %v", err)
	}
	if _, err := c.Write(t.Context(), "bad/name", dlog.Record{}); !errors.Is(err, dlog.ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
	r, err := c.OpenReader(t.Context(), "log", AtStart(), ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(t.Context()); !errors.Is(err, dlog.ErrUnavailable) {
		t.Fatalf("read with no proxy: %v", err)
	}
	r.Close()
}
