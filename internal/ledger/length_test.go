package ledger

import (
	"bytes"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
	"github.com/dlog-io/dlog/internal/quorum"
)

// TestFrame: the entry formats' framing round-trips, and bytes that cannot
// be an entry of the format are refused.
func TestFrame(t *testing.T) {
	for _, p := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("ab"), 1000)} {
		b := frame(formatLength, 5000+int64(len(p)), p)
		got, n, ok := unframe(formatLength, b)
		if !ok || n != 5000+int64(len(p)) || !bytes.Equal(got, p) {
			t.Fatalf("formatLength %d bytes: got %d bytes, length %d, ok %v", len(p), len(got), n, ok)
		}
		got, n, ok = unframe(formatRaw, frame(formatRaw, 7, p))
		if !ok || n != -1 || !bytes.Equal(got, p) {
			t.Fatalf("formatRaw %d bytes: got %d bytes, length %d, ok %v", len(p), len(got), n, ok)
		}
	}
	for _, b := range [][]byte{nil, {0, 0, 0}, frame(formatLength, 2, []byte("abc"))} {
		if _, _, ok := unframe(formatLength, b); ok {
			t.Fatalf("unframe accepted %x", b)
		}
	}
	if err := checkFormat(1, 2); err == nil {
		t.Fatal("checkFormat accepted an unknown format")
	}
}

// TestRecoveryLengthFallback: when neither the scan nor a fence answer
// held the last entry, recovery reads it from its fragment to learn the
// length; a format 0 ledger's length is unknown (-1).
func TestRecoveryLengthFallback(t *testing.T) {
	c := startCluster(t, 3)
	cl := newClient(t, c)
	ctx := deadline(t, 60*time.Second)
	w, err := cl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	for e := range int64(7) {
		_, err := w.Add(ctx, payload("len", e, 10+int(e)))
		must(t, err, "add %d", e)
	}
	md, err := w.Close(ctx)
	must(t, err, "close")
	r := &recovery{
		c: cl, id: w.ID(), md: md, lengths: make(map[int64]int64),
		p: quorum.Params{EnsembleSize: md.EnsembleSize, WriteQuorum: md.WriteQuorum, AckQuorum: md.AckQuorum},
	}
	got, err := r.length(ctx, md.LastEntryID)
	must(t, err, "length by read")
	if got != md.Length {
		t.Fatalf("length read from entry %d: %d, the writer closed with %d", md.LastEntryID, got, md.Length)
	}
	if got, err := r.length(ctx, -1); err != nil || got != 0 {
		t.Fatalf("length of an empty ledger: %d, %v", got, err)
	}
	r.md.EntryFormat = formatRaw
	if got, err := r.length(ctx, md.LastEntryID); err != nil || got != -1 {
		t.Fatalf("length of a format 0 ledger: %d, %v; want -1", got, err)
	}
}

// TestLegacyFormatLedger: a ledger written in entry format 0 (payloads as
// is, as before format 1 existed) is still written, read and recovered;
// recovery records its length as unknown (-1).
func TestLegacyFormatLedger(t *testing.T) {
	c := startCluster(t, 3)
	cl := newClient(t, c, func(cfg *Config) { cfg.ExplicitLACDelay = 0 })
	ctx := deadline(t, 60*time.Second)
	probe, err := cl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create probe")
	probe.Abort()
	md := probe.Metadata()
	md.EntryFormat = formatRaw
	id, err := cl.store.NewLedgerID(ctx)
	must(t, err, "ledger id")
	ver, err := cl.store.CreateLedger(ctx, id, md)
	must(t, err, "create format 0 ledger")
	w, err := newWriter(cl, id, md, ver)
	must(t, err, "writer")
	acked := make(map[int64][]byte)
	for e := range int64(5) {
		p := payload("legacy", e, 32)
		got, err := w.Add(ctx, p)
		must(t, err, "add %d", e)
		acked[got] = p
	}
	w.Abort()
	// The bookies hold the payload as is. An ack needs only Qa of the
	// write set: a bookie may not have the entry yet, so check those that do.
	held := 0
	for _, b := range md.Fragments[0].Bookies {
		raw, err := cl.BookieClient().Read(ctx, c.Addr(c.Index(b)), &bookiepb.ReadRequest{LedgerId: id, EntryId: 0})
		if err != nil {
			continue
		}
		held++
		if !bytes.Equal(raw.Entry.GetPayload(), acked[0]) {
			t.Fatalf("format 0 entry stored on %s as %q, want %q", b, raw.Entry.GetPayload(), acked[0])
		}
	}
	if held < md.AckQuorum {
		t.Fatalf("entry 0 on %d bookies, want at least Qa=%d", held, md.AckQuorum)
	}
	rmd, err := newClient(t, c).Recover(ctx, id)
	must(t, err, "recover")
	if rmd.State != metadata.LedgerClosed || rmd.LastEntryID != 4 || rmd.Length != -1 {
		t.Fatalf("recovered %v at %d length %d, want CLOSED at 4 length -1", rmd.State, rmd.LastEntryID, rmd.Length)
	}
	checkReadable(t, cl, id, acked)
}
