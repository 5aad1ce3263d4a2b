package namespace

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
)

// TestEndToEndEmbeddedEtcd runs the log core on a real embedded etcd
// (leases, watches, transactions): a writer rolls segments while a reader
// tails, loses its lock to a second writer, which recovers and continues;
// a truncation and a collection follow. Every acknowledged record is read
// exactly once, in order.
func TestEndToEndEmbeddedEtcd(t *testing.T) {
	c := startCluster(t, 3, "embedded:")
	small := func(cfg *Config) {
		cfg.SegmentRollBytes = 16 << 10
		cfg.FlushBytes = 1 << 10
	}
	nsA := openNS(t, c, small)
	nsB := openNS(t, c, small)
	ctx := deadline(t, 3*time.Minute)
	const log = "etcd"
	createLog(t, nsB, log)
	r, err := nsB.OpenReader(ctx, log, AtStart(), ReaderOptions{})
	must(t, err, "open reader")
	tl := startTailer(ctx, r, dlog.InitialDLSN)

	h := newHistory()
	wA, err := nsA.OpenWriter(ctx, log, WriterOptions{})
	must(t, err, "open writer A")
	next := writeUntil(ctx, wA, h, 0, 800, 32, 100, nil)
	expireSession(t, nsA)
	waitFor(t, ctx, "A fenced", func() bool { return errors.Is(wA.Err(), dlog.ErrFenced) })
	wA.Close(ctx)
	wB, err := nsB.OpenWriter(ctx, log, WriterOptions{Wait: true})
	must(t, err, "open writer B")
	writeUntil(ctx, wB, h, next, 800, 32, 100, nil)
	end := wB.LastDLSN()
	recs, err := tl.finish(end)
	must(t, err, "tailer")
	final := readAll(t, ctx, nsB, log, end)
	checkReads(t, final, h, map[string][]dlog.ReadRecord{"tail": recs}, map[string]dlog.DLSN{"tail": dlog.InitialDLSN})
	if len(final) != 1600 || len(recs) != 1600 {
		t.Fatalf("log has %d records, tailer read %d; want 1600", len(final), len(recs))
	}

	cut := final[1000].DLSN
	must(t, nsB.Truncate(ctx, log, cut), "truncate through the writer")
	must(t, nsB.RunGC(ctx), "gc")
	first, err := nsB.FirstDLSN(ctx, log)
	if err != nil || first != cut {
		t.Fatalf("first record %v (%v); want %v", first, err, cut)
	}
	segs, err := nsB.ListSegments(ctx, log)
	must(t, err, "segments")
	if segs[0].LSSN != cut.LSSN {
		t.Fatalf("first segment %d after collection; want %d", segs[0].LSSN, cut.LSSN)
	}
	must(t, wB.Close(ctx), "close B")
	n, err := nsB.RecordCount(ctx, log)
	if err != nil || n != 600 {
		t.Fatalf("record count %d (%v); want 600", n, err)
	}

	// A namespace that dials etcd itself (by URL) sees the same log.
	kv, ok := c.Store().(*metadata.KVStore)
	if !ok {
		t.Fatalf("cluster store is %T", c.Store())
	}
	cfg := testConfig(t, c)
	cfg.Store = nil
	cfg.MetadataURL = strings.Join(kv.Endpoints(), ",")
	nsURL, err := Open(ctx, cfg)
	must(t, err, "open namespace by URL")
	defer nsURL.Close()
	last, err := nsURL.GetLastRecord(ctx, log)
	if err != nil || last.DLSN != end {
		t.Fatalf("last record through a URL-opened namespace: %v %v; want %v", last.DLSN, err, end)
	}
}
