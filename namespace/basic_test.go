package namespace

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
)

func TestWriteReadBasic(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	n := openNS(t, c)
	ctx := deadline(t, 60*time.Second)
	createLog(t, n, "basic")
	w, err := n.OpenWriter(ctx, "basic", WriterOptions{})
	must(t, err, "open writer")
	const k = 200
	var dlsns []dlog.DLSN
	for i := range k {
		d, err := w.Write(ctx, dlog.Record{TxID: int64(i), Payload: payload(uint64(i), 50)})
		must(t, err, "write %d", i)
		dlsns = append(dlsns, d)
	}
	must(t, w.Close(ctx), "close writer")

	r, err := n.OpenReader(ctx, "basic", AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	defer r.Close()
	recs := readN(t, ctx, r, k)
	checkSequence(t, recs)
	for i, rec := range recs {
		if rec.DLSN != dlsns[i] || rec.TxID != int64(i) || rec.SequenceID != int64(i) || payloadID(t, rec.Payload) != uint64(i) {
			t.Fatalf("record %d: %+v (want %v)", i, rec, dlsns[i])
		}
	}
	short := deadline(t, 200*time.Millisecond)
	if _, err := r.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("next at the end: %v", err)
	}
	last, err := n.GetLastRecord(ctx, "basic")
	must(t, err, "last record")
	if last.DLSN != dlsns[k-1] || last.SequenceID != k-1 {
		t.Fatalf("last record %+v", last)
	}
	cnt, err := n.RecordCount(ctx, "basic")
	must(t, err, "count")
	if cnt != k {
		t.Fatalf("count %d", cnt)
	}
	d, err := n.DLSNForTxID(ctx, "basic", 77)
	must(t, err, "dlsn for txid")
	if d != dlsns[77] {
		t.Fatalf("txid 77 at %v, want %v", d, dlsns[77])
	}
}
