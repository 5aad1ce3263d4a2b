package memkv_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/dlog-io/dlog/internal/metadata/kv"
	"github.com/dlog-io/dlog/internal/metadata/kv/kvtest"
	"github.com/dlog-io/dlog/internal/metadata/kv/memkv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	srv, err := memkv.NewServer(memkv.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	kvtest.Run(t, func(*testing.T) kv.KV { return srv.Client() })
}

// TestHistoryWindow: the history keeps whole revisions and a watch before
// it fails with ErrCompacted.
func TestHistoryWindow(t *testing.T) {
	srv, err := memkv.NewServer(memkv.Config{HistoryEvents: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := srv.Client()
	defer c.Close()
	ctx := t.Context()
	var first int64
	for i := range 20 {
		resp, err := c.Txn(ctx, kv.Txn{Then: []kv.Op{kv.Put("/a", nil, 0), kv.Put("/b", nil, 0)}})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = resp.Revision
		}
	}
	r := <-c.Watch(ctx, "/a", "", first)
	if r.Err != kv.ErrCompacted {
		t.Fatalf("watch before the window: %+v", r)
	}
	r = <-c.Watch(ctx, "/", kv.PrefixEnd("/"), srv.Revision())
	if r.Err != nil || len(r.Events) != 2 {
		t.Fatalf("watch of the last revision: %+v", r)
	}
}

// TestSlowWatcher: a watch whose reader stalls is ended with ErrCompacted
// once its queue bound is passed; writers never block.
func TestSlowWatcher(t *testing.T) {
	srv, err := memkv.NewServer(memkv.Config{WatchQueueEvents: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := srv.Client()
	defer c.Close()
	ctx := t.Context()
	w := c.Watch(ctx, "/k", "", 0)
	for range 50 {
		if _, err := c.Txn(ctx, kv.Txn{Then: []kv.Op{kv.Put("/k", nil, 0)}}); err != nil {
			t.Fatal(err)
		}
	}
	var last kv.WatchResponse
	n := 0
	for r := range w {
		n += len(r.Events)
		last = r
	}
	if last.Err != kv.ErrCompacted || n > 50 {
		t.Fatalf("slow watcher: %d events, last %+v", n, last)
	}
}
