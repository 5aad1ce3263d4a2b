package ledger

import (
	"bytes"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/metadata"
)

func TestCreateAddReadClose(t *testing.T) {
	c := startCluster(t, 3)
	cl := newClient(t, c)
	ctx := deadline(t, 60*time.Second)
	w, err := cl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	const n = 50
	var total int64
	for e := range int64(n) {
		p := payload("basic", e, 100)
		total += int64(len(p))
		id, err := w.Add(ctx, p)
		must(t, err, "add %d", e)
		if id != e {
			t.Fatalf("add %d got id %d", e, id)
		}
	}
	md, err := w.Close(ctx)
	must(t, err, "close")
	if md.State != metadata.LedgerClosed || md.LastEntryID != n-1 || md.Length != total {
		t.Fatalf("closed metadata: state %v last %d length %d, want CLOSED %d %d", md.State, md.LastEntryID, md.Length, n-1, total)
	}
	r, err := cl.OpenReader(ctx, w.ID())
	must(t, err, "open reader")
	if r.LAC() != n-1 || !r.Sealed() {
		t.Fatalf("reader LAC %d sealed %v", r.LAC(), r.Sealed())
	}
	got, err := r.Read(ctx, 0, n-1)
	must(t, err, "read")
	for e, g := range got {
		if g.ID != int64(e) || !bytes.Equal(g.Payload, payload("basic", int64(e), 100)) {
			t.Fatalf("entry %d: got %d %q", e, g.ID, g.Payload)
		}
	}
}
