package bookie

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// syncStall blocks the journal's fdatasyncs while stalled.
type syncStall struct {
	mu      sync.Mutex
	stalled chan struct{} // nil when not stalled; closed to release
}

func (s *syncStall) stall() {
	s.mu.Lock()
	s.stalled = make(chan struct{})
	s.mu.Unlock()
}

func (s *syncStall) release() {
	s.mu.Lock()
	if s.stalled != nil {
		close(s.stalled)
		s.stalled = nil
	}
	s.mu.Unlock()
}

func (s *syncStall) MaybeError(op errorfs.Op) error {
	if op.Kind != errorfs.OpFileSyncData {
		return nil
	}
	s.mu.Lock()
	ch := s.stalled
	s.mu.Unlock()
	if ch != nil {
		<-ch
	}
	return nil
}

func (s *syncStall) String() string { return "sync stall" }

// rawStream is a Batches stream without the client library: the test
// chooses every request's timeout_ms and framing.
type rawStream struct {
	s      grpc.BidiStreamingClient[bookiepb.Requests, bookiepb.Responses]
	cancel context.CancelFunc
}

func openRaw(t *testing.T, addr string) *rawStream {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	noErr(t, err, "dial")
	ctx, cancel := context.WithCancel(t.Context())
	s, err := bookiepb.NewBookieClient(cc).Batches(ctx)
	noErr(t, err, "open stream")
	t.Cleanup(func() {
		cancel()
		_ = cc.Close()
	})
	return &rawStream{s: s, cancel: cancel}
}

// send sends reqs as one Requests message.
func (r *rawStream) send(t *testing.T, reqs ...*bookiepb.Request) {
	t.Helper()
	noErr(t, r.s.Send(&bookiepb.Requests{Requests: reqs}), "send")
}

// await receives until every txn in want has been answered, and checks
// each answer's status; an answer to anything else, or a second answer,
// fails the test.
func (r *rawStream) await(t *testing.T, want map[uint64]bookiepb.Status) {
	t.Helper()
	got := make(map[uint64]bool)
	for len(got) < len(want) {
		m, err := r.s.Recv()
		noErr(t, err, "receive")
		for _, resp := range m.Responses {
			status, ok := want[resp.Txn]
			if !ok || got[resp.Txn] {
				t.Fatalf("unexpected answer %v", resp)
			}
			if resp.Status != status {
				t.Fatalf("txn %d answered %v (%s), want %v", resp.Txn, resp.Status, resp.Message, status)
			}
			got[resp.Txn] = true
		}
	}
}

func rawAdd(txn uint64, timeout time.Duration, l, e int64) *bookiepb.Request {
	return &bookiepb.Request{Txn: txn, TimeoutMs: uint32(timeout.Milliseconds()),
		Body: &bookiepb.Request_Add{Add: addReq(l, e, e-1)}}
}

// TestAddDeadlines: adds stuck behind a stalled fsync are answered TIMEOUT
// at their own deadline, whether they come in deadline order on their
// stream (one timer for the stream) or not (a timer of their own), exactly
// once; the others are answered when the fsync returns, and the timed out
// adds turn out durable (TIMEOUT means "unknown", not "failed").
func TestAddDeadlines(t *testing.T) {
	stall := &syncStall{}
	b := start(t, memConfig(t, errorfs.Wrap(vfs.NewMem(), stall)))
	t.Cleanup(stall.release) // before Close
	addr := b.ListenAddr()
	c := newClient(t)
	noErr(t, c.Add(ctxTimeout(t, 30*time.Second), addr, addReq(1, 0, -1)), "first add")

	stall.stall()
	long := time.Minute
	inOrder, outOfOrder := openRaw(t, addr), openRaw(t, addr)
	// Out of order: 2 expires before 1, which was queued first.
	outOfOrder.send(t, rawAdd(1, long, 1, 1), rawAdd(2, 100*time.Millisecond, 2, 0), rawAdd(3, long, 3, 0))
	// In order: 4, then 5, from the stream's one timer.
	inOrder.send(t, rawAdd(4, 150*time.Millisecond, 4, 0), rawAdd(5, 200*time.Millisecond, 5, 0))
	inOrder.await(t, map[uint64]bookiepb.Status{4: statusTimeout, 5: statusTimeout})
	outOfOrder.await(t, map[uint64]bookiepb.Status{2: statusTimeout})

	stall.release()
	outOfOrder.await(t, map[uint64]bookiepb.Status{1: statusOK, 3: statusOK})
	// Appended after all of them, so answered after all were applied.
	noErr(t, c.Add(ctxTimeout(t, 30*time.Second), addr, addReq(1, 2, 1)), "add after the stall")
	for _, id := range [][2]int64{{1, 1}, {2, 0}, {3, 0}, {4, 0}, {5, 0}} {
		readEntry(t, c, addr, id[0], id[1], payloadOf(id[0], id[1]))
	}
}

// TestBatchAnswersEveryMember: every member of one Requests message is
// answered, each by its own status, and a malformed member does not
// spoil the others.
func TestBatchAnswersEveryMember(t *testing.T) {
	b := start(t, testConfig(t, t.TempDir()))
	r := openRaw(t, b.ListenAddr())
	bad := rawAdd(3, time.Minute, 7, 0)
	bad.GetAdd().Entry.Crc32C++
	r.send(t,
		rawAdd(1, time.Minute, 7, 0),
		rawAdd(2, time.Minute, 8, 0),
		bad,
		&bookiepb.Request{Txn: 4, Body: &bookiepb.Request_Info{Info: &bookiepb.InfoRequest{}}},
		&bookiepb.Request{Txn: 5, Body: &bookiepb.Request_Read{Read: &bookiepb.ReadRequest{LedgerId: 99}}},
		&bookiepb.Request{Txn: 6},
	)
	r.await(t, map[uint64]bookiepb.Status{
		1: statusOK, 2: statusOK, 3: statusBadRequest, 4: statusOK, 5: statusNoLedger, 6: statusBadRequest,
	})
}
