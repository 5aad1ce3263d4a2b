package etcdkv_test

import (
	"errors"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/internal/metadata/etcdserver"
	"github.com/dlog-io/dlog/internal/metadata/kv"
	"github.com/dlog-io/dlog/internal/metadata/kv/etcdkv"
	"github.com/dlog-io/dlog/internal/metadata/kv/kvtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	cfg := etcdserver.DefaultConfig(t.TempDir())
	cfg.NoFsync = true
	srv, err := etcdserver.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	kvtest.Run(t, func(t *testing.T) kv.KV {
		c, err := etcdkv.New(etcdkv.DefaultConfig(srv.Endpoints()))
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"request timed out", rpctypes.ErrGRPCTimeout, kv.ErrUnavailable},
		{"leader failed", rpctypes.ErrGRPCTimeoutDueToLeaderFail, kv.ErrUnavailable},
		{"no leader", rpctypes.ErrGRPCNoLeader, kv.ErrUnavailable},
		{"leader changed", rpctypes.ErrGRPCLeaderChanged, kv.ErrUnavailable},
		{"too many requests", rpctypes.ErrGRPCRequestTooManyRequests, kv.ErrUnavailable},
		{"lease not found", rpctypes.ErrGRPCLeaseNotFound, kv.ErrLeaseNotFound},
		{"compacted", rpctypes.ErrGRPCCompacted, kv.ErrCompacted},
		{"duplicate key", rpctypes.ErrGRPCDuplicateKey, kv.ErrInvalid},
		{"too large", rpctypes.ErrGRPCRequestTooLarge, kv.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := etcdkv.Classify(tt.err); !errors.Is(got, tt.want) {
				t.Fatalf("Classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if got := etcdkv.Classify(rpctypes.ErrGRPCNoSpace); errors.Is(got, kv.ErrUnavailable) {
		t.Fatal("database space exceeded must not be retryable")
	}
}
