package proxy

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
)

func tagged(producer string, seq int64, payload string) dlog.Record {
	return dlog.Record{Payload: []byte(payload), ProducerID: producer, Sequence: seq}
}

// TestIdempotentRetries: on one owner, retries of acknowledged writes and
// of bulks return the original positions; sequences the proxy does not
// remember are a definite error.
func TestIdempotentRetries(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	p := e.proxy()
	c := newClient(t, []string{p.AdvertiseAddr()})
	ctx := t.Context()
	if err := c.CreateLog(ctx, "idem", 0); err != nil {
		t.Fatal(err)
	}
	first, err := c.Write(ctx, "idem", tagged("prod-a", 7, "a7"))
	if err != nil || first.Duplicate {
		t.Fatalf("first write: %+v %v", first, err)
	}
	again, err := c.Write(ctx, "idem", tagged("prod-a", 7, "a7"))
	if err != nil || !again.Duplicate || again.DLSN != first.DLSN || again.TxID != first.TxID {
		t.Fatalf("retry: %+v %v, original %+v", again, err, first)
	}
	bulk := []dlog.Record{tagged("prod-a", 10, "a10"), tagged("prod-a", 11, "a11"), tagged("prod-a", 12, "a12")}
	res, err := c.WriteBulk(ctx, "idem", bulk)
	if err != nil {
		t.Fatal(err)
	}
	// A retry overlapping the bulk: its prefix is answered, the rest
	// appended.
	retry := []dlog.Record{tagged("prod-a", 11, "a11"), tagged("prod-a", 12, "a12"), tagged("prod-a", 13, "a13")}
	res2, err := c.WriteBulk(ctx, "idem", retry)
	if err != nil {
		t.Fatal(err)
	}
	if !res2[0].Duplicate || res2[0].DLSN != res[1].DLSN || !res2[1].Duplicate || res2[1].DLSN != res[2].DLSN || res2[2].Duplicate {
		t.Fatalf("overlapping bulk retry: %+v, original %+v", res2, res)
	}
	// Below the producer's last sequence and never written (8), or
	// written but retried out of order... 8 was skipped: too old.
	_, err = c.Write(ctx, "idem", tagged("prod-a", 8, "a8"))
	if !errors.Is(err, client.ErrSequenceTooOld) || !dlog.IsDefinite(err) {
		t.Fatalf("skipped sequence: %v", err)
	}
	recs := readAll(t, c, "idem")
	var got []string
	for _, r := range recs {
		got = append(got, string(r.Payload))
	}
	if fmt.Sprint(got) != "[a7 a10 a11 a12 a13]" {
		t.Fatalf("log holds %v", got)
	}
}

// TestConcurrentRetries: the same tagged write sent many times at once is
// appended once; every copy returns the same position, one of them as the
// original.
func TestConcurrentRetries(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	p := e.proxy()
	c := newClient(t, []string{p.AdvertiseAddr()})
	ctx := t.Context()
	if err := c.CreateLog(ctx, "race", 0); err != nil {
		t.Fatal(err)
	}
	for seq := range int64(20) {
		const copies = 8
		res := make([]client.WriteResult, copies)
		errs := make([]error, copies)
		var wg sync.WaitGroup
		for i := range copies {
			wg.Go(func() { res[i], errs[i] = c.Write(ctx, "race", tagged("p", seq, fmt.Sprint("v", seq))) })
		}
		wg.Wait()
		originals := 0
		for i := range copies {
			if errs[i] != nil {
				t.Fatalf("seq %d copy %d: %v", seq, i, errs[i])
			}
			if res[i].DLSN != res[0].DLSN {
				t.Fatalf("seq %d: copies at %v and %v", seq, res[0].DLSN, res[i].DLSN)
			}
			if !res[i].Duplicate {
				originals++
			}
		}
		if originals != 1 {
			t.Fatalf("seq %d: %d copies claim to be the original", seq, originals)
		}
	}
	if recs := readAll(t, c, "race"); len(recs) != 20 {
		t.Fatalf("log holds %d records, want 20", len(recs))
	}
}

// TestIdempotentAcrossOwners: the dedup table of a new owner comes from
// the log itself: a retry sent to another proxy after the log moved gets
// the original position.
func TestIdempotentAcrossOwners(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	pa, pb := e.proxy(), e.proxy()
	ca := newClient(t, []string{pa.AdvertiseAddr()}, func(c *client.Config) { c.DiscoveryInterval = -1 })
	cb := newClient(t, []string{pb.AdvertiseAddr()}, func(c *client.Config) { c.DiscoveryInterval = -1 })
	ctx := t.Context()
	if err := ca.CreateLog(ctx, "moving", 0); err != nil {
		t.Fatal(err)
	}
	var orig []client.WriteResult
	for seq := range int64(5) {
		r, err := ca.Write(ctx, "moving", tagged("mover", seq, fmt.Sprint("m", seq)))
		if err != nil {
			t.Fatal(err)
		}
		orig = append(orig, r)
	}
	if err := ca.Release(ctx, "moving"); err != nil {
		t.Fatal(err)
	}
	for seq := range int64(5) {
		r, err := cb.Write(ctx, "moving", tagged("mover", seq, fmt.Sprint("m", seq)))
		if err != nil {
			t.Fatalf("retry %d on the new owner: %v", seq, err)
		}
		if !r.Duplicate || r.DLSN != orig[seq].DLSN {
			t.Fatalf("retry %d on the new owner: %+v, original %+v", seq, r, orig[seq])
		}
	}
	if info, err := cb.LogInfo(ctx, "moving"); err != nil || info.Owner != pb.AdvertiseAddr() {
		t.Fatalf("owner %q %v", info.Owner, err)
	}
	recs := readAll(t, cb, "moving")
	if len(recs) != 5 {
		t.Fatalf("log holds %d records, want 5", len(recs))
	}
	for i, r := range recs {
		if r.ProducerID != "mover" || r.Sequence != int64(i) {
			t.Fatalf("record %d tag %q/%d", i, r.ProducerID, r.Sequence)
		}
	}
}
