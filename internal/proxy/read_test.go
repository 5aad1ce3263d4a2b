package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
)

// TestReadPositions: a Read starts at a txid (the first record with a txid
// at or above it) and at the end of the log (only records written after
// it started, following the tail).
func TestReadPositions(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	p := e.proxy()
	c := newClient(t, []string{p.AdvertiseAddr()})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const log = "positions"
	if err := c.CreateLog(ctx, log, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteBulk(ctx, log, []dlog.Record{
		{TxID: 100, Payload: []byte("t100")}, {TxID: 200, Payload: []byte("t200")}, {TxID: 300, Payload: []byte("t300")},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Heartbeat(ctx, log); err != nil {
		t.Fatal(err)
	}
	read := func(pos client.Position) []string {
		r, err := c.OpenReader(ctx, log, pos, client.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var got []string
		for rec, err := range r.All(ctx) {
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(rec.Payload))
		}
		return got
	}
	if got := fmt.Sprint(read(client.AtTxID(150))); got != "[t200 t300]" {
		t.Fatalf("from txid 150: %s", got)
	}
	if got := fmt.Sprint(read(client.AtTxID(300))); got != "[t300]" {
		t.Fatalf("from txid 300: %s", got)
	}
	if got := read(client.AtTxID(301)); len(got) != 0 {
		t.Fatalf("from txid 301: %v", got)
	}

	// At the end, following: the reader's start is settled when its
	// stream starts, so write markers until one arrives; nothing written
	// before the reader was opened may.
	r, err := c.OpenReader(ctx, log, client.AtEnd(), client.ReadOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var first dlog.ReadRecord
	for i := 0; ; i++ {
		if _, err := c.Write(ctx, log, dlog.Record{Payload: fmt.Appendf(nil, "marker-%d", i)}); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		first, err = r.Next(wctx)
		wcancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no marker arrived: %v", err)
		}
	}
	if !strings.HasPrefix(string(first.Payload), "marker-") {
		t.Fatalf("reader at the end delivered %q, written before it started", first.Payload)
	}
	last, err := c.Write(ctx, log, dlog.Record{Payload: []byte("after")})
	if err != nil {
		t.Fatal(err)
	}
	prev := first.DLSN
	for {
		rec, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !prev.Less(rec.DLSN) {
			t.Fatalf("%v after %v", rec.DLSN, prev)
		}
		prev = rec.DLSN
		if rec.DLSN == last.DLSN {
			if string(rec.Payload) != "after" {
				t.Fatalf("record at %v: %q", rec.DLSN, rec.Payload)
			}
			break
		}
	}
}
