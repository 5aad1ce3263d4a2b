package bookie

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

func TestAddReadRoundTrip(t *testing.T) {
	b := start(t, testConfig(t, t.TempDir()))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	for e := range int64(10) {
		noErr(t, c.Add(ctx, addr, addReq(7, e, e-1)), "add 7:%d", e)
	}
	for e := range int64(10) {
		readEntry(t, c, addr, 7, e, payloadOf(7, e))
	}
	// -1 reads the last entry; its LAC is the highest piggybacked one.
	r, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 7, EntryId: -1})
	noErr(t, err, "read last")
	if r.Entry == nil || r.Entry.EntryId != 9 || r.Lac != 8 || r.Fenced {
		t.Fatalf("read last: %v", r)
	}
	// Re-adding the same entry is idempotent.
	noErr(t, c.Add(ctx, addr, addReq(7, 3, 2)), "re-add")
	readEntry(t, c, addr, 7, 3, payloadOf(7, 3))
}

func TestNoLedgerVersusNoEntry(t *testing.T) {
	b := start(t, testConfig(t, t.TempDir()))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	noErr(t, c.Add(ctx, addr, addReq(1, 0, -1)), "add")
	tests := []struct {
		name      string
		ledger, e int64
		want      error
	}{
		{"unknown ledger", 2, 0, bookieclient.ErrNoLedger},
		{"unknown ledger, last entry", 2, -1, bookieclient.ErrNoLedger},
		{"known ledger, missing entry", 1, 5, bookieclient.ErrNoEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: tt.ledger, EntryId: tt.e})
			wantErr(t, err, tt.want, "read %d:%d", tt.ledger, tt.e)
			if !bookieclient.IsExplicitNegative(err) {
				t.Fatalf("%v is not an explicit negative", err)
			}
		})
	}
}

func TestFencing(t *testing.T) {
	b := start(t, testConfig(t, t.TempDir()))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	for e := range int64(3) {
		noErr(t, c.Add(ctx, addr, addReq(5, e, e-1)), "add")
	}
	r, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 5, EntryId: -1, Fence: true, MasterKey: testKey})
	noErr(t, err, "fence")
	if !r.Fenced || r.Entry == nil || r.Entry.EntryId != 2 || r.Lac != 1 {
		t.Fatalf("fence answer: %v", r)
	}
	wantErr(t, c.Add(ctx, addr, addReq(5, 3, 2)), bookieclient.ErrFenced, "normal add after fence")
	rec := addReq(5, 3, 2)
	rec.Recovery = true
	noErr(t, c.Add(ctx, addr, rec), "recovery add after fence")
	readEntry(t, c, addr, 5, 3, payloadOf(5, 3))

	t.Run("unknown ledger", func(t *testing.T) {
		r, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 99, EntryId: -1, Fence: true, MasterKey: testKey})
		noErr(t, err, "fence unknown")
		if !r.Fenced || r.Entry != nil || r.Lac != -1 {
			t.Fatalf("fence unknown ledger: %v", r)
		}
		// A late add from the old writer is refused.
		wantErr(t, c.Add(ctx, addr, addReq(99, 0, -1)), bookieclient.ErrFenced, "late add")
	})
	t.Run("wrong key", func(t *testing.T) {
		_, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 5, EntryId: -1, Fence: true, MasterKey: []byte("other")})
		wantErr(t, err, bookieclient.ErrUnauthorized, "fence with the wrong key")
	})
}

// TestFenceIncludesEarlierAdds: adds racing with a fence are either
// refused (FENCED) or included in the fence's answer: never acknowledged
// beyond the last entry the fence reported.
func TestFenceIncludesEarlierAdds(t *testing.T) {
	b := start(t, testConfig(t, t.TempDir()))
	c := newClient(t)
	ctx := ctxTimeout(t, 60*time.Second)
	addr := b.ListenAddr()
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	for round := range rounds {
		l := int64(1000 + round)
		const n = 200
		errs := make([]error, n)
		var wg sync.WaitGroup
		fenced := make(chan *bookiepb.ReadResponse, 1)
		for e := range int64(n) {
			wg.Add(1)
			c.AddAsync(ctx, addr, addReq(l, e, e-1), func(err error) {
				errs[e] = err
				wg.Done()
			})
			if e == n/2 {
				go func() {
					r, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: l, EntryId: -1, Fence: true, MasterKey: testKey})
					if err != nil {
						t.Errorf("fence: %v", err)
					}
					fenced <- r
				}()
			}
		}
		wg.Wait()
		r := <-fenced
		if r == nil {
			return
		}
		last := int64(-1)
		if r.Entry != nil {
			last = r.Entry.EntryId
		}
		for e, err := range errs {
			switch {
			case err == nil && int64(e) > last:
				t.Fatalf("round %d: entry %d acknowledged but the fence reported last entry %d", round, e, last)
			case err != nil && !bookieclient.IsExplicitNegative(err) && !isFenced(err):
				t.Fatalf("round %d: entry %d: %v", round, e, err)
			}
		}
	}
}

func isFenced(err error) bool {
	return err != nil && bytes.Contains([]byte(err.Error()), []byte("fenced"))
}

func TestRequestValidation(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MaxEntryBytes = 1024
	b := start(t, cfg)
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	noErr(t, c.Add(ctx, addr, addReq(1, 0, -1)), "add")
	badCRC := bookiepb.NewEntry(1, 1, 0, []byte("x"))
	badCRC.Crc32C++
	tests := []struct {
		name string
		req  *bookiepb.Request
		want error
	}{
		{"master key mismatch", &bookiepb.Request{Body: &bookiepb.Request_Add{Add: &bookiepb.AddRequest{
			Entry: bookiepb.NewEntry(1, 1, 0, []byte("x")), MasterKey: []byte("wrong")}}}, bookieclient.ErrUnauthorized},
		{"too large", &bookiepb.Request{Body: &bookiepb.Request_Add{Add: &bookiepb.AddRequest{
			Entry: bookiepb.NewEntry(1, 1, 0, make([]byte, 1025)), MasterKey: testKey}}}, bookieclient.ErrTooLarge},
		{"bad crc", &bookiepb.Request{Body: &bookiepb.Request_Add{Add: &bookiepb.AddRequest{
			Entry: badCRC, MasterKey: testKey}}}, bookieclient.ErrBadRequest},
		{"negative ledger", &bookiepb.Request{Body: &bookiepb.Request_Add{Add: &bookiepb.AddRequest{
			Entry: bookiepb.NewEntry(-1, 1, 0, nil), MasterKey: testKey}}}, bookieclient.ErrBadRequest},
		{"negative entry", &bookiepb.Request{Body: &bookiepb.Request_Add{Add: &bookiepb.AddRequest{
			Entry: bookiepb.NewEntry(1, -2, -1, nil), MasterKey: testKey}}}, bookieclient.ErrBadRequest},
		{"lac not below entry", &bookiepb.Request{Body: &bookiepb.Request_Add{Add: &bookiepb.AddRequest{
			Entry: bookiepb.NewEntry(1, 1, 1, nil), MasterKey: testKey}}}, bookieclient.ErrBadRequest},
		{"no entry", &bookiepb.Request{Body: &bookiepb.Request_Add{Add: &bookiepb.AddRequest{}}}, bookieclient.ErrBadRequest},
		{"no body", &bookiepb.Request{}, bookieclient.ErrBadRequest},
		{"read entry -2", &bookiepb.Request{Body: &bookiepb.Request_Read{Read: &bookiepb.ReadRequest{LedgerId: 1, EntryId: -2}}}, bookieclient.ErrBadRequest},
		{"read-lac negative ledger", &bookiepb.Request{Body: &bookiepb.Request_ReadLac{ReadLac: &bookiepb.ReadLACRequest{LedgerId: -1}}}, bookieclient.ErrBadRequest},
		{"write-lac lac -2", &bookiepb.Request{Body: &bookiepb.Request_WriteLac{WriteLac: &bookiepb.WriteLACRequest{LedgerId: 1, Lac: -2}}}, bookieclient.ErrBadRequest},
		{"delete negative ledger", &bookiepb.Request{Body: &bookiepb.Request_Delete{Delete: &bookiepb.DeleteRequest{LedgerId: -5}}}, bookieclient.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Do(ctx, addr, tt.req)
			wantErr(t, err, tt.want, "request")
		})
	}
	// Nothing of the refused adds was stored.
	_, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 1, EntryId: 1})
	wantErr(t, err, bookieclient.ErrNoEntry, "read refused entry")
}

func TestLongPollReadLAC(t *testing.T) {
	b := start(t, testConfig(t, t.TempDir()))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	noErr(t, c.Add(ctx, addr, addReq(3, 0, -1)), "add 0")
	noErr(t, c.Add(ctx, addr, addReq(3, 1, 0)), "add 1")

	t.Run("no wait when already past", func(t *testing.T) {
		r, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 3, LongPoll: true, PreviousLac: -1, IncludeEntry: true})
		noErr(t, err, "read-lac")
		if r.Lac != 0 || r.Entry == nil || r.Entry.EntryId != 0 {
			t.Fatalf("read-lac: %v", r)
		}
	})
	t.Run("woken by an add", func(t *testing.T) {
		type result struct {
			r   *bookiepb.ReadLACResponse
			err error
		}
		done := make(chan result, 1)
		go func() {
			r, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 3, LongPoll: true, PreviousLac: 0, IncludeEntry: true})
			done <- result{r, err}
		}()
		waitUntil(t, 10*time.Second, "the long poll to be held", func() bool { return b.longPolls.Load() == 1 })
		noErr(t, c.Add(ctx, addr, addReq(3, 2, 1)), "add 2")
		res := <-done
		noErr(t, res.err, "long poll")
		if res.r.Lac != 1 || res.r.Entry == nil || res.r.Entry.EntryId != 1 {
			t.Fatalf("long poll: %v", res.r)
		}
	})
	t.Run("woken by write-lac", func(t *testing.T) {
		done := make(chan *bookiepb.ReadLACResponse, 1)
		go func() {
			r, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 3, LongPoll: true, PreviousLac: 1})
			if err != nil {
				t.Errorf("long poll: %v", err)
			}
			done <- r
		}()
		waitUntil(t, 10*time.Second, "the long poll to be held", func() bool { return b.longPolls.Load() == 1 })
		noErr(t, c.WriteLAC(ctx, addr, &bookiepb.WriteLACRequest{LedgerId: 3, Lac: 2, MasterKey: testKey}), "write-lac")
		if r := <-done; r == nil || r.Lac != 2 {
			t.Fatalf("long poll: %v", r)
		}
		// Max-merge: a lower explicit LAC does not lower it.
		noErr(t, c.WriteLAC(ctx, addr, &bookiepb.WriteLACRequest{LedgerId: 3, Lac: 0, MasterKey: testKey}), "write-lac")
		r, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 3})
		noErr(t, err, "read-lac")
		if r.Lac != 2 {
			t.Fatalf("lac %d after a lower write-lac, want 2", r.Lac)
		}
	})
	t.Run("expires with the unchanged LAC", func(t *testing.T) {
		short := ctxTimeout(t, time.Second) // held 750 ms; 250 ms for the answer
		r, err := c.ReadLAC(short, addr, &bookiepb.ReadLACRequest{LedgerId: 3, LongPoll: true, PreviousLac: 2})
		noErr(t, err, "long poll")
		if r.Lac != 2 || r.Entry != nil {
			t.Fatalf("expired long poll: %v", r)
		}
	})
	t.Run("unknown ledger", func(t *testing.T) {
		_, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 404, LongPoll: true, PreviousLac: -1})
		wantErr(t, err, bookieclient.ErrNoLedger, "long poll on an unknown ledger")
	})
	t.Run("wrong key on write-lac", func(t *testing.T) {
		err := c.WriteLAC(ctx, addr, &bookiepb.WriteLACRequest{LedgerId: 3, Lac: 5, MasterKey: []byte("x")})
		wantErr(t, err, bookieclient.ErrUnauthorized, "write-lac")
	})
}

func TestDelete(t *testing.T) {
	b := start(t, testConfig(t, t.TempDir()))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	for e := range int64(5) {
		noErr(t, c.Add(ctx, addr, addReq(8, e, e-1)), "add")
	}
	noErr(t, b.Checkpoint(), "checkpoint") // some in entry logs
	noErr(t, c.Add(ctx, addr, addReq(8, 5, 4)), "add")
	noErr(t, c.Delete(ctx, addr, 8), "delete")
	for _, e := range []int64{0, 5, -1} {
		_, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 8, EntryId: e})
		wantErr(t, err, bookieclient.ErrNoLedger, "read %d after delete", e)
	}
	// A straggling add cannot bring it back.
	wantErr(t, c.Add(ctx, addr, addReq(8, 6, 5)), bookieclient.ErrNoLedger, "add after delete")
	noErr(t, c.Delete(ctx, addr, 8), "delete twice")
	noErr(t, c.Delete(ctx, addr, 12345), "delete unknown")
}

func TestInfo(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Region, cfg.Rack = "eu", "r1"
	b := start(t, cfg)
	c := newClient(t)
	info, err := c.Info(ctxTimeout(t, 10*time.Second), b.ListenAddr())
	noErr(t, err, "info")
	if info.BookieId != "bookie-1" || info.InstanceId != b.InstanceID() || info.InstanceId == "" ||
		info.State != bookiepb.BookieState_BOOKIE_STATE_WRITABLE || info.Region != "eu" || info.Rack != "r1" {
		t.Fatalf("info: %v", info)
	}
}

func TestOverloadAndShutdown(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MaxInFlightPerStream = 4
	cfg.MaxEntryBytes = 1024
	b := start(t, cfg)
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	noErr(t, c.Add(ctx, addr, addReq(1, 0, -1)), "add")

	t.Run("huge frame refused by gRPC", func(t *testing.T) {
		req := &bookiepb.AddRequest{Entry: bookiepb.NewEntry(1, 1, 0, make([]byte, 1024+grpcOverheadBytes+1)), MasterKey: testKey}
		if err := c.Add(ctx, addr, req); err == nil || errors.Is(err, bookieclient.ErrTooLarge) {
			t.Fatalf("huge add: %v, want the stream refused", err)
		}
		noErr(t, c.Add(ctx, addr, addReq(1, 1, 0)), "add after the refused frame")
	})

	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 1, LongPoll: true, PreviousLac: 10})
			errs <- err
		}()
	}
	waitUntil(t, 10*time.Second, "4 long polls", func() bool { return b.LongPolls() == 4 })
	wantErr(t, c.Add(ctx, addr, addReq(1, 2, 1)), bookieclient.ErrOverloaded, "fifth request on the stream")
	go func() { _ = b.Close() }()
	for range 4 {
		err := <-errs
		if !errors.Is(err, bookieclient.ErrShuttingDown) {
			t.Fatalf("long poll at Close: %v, want ErrShuttingDown", err)
		}
	}
}

func TestLongPollWaitersBounded(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MaxLongPollWaiters = 2
	b := start(t, cfg)
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	noErr(t, c.Add(ctx, addr, addReq(1, 0, -1)), "add")
	noErr(t, c.Add(ctx, addr, addReq(1, 1, 0)), "add") // LAC 0
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 1, LongPoll: true, PreviousLac: 0})
			done <- err
		}()
	}
	waitUntil(t, 10*time.Second, "2 long polls", func() bool { return b.LongPolls() == 2 })
	_, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 1, LongPoll: true, PreviousLac: 0})
	wantErr(t, err, bookieclient.ErrOverloaded, "third long poll")
	// A long poll that need not wait is not a waiter.
	r, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 1, LongPoll: true, PreviousLac: -1})
	noErr(t, err, "read-lac already satisfied")
	if r.Lac != 0 {
		t.Fatalf("lac %d, want 0", r.Lac)
	}
	noErr(t, c.Add(ctx, addr, addReq(1, 2, 1)), "add waking the polls")
	for range 2 {
		noErr(t, <-done, "woken poll")
	}
}

// TestDeleteReclaimsSpace: a deleted ledger is unreadable at once, and the
// background compaction (GCInterval) reclaims its entry-log space while
// the other ledger's entries keep reading back.
func TestDeleteReclaimsSpace(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.EntryLogMaxFileSizeBytes = 256 << 10
	cfg.GCInterval = 20 * time.Millisecond
	b := start(t, cfg)
	c := newClient(t)
	ctx := ctxTimeout(t, 60*time.Second)
	addr := b.ListenAddr()
	big := func(l, e int64) []byte { // 8 KiB in ledger 1, 100 B in ledger 2
		p := make([]byte, 100)
		if l == 1 {
			p = make([]byte, 8<<10)
		}
		for i := range p {
			p[i] = byte(int64(i) * (l + e + 1))
		}
		return p
	}
	const entries = 64
	for e := range int64(entries) {
		for _, l := range []int64{1, 2} {
			noErr(t, c.Add(ctx, addr, &bookiepb.AddRequest{Entry: bookiepb.NewEntry(l, e, e-1, big(l, e)), MasterKey: testKey}), "add %d:%d", l, e)
		}
	}
	noErr(t, b.Checkpoint(), "checkpoint")
	logBytes := func() int64 {
		var n int64
		ents, err := os.ReadDir(filepath.Join(dir, "ledgers", "logs"))
		noErr(t, err, "list entry logs")
		for _, de := range ents {
			if info, err := de.Info(); err == nil {
				n += info.Size()
			}
		}
		return n
	}
	before := logBytes()
	if before < entries*(8<<10) {
		t.Fatalf("entry logs hold %d bytes, want at least %d", before, entries*(8<<10))
	}
	noErr(t, c.Delete(ctx, addr, 1), "delete")
	_, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 1, EntryId: 0})
	wantErr(t, err, bookieclient.ErrNoLedger, "read right after delete")
	// The background compaction rewrites or removes the finished logs
	// (all but the last one, being written).
	waitUntil(t, 30*time.Second, "compaction to reclaim the deleted ledger's space", func() bool {
		return logBytes() < before/2
	})
	for e := range int64(entries) {
		readEntry(t, c, addr, 2, e, big(2, e))
	}
}

// TestExtremeIDs: the largest ids are stored and read like any other;
// ids past the range are refused as malformed; unknown ones are explicit
// negatives.
func TestExtremeIDs(t *testing.T) {
	b := start(t, testConfig(t, t.TempDir()))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	const top = math.MaxInt64
	noErr(t, c.Add(ctx, addr, addReq(top, top, top-1)), "add at the top")
	readEntry(t, c, addr, top, top, payloadOf(top, top))
	r, err := c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: top, EntryId: -1})
	noErr(t, err, "read last")
	if r.GetEntry().GetEntryId() != top || r.Lac != top-1 {
		t.Fatalf("read last: %v", r)
	}
	_, err = c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: top, EntryId: top - 1})
	wantErr(t, err, bookieclient.ErrNoEntry, "read below the top")
	_, err = c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: top - 1, EntryId: top})
	wantErr(t, err, bookieclient.ErrNoLedger, "read of an unknown ledger")
	for _, req := range []*bookiepb.ReadRequest{{LedgerId: math.MinInt64}, {LedgerId: 1, EntryId: math.MinInt64}, {LedgerId: 1, EntryId: -2}} {
		_, err = c.Read(ctx, addr, req)
		wantErr(t, err, bookieclient.ErrBadRequest, "read %d:%d", req.LedgerId, req.EntryId)
	}
	wantErr(t, c.Add(ctx, addr, addReq(math.MinInt64, 0, -1)), bookieclient.ErrBadRequest, "add to ledger MinInt64")
}

// TestExpectedBookieID: a request naming another bookie is refused with
// WRONG_BOOKIE and changes nothing; naming this bookie, or none, works.
func TestExpectedBookieID(t *testing.T) {
	b := start(t, testConfig(t, t.TempDir()))
	c := newClient(t)
	ctx := ctxTimeout(t, 30*time.Second)
	addr := b.ListenAddr()
	addTo := func(id string, add *bookiepb.AddRequest) error {
		ch := make(chan error, 1)
		c.AddAsyncTo(ctx, addr, id, add, func(err error) { ch <- err })
		return <-ch
	}
	writeLAC := func(id string, l, lac int64) error {
		_, err := c.Do(ctx, addr, &bookiepb.Request{ExpectedBookieId: id,
			Body: &bookiepb.Request_WriteLac{WriteLac: &bookiepb.WriteLACRequest{LedgerId: l, Lac: lac, MasterKey: testKey}}})
		return err
	}

	// Wrong id on a ledger the bookie never saw: nothing is created.
	err := addTo("bookie-2", addReq(3, 0, -1))
	wantErr(t, err, bookieclient.ErrWrongBookie, "add naming bookie-2")
	var se *bookieclient.StatusError
	if !errors.As(err, &se) || se.Status != bookiepb.Status_STATUS_WRONG_BOOKIE {
		t.Fatalf("add naming bookie-2: %v, want STATUS_WRONG_BOOKIE", err)
	}
	if bookieclient.IsExplicitNegative(err) || errors.Is(err, bookieclient.ErrFenced) {
		t.Fatalf("%v counts as a negative or a fence", err)
	}
	_, err = c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 3, EntryId: 0})
	wantErr(t, err, bookieclient.ErrNoLedger, "read after refused add")

	// Right id, then no id: stored.
	noErr(t, addTo("bookie-1", addReq(3, 0, -1)), "add naming bookie-1")
	noErr(t, addTo("", addReq(3, 1, 0)), "add naming nobody")
	readEntry(t, c, addr, 3, 0, payloadOf(3, 0))
	readEntry(t, c, addr, 3, 1, payloadOf(3, 1))

	// Wrong id on a known ledger: the entry is not stored, the LAC not moved.
	wantErr(t, addTo("bookie-2", addReq(3, 2, 1)), bookieclient.ErrWrongBookie, "add 3:2 naming bookie-2")
	_, err = c.Read(ctx, addr, &bookiepb.ReadRequest{LedgerId: 3, EntryId: 2})
	wantErr(t, err, bookieclient.ErrNoEntry, "read 3:2 after refused add")
	wantErr(t, writeLAC("bookie-2", 3, 1), bookieclient.ErrWrongBookie, "write-lac naming bookie-2")
	lac, err := c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 3})
	noErr(t, err, "read lac")
	if lac.Lac != 0 {
		t.Fatalf("lac %d after refused write-lac, want 0", lac.Lac)
	}
	noErr(t, writeLAC("bookie-1", 3, 1), "write-lac naming bookie-1")
	lac, err = c.ReadLAC(ctx, addr, &bookiepb.ReadLACRequest{LedgerId: 3})
	noErr(t, err, "read lac")
	if lac.Lac != 1 {
		t.Fatalf("lac %d after write-lac, want 1", lac.Lac)
	}
}
