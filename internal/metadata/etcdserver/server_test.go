package etcdserver_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/internal/metadata/etcdserver"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func client(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	must(t, err)
	return c
}

func TestSingleMemberRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	srv, err := etcdserver.Start(ctx, etcdserver.DefaultConfig(dir))
	must(t, err)
	c := client(t, srv.Endpoints())
	_, err = c.Put(ctx, "k", "v1")
	must(t, err)
	must(t, c.Close())
	srv.Close()
	srv.Close() // idempotent

	srv, err = etcdserver.Start(ctx, etcdserver.DefaultConfig(dir))
	must(t, err)
	defer srv.Close()
	c = client(t, srv.Endpoints())
	defer c.Close()
	resp, err := c.Get(ctx, "k")
	must(t, err)
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v1" {
		t.Fatalf("after restart got %v, want k=v1", resp.Kvs)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*etcdserver.Config)
		ok   bool
	}{
		{"default", func(*etcdserver.Config) {}, true},
		{"no dir", func(c *etcdserver.Config) { c.Dir = "" }, false},
		{"short election", func(c *etcdserver.Config) { c.ElectionMs = 20 }, false},
		{"bad url", func(c *etcdserver.Config) { c.ClientURLs = []string{"http://[::1"} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := etcdserver.DefaultConfig("/tmp/x")
			tt.mod(&cfg)
			if err := cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestThreeMemberCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three members")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cl, err := etcdserver.StartCluster(ctx, t.TempDir(), 3, nil)
	must(t, err)
	defer cl.Close()
	c := client(t, cl.Endpoints())
	defer c.Close()
	_, err = c.Put(ctx, "k", "v")
	must(t, err)

	var leader int
	waitFor(t, "a leader", 30*time.Second, func() bool { leader = cl.Leader(); return leader >= 0 })
	cl.Members[leader].Close()
	// The survivors elect a new leader and keep serving.
	waitFor(t, "a put after leader loss", 30*time.Second, func() bool {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		defer ccancel()
		_, err := c.Put(cctx, "k", "v2")
		return err == nil
	})
	waitFor(t, "a new leader", 30*time.Second, func() bool { l := cl.Leader(); return l >= 0 && l != leader })
}
