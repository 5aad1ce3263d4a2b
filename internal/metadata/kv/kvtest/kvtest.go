package kvtest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/metadata/kv"
)

// Deadline bounds every wait; it only catches hangs.
const Deadline = 30 * time.Second

var seq atomic.Int64

// Run runs every check. open returns a new client of one shared service;
// each test works under its own key prefix and closes its clients.
func Run(t *testing.T, open func(t *testing.T) kv.KV) {
	tests := []struct {
		name string
		fn   func(t *testing.T, c kv.KV, p string)
	}{
		{"Revisions", testRevisions},
		{"TxnReadsOwnWrites", testReadOwnWrites},
		{"Compares", testCompares},
		{"Ranges", testRanges},
		{"MissingLeaseWritesNothing", testMissingLease},
		{"DuplicateKeys", testDuplicateKeys},
		{"WatchHistoryAndLive", testWatch},
		{"Leases", testLeases},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := open(t)
			t.Cleanup(func() { c.Close() })
			tt.fn(t, c, fmt.Sprintf("/kvtest/%d-%d/", time.Now().UnixNano()%1e9, seq.Add(1)))
		})
	}
	t.Run("Closed", func(t *testing.T) {
		c := open(t)
		ctx := ctxOf(t)
		w := c.Watch(ctx, "/kvtest/closed", "", 0)
		must(t, c.Close())
		_, err := c.Txn(ctx, kv.Txn{Then: []kv.Op{kv.Get("/x")}})
		mustBe(t, err, kv.ErrClosed)
		// The channel closes (an ErrClosed response is optional: nobody was
		// reading while Close ran).
		for r := range w {
			if r.Err != nil {
				mustBe(t, r.Err, kv.ErrClosed)
			}
		}
	})
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), Deadline)
	t.Cleanup(cancel)
	return ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustBe(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got %v, want an error wrapping %v", err, target)
	}
}

func txn(t *testing.T, c kv.KV, tx kv.Txn) kv.TxnResponse {
	t.Helper()
	resp, err := c.Txn(ctxOf(t), tx)
	must(t, err)
	return resp
}

func get(t *testing.T, c kv.KV, key string) (kv.KeyValue, int64) {
	t.Helper()
	resp := txn(t, c, kv.Txn{Then: []kv.Op{kv.Get(key)}})
	if len(resp.Results[0].KVs) == 0 {
		return kv.KeyValue{}, resp.Revision
	}
	return resp.Results[0].KVs[0], resp.Revision
}

func testRevisions(t *testing.T, c kv.KV, p string) {
	r1 := txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"a", []byte("1"), 0), kv.Put(p+"b", []byte("1"), 0)}})
	a, _ := get(t, c, p+"a")
	b, _ := get(t, c, p+"b")
	if a.ModRevision != r1.Revision || b.ModRevision != r1.Revision || a.CreateRevision != r1.Revision || a.Version != 1 {
		t.Fatalf("after one txn: a=%+v b=%+v rev=%d", a, b, r1.Revision)
	}
	r2 := txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"a", []byte("2"), 0)}})
	a, _ = get(t, c, p+"a")
	if a.ModRevision != r2.Revision || a.CreateRevision != r1.Revision || a.Version != 2 || string(a.Value) != "2" {
		t.Fatalf("after update: %+v", a)
	}
	if r2.Revision <= r1.Revision {
		t.Fatalf("revision did not grow: %d then %d", r1.Revision, r2.Revision)
	}
	// Deleting a missing key writes nothing.
	r3 := txn(t, c, kv.Txn{Then: []kv.Op{kv.Delete(p + "missing")}})
	if r3.Results[0].Deleted != 0 {
		t.Fatalf("deleted %d missing keys", r3.Results[0].Deleted)
	}
	a, _ = get(t, c, p+"a")
	if a.ModRevision != r2.Revision {
		t.Fatalf("a changed by a no-op delete: %+v", a)
	}
	// Delete then re-create: a fresh key.
	r4 := txn(t, c, kv.Txn{Then: []kv.Op{kv.Delete(p + "a")}})
	if r4.Results[0].Deleted != 1 {
		t.Fatalf("deleted %d", r4.Results[0].Deleted)
	}
	r5 := txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"a", []byte("3"), 0)}})
	a, _ = get(t, c, p+"a")
	if a.Version != 1 || a.CreateRevision != r5.Revision || r5.Revision <= r4.Revision {
		t.Fatalf("re-created key %+v (delete at %d, put at %d)", a, r4.Revision, r5.Revision)
	}
}

func testReadOwnWrites(t *testing.T, c kv.KV, p string) {
	txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"k", []byte("v"), 0)}})
	resp := txn(t, c, kv.Txn{Then: []kv.Op{kv.Get(p + "k"), kv.Put(p+"k", []byte("w"), 0), kv.Get(p + "k"), kv.Get(p + "new")}})
	before, after := resp.Results[0].KVs, resp.Results[2].KVs
	if len(before) != 1 || string(before[0].Value) != "v" {
		t.Fatalf("get before the put: %+v", before)
	}
	if len(after) != 1 || string(after[0].Value) != "w" || after[0].Version != before[0].Version+1 || after[0].ModRevision != resp.Revision {
		t.Fatalf("get after a put in the same txn: %+v (before %+v, txn revision %d)", after, before, resp.Revision)
	}
	if len(resp.Results[3].KVs) != 0 {
		t.Fatalf("missing key read as %+v", resp.Results[3].KVs)
	}
}

func testCompares(t *testing.T, c kv.KV, p string) {
	ok := func(cmps ...kv.Cmp) bool {
		t.Helper()
		return txn(t, c, kv.Txn{If: cmps}).Succeeded
	}
	missing := p + "missing"
	for _, target := range []kv.Target{kv.TargetMod, kv.TargetCreate, kv.TargetVersion, kv.TargetLease} {
		if !ok(kv.Cmp{Key: missing, Target: target, Result: kv.Equal}) {
			t.Fatalf("missing key: target %d is not 0", target)
		}
	}
	r := txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"d/1", nil, 0), kv.Put(p+"d/2", nil, 0)}})
	tests := []struct {
		name string
		cmp  kv.Cmp
		want bool
	}{
		{"mod equal", kv.Cmp{Key: p + "d/1", Target: kv.TargetMod, Result: kv.Equal, Value: r.Revision}, true},
		{"mod not equal", kv.Cmp{Key: p + "d/1", Target: kv.TargetMod, Result: kv.NotEqual, Value: r.Revision}, false},
		{"create greater", kv.Cmp{Key: p + "d/1", Target: kv.TargetCreate, Result: kv.Greater, Value: 0}, true},
		{"version less", kv.Cmp{Key: p + "d/1", Target: kv.TargetVersion, Result: kv.Less, Value: 2}, true},
		{"empty range is like a missing key", kv.Cmp{Key: p + "e/", End: kv.PrefixEnd(p + "e/"), Target: kv.TargetCreate, Result: kv.Equal}, true},
		{"range: every key must hold", kv.Cmp{Key: p + "d/", End: kv.PrefixEnd(p + "d/"), Target: kv.TargetCreate, Result: kv.Equal}, false},
		{"range: all hold", kv.Cmp{Key: p + "d/", End: kv.PrefixEnd(p + "d/"), Target: kv.TargetMod, Result: kv.Equal, Value: r.Revision}, true},
	}
	for _, tt := range tests {
		if got := ok(tt.cmp); got != tt.want {
			t.Errorf("%s: succeeded=%v, want %v", tt.name, got, tt.want)
		}
	}
	// Else runs when any compare fails.
	resp := txn(t, c, kv.Txn{
		If:   []kv.Cmp{{Key: p + "d/1", Target: kv.TargetCreate, Result: kv.Greater}, {Key: missing, Target: kv.TargetCreate, Result: kv.Greater}},
		Then: []kv.Op{kv.Put(p+"then", nil, 0)},
		Else: []kv.Op{kv.Get(p + "d/1")},
	})
	if resp.Succeeded || len(resp.Results) != 1 || len(resp.Results[0].KVs) != 1 {
		t.Fatalf("else branch: %+v", resp)
	}
	if k, _ := get(t, c, p+"then"); k.CreateRevision != 0 {
		t.Fatal("then branch wrote although a compare failed")
	}
}

func testRanges(t *testing.T, c kv.KV, p string) {
	for i := range 5 {
		txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(fmt.Sprintf("%sr/%d", p, i), []byte("v"), 0)}})
	}
	txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"r", []byte("outside"), 0), kv.Put(p+"s", []byte("outside"), 0)}})
	start, end := p+"r/", kv.PrefixEnd(p+"r/")
	resp := txn(t, c, kv.Txn{Then: []kv.Op{
		kv.Range(start, end, 0),
		kv.Range(start, end, 2),
		{Type: kv.OpGet, Key: start, End: end, KeysOnly: true},
		kv.Range(p+"r/1", p+"r/3", 0),
	}})
	all, limited, keys, mid := resp.Results[0], resp.Results[1], resp.Results[2], resp.Results[3]
	if len(all.KVs) != 5 || all.More || all.KVs[0].Key != p+"r/0" || all.KVs[4].Key != p+"r/4" {
		t.Fatalf("prefix range: %+v", all)
	}
	if len(limited.KVs) != 2 || !limited.More {
		t.Fatalf("limited range: %d keys, more=%v", len(limited.KVs), limited.More)
	}
	if len(keys.KVs) != 5 || keys.KVs[0].Value != nil {
		t.Fatalf("keys-only range returned values: %+v", keys.KVs)
	}
	if len(mid.KVs) != 2 || mid.KVs[0].Key != p+"r/1" || mid.KVs[1].Key != p+"r/2" {
		t.Fatalf("[r/1, r/3) = %+v", mid.KVs)
	}
	del := txn(t, c, kv.Txn{Then: []kv.Op{kv.DeleteRange(start, end)}})
	if del.Results[0].Deleted != 5 {
		t.Fatalf("prefix delete removed %d", del.Results[0].Deleted)
	}
	if k, _ := get(t, c, p+"r"); string(k.Value) != "outside" {
		t.Fatal("prefix delete removed a key outside the prefix")
	}
}

func testMissingLease(t *testing.T, c kv.KV, p string) {
	ctx := ctxOf(t)
	_, rev := get(t, c, p+"x")
	_, err := c.Txn(ctx, kv.Txn{Then: []kv.Op{kv.Put(p+"plain", nil, 0), kv.Put(p+"leased", nil, 0x7eadbeef)}})
	mustBe(t, err, kv.ErrLeaseNotFound)
	if k, _ := get(t, c, p+"plain"); k.CreateRevision != 0 {
		t.Fatalf("a txn failing on a missing lease wrote %+v (revision before %d)", k, rev)
	}
}

func testDuplicateKeys(t *testing.T, c kv.KV, p string) {
	ctx := ctxOf(t)
	tests := []struct {
		name string
		ops  []kv.Op
		ok   bool
	}{
		{"two puts", []kv.Op{kv.Put(p+"a", nil, 0), kv.Put(p+"a", nil, 0)}, false},
		{"put inside deleted range", []kv.Op{kv.DeleteRange(p, kv.PrefixEnd(p)), kv.Put(p+"a", nil, 0)}, false},
		{"put and get", []kv.Op{kv.Put(p+"a", nil, 0), kv.Get(p + "a")}, true},
		{"overlapping deletes", []kv.Op{kv.DeleteRange(p, kv.PrefixEnd(p)), kv.Delete(p + "a")}, true},
	}
	for _, tt := range tests {
		_, err := c.Txn(ctx, kv.Txn{Then: tt.ops})
		if tt.ok {
			must(t, err)
		} else {
			mustBe(t, err, kv.ErrInvalid)
		}
	}
}

func testWatch(t *testing.T, c kv.KV, p string) {
	ctx := ctxOf(t)
	r0 := txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"w/a", []byte("1"), 0)}})
	txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"other", nil, 0)}})
	r1 := txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"w/a", []byte("2"), 0), kv.Put(p+"w/b", []byte("1"), 0)}})
	w := c.Watch(ctx, p+"w/", kv.PrefixEnd(p+"w/"), r0.Revision) // history from r0 on
	r2 := txn(t, c, kv.Txn{Then: []kv.Op{kv.DeleteRange(p+"w/", kv.PrefixEnd(p+"w/"))}})
	single := c.Watch(ctx, p+"w/b", "", r0.Revision)

	type ev struct {
		typ kv.EventType
		key string
		rev int64
	}
	want := []ev{
		{kv.EventPut, p + "w/a", r0.Revision},
		{kv.EventPut, p + "w/a", r1.Revision},
		{kv.EventPut, p + "w/b", r1.Revision},
		{kv.EventDelete, p + "w/a", r2.Revision},
		{kv.EventDelete, p + "w/b", r2.Revision},
	}
	next := func(ch <-chan kv.WatchResponse, n int) []ev {
		var got []ev
		timeout := time.After(Deadline)
		for len(got) < n {
			select {
			case r, ok := <-ch:
				if !ok || r.Err != nil {
					t.Fatalf("watch ended: %v", r.Err)
				}
				// A response may carry several revisions (etcd batches
				// history); they only have to ascend.
				for _, e := range r.Events {
					if len(got) > 0 && e.KV.ModRevision < got[len(got)-1].rev {
						t.Fatalf("revision %d after %d", e.KV.ModRevision, got[len(got)-1].rev)
					}
					got = append(got, ev{e.Type, e.KV.Key, e.KV.ModRevision})
				}
			case <-timeout:
				t.Fatalf("timed out; got %+v", got)
			}
		}
		return got
	}
	got := next(w, len(want))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n got %+v\nwant %+v", got, want)
	}
	got = next(single, 2)
	if fmt.Sprint(got) != fmt.Sprint([]ev{want[2], want[4]}) {
		t.Fatalf("single-key events %+v", got)
	}
	// Live events after the history.
	r3 := txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"w/c", nil, 0)}})
	got = next(w, 1)
	if got[0] != (ev{kv.EventPut, p + "w/c", r3.Revision}) {
		t.Fatalf("live event %+v", got[0])
	}
}

func testLeases(t *testing.T, c kv.KV, p string) {
	ctx := ctxOf(t)
	id, ttl, err := c.Grant(ctx, 10*time.Second)
	must(t, err)
	if ttl < 10*time.Second {
		t.Fatalf("granted TTL %v < asked", ttl)
	}
	txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"a", nil, id), kv.Put(p+"b", nil, id), kv.Put(p+"c", nil, 0)}})
	if k, _ := get(t, c, p+"a"); k.Lease != id {
		t.Fatalf("key lease %x, want %x", k.Lease, id)
	}
	_, err = c.KeepAliveOnce(ctx, id)
	must(t, err)
	_, rev := get(t, c, p+"c")
	w := c.Watch(ctx, p, kv.PrefixEnd(p), rev+1)
	must(t, c.Revoke(ctx, id))
	mustBe(t, c.Revoke(ctx, id), kv.ErrLeaseNotFound)
	_, err = c.KeepAliveOnce(ctx, id)
	mustBe(t, err, kv.ErrLeaseNotFound)
	// Both keys go at one revision; the unleased one stays.
	select {
	case r := <-w:
		if r.Err != nil || len(r.Events) != 2 || r.Events[0].Type != kv.EventDelete || r.Events[0].KV.ModRevision != r.Events[1].KV.ModRevision {
			t.Fatalf("revoke events %+v", r)
		}
	case <-time.After(Deadline):
		t.Fatal("no events for the revoke")
	}
	if k, _ := get(t, c, p+"c"); k.CreateRevision == 0 {
		t.Fatal("revoke deleted an unleased key")
	}

	// Expiry without keepalives.
	id, _, err = c.Grant(ctx, time.Second)
	must(t, err)
	txn(t, c, kv.Txn{Then: []kv.Op{kv.Put(p+"e", nil, id)}})
	deadline := time.Now().Add(Deadline)
	for {
		if k, _ := get(t, c, p+"e"); k.CreateRevision == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("leased key outlived its lease")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err = c.KeepAliveOnce(ctx, id)
	mustBe(t, err, kv.ErrLeaseNotFound)
}
