package bookieclient

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/dlog-io/dlog/internal/bookie"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// fakeBookie serves the Bookie service with handlers chosen by the test.
type fakeBookie struct {
	bookiepb.UnimplementedBookieServer
	batches func(grpc.BidiStreamingServer[bookiepb.Requests, bookiepb.Responses]) error
}

func (f *fakeBookie) Batches(s grpc.BidiStreamingServer[bookiepb.Requests, bookiepb.Responses]) error {
	if f.batches == nil {
		return f.UnimplementedBookieServer.Batches(s)
	}
	return f.batches(s)
}

func serveFake(t *testing.T, f *fakeBookie) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	bookiepb.RegisterBookieServer(srv, f)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	t.Cleanup(func() {
		srv.Stop()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func addOf(l, e int64, payload []byte) *bookiepb.AddRequest {
	return &bookiepb.AddRequest{Entry: bookiepb.NewEntry(l, e, e-1, payload), MasterKey: []byte("k")}
}

// TestBatchedStream: against a bookie the client uses the batched framing.
func TestBatchedStream(t *testing.T) {
	cfg := bookie.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.ListenAddr, cfg.MinFreeBytes, cfg.GCInterval = "b1", t.TempDir(), "127.0.0.1:0", 0, -1
	cfg.JournalFileSizeBytes = 4 << 20
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	b, err := bookie.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	c := newTestClient(t, DefaultConfig())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.Add(ctx, b.ListenAddr(), addOf(1, 0, []byte("x"))); err != nil {
		t.Fatal(err)
	}
}

// TestPeerWithoutBatches: a peer that does not serve Batches answers
// UNIMPLEMENTED before handling anything: the request fails as
// unavailable (unknown, never an explicit negative), at once.
func TestPeerWithoutBatches(t *testing.T) {
	addr := serveFake(t, &fakeBookie{})
	c := newTestClient(t, DefaultConfig())
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := c.Add(ctx, addr, addOf(1, 0, nil))
	if !errors.Is(err, ErrUnavailable) || IsExplicitNegative(err) {
		t.Fatalf("add to a peer without Batches: got %v, want ErrUnavailable", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the add waited for its deadline")
	}
}

// TestCallersNeverWaitForTheWire: when the bookie stops reading, gRPC flow
// control stops the stream's sender, not the callers: they queue until the
// pending bound and then fail at once with ErrOverloaded.
func TestCallersNeverWaitForTheWire(t *testing.T) {
	release := make(chan struct{})
	addr := serveFake(t, &fakeBookie{batches: func(s grpc.BidiStreamingServer[bookiepb.Requests, bookiepb.Responses]) error {
		if err := s.SendHeader(nil); err != nil {
			return err
		}
		select { // never reads
		case <-release:
		case <-s.Context().Done():
		}
		return nil
	}})
	defer close(release)
	cfg := DefaultConfig()
	cfg.MaxPendingPerBookie = 200
	c := newTestClient(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	payload := make([]byte, 256<<10) // 200 of them overflow every flow-control window
	var (
		wg         sync.WaitGroup
		mu         sync.Mutex
		overloaded int
	)
	for e := range int64(cfg.MaxPendingPerBookie + 50) {
		wg.Add(1)
		c.AddAsync(ctx, addr, addOf(1, e, payload), func(err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrOverloaded):
				overloaded++
			case errors.Is(err, ErrClosed):
			default:
				t.Errorf("add %d: %v", e, err)
			}
		})
	}
	mu.Lock()
	if overloaded != 50 {
		t.Errorf("%d adds refused as overloaded, want 50", overloaded)
	}
	mu.Unlock()
	_ = c.Close() // fails the queued ones
	wg.Wait()
}

// TestFrameCodecRoundTrip: a frame is sent as is, and decodes as the
// Requests message it is the encoding of.
func TestFrameCodecRoundTrip(t *testing.T) {
	var q sendQueue
	var reqs []*bookiepb.Request
	for i := range 3 {
		r := &bookiepb.Request{Txn: uint64(i + 1), Body: &bookiepb.Request_Add{Add: addOf(1, int64(i), []byte("p"))}}
		reqs = append(reqs, r)
		enc, err := bookiepb.AppendRequest(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		q.buf = append(append(q.buf, 0x0a, byte(len(enc))), enc...)
	}
	data, err := frameCodec{}.Marshal(newFrame(q.buf))
	if err != nil {
		t.Fatal(err)
	}
	var got bookiepb.Requests
	if err := protoCodec.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Requests) != 3 || got.Requests[2].Txn != 3 || string(got.Requests[1].GetAdd().GetEntry().GetPayload()) != "p" {
		t.Fatalf("decoded %v", &got)
	}
}
