package metadata_test

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/metadata/etcdserver"
	"github.com/dlog-io/dlog/internal/metadata/kv"
	"github.com/dlog-io/dlog/internal/metadata/kv/etcdkv"
	"github.com/dlog-io/dlog/internal/metadata/kv/memkv"
	"github.com/dlog-io/dlog/internal/metadata/metadatatest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func memoryHarness(t *testing.T) metadatatest.Harness {
	srv, err := memkv.NewServer(memkv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return metadatatest.Harness{
		Open: func(t *testing.T, opts metadata.Options) metadata.Store {
			st, err := metadata.New(srv.Client(), opts)
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		KV:      func(*testing.T) kv.KV { return srv.Client() },
		Compact: func(*testing.T) { srv.Compact() },
	}
}

// startEtcd starts a single embedded member for one test. fsync is on
// unless noFsync: tests of restarts keep it.
func startEtcd(t *testing.T, dir string, noFsync bool) *etcdserver.Server {
	t.Helper()
	cfg := etcdserver.DefaultConfig(dir)
	cfg.NoFsync = noFsync
	srv, err := etcdserver.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func etcdHarness(t *testing.T, endpoints []string) metadatatest.Harness {
	url := strings.Join(endpoints, ",")
	return metadatatest.Harness{
		Open: func(t *testing.T, opts metadata.Options) metadata.Store {
			st, err := metadata.Open(t.Context(), url, opts)
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		KV: func(t *testing.T) kv.KV {
			c, err := etcdkv.New(etcdkv.DefaultConfig(endpoints))
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
		Compact: func(t *testing.T) {
			c, err := etcdkv.New(etcdkv.DefaultConfig(endpoints))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(t.Context(), metadatatest.Deadline)
			defer cancel()
			resp, err := c.Client().Get(ctx, "compact-probe")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Client().Compact(ctx, resp.Header.Revision); err != nil {
				t.Fatal(err)
			}
		},
	}
}

func TestConformanceMemory(t *testing.T) {
	metadatatest.Run(t, memoryHarness(t))
}

func TestConformanceEtcd(t *testing.T) {
	srv := startEtcd(t, t.TempDir(), true)
	metadatatest.Run(t, etcdHarness(t, srv.Endpoints()))
}
