package namespace

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
)

// TestRoundTrip writes many records of random sizes across many rolled
// segments (a small roll size), then reads them back from the start, from
// random DLSNs and from random txids, checking payloads, DLSNs, txids and
// consecutive sequence ids.
func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name        string
		short, long int
		maxSize     int
		flushBytes  int
		codec       string
		rollBytes   int64
	}{
		{"batched lz4", 50_000, 1_000_000, 300, 16 << 10, "lz4", 128 << 10},
		{"batched zstd", 5_000, 100_000, 2_000, 64 << 10, "zstd", 256 << 10},
		{"one record per entry", 2_000, 50_000, 200, 0, "none", 32 << 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			total := tc.long
			switch {
			case testing.Short():
				total = tc.short
			case raceEnabled:
				total = tc.long / 4
			}
			c := startCluster(t, 3, "memory:")
			n := openNS(t, c, func(cfg *Config) {
				cfg.FlushBytes = tc.flushBytes
				cfg.Compression = tc.codec
				cfg.SegmentRollBytes = tc.rollBytes
			})
			ctx := deadline(t, 7*time.Minute)
			createLog(t, n, "rt")
			w, err := n.OpenWriter(ctx, "rt", WriterOptions{})
			must(t, err, "open writer")
			rng := rand.New(rand.NewPCG(1, uint64(total)))
			sizes := make([]int, total)
			futs := make([]*Future, 0, total)
			for i := range total {
				sizes[i] = 8 + rng.IntN(tc.maxSize)
				// Bound the pending records (WriteAsync fails fast when full).
				if len(futs) >= 5_000 {
					if _, err := futs[len(futs)-5_000].Wait(ctx); err != nil {
						t.Fatalf("write %d: %v", len(futs)-5_000, err)
					}
				}
				futs = append(futs, w.WriteAsync(dlog.Record{TxID: int64(i / 3), Payload: payload(uint64(i), sizes[i])}))
			}
			dlsns := make([]dlog.DLSN, total)
			for i, f := range futs {
				d, err := f.Wait(ctx)
				must(t, err, "write %d", i)
				dlsns[i] = d
			}
			must(t, w.Close(ctx), "close writer")
			segs, err := n.ListSegments(ctx, "rt")
			must(t, err, "list segments")
			if len(segs) < 3 {
				t.Fatalf("only %d segments: no roll", len(segs))
			}
			t.Logf("%d records in %d segments", total, len(segs))

			check := func(from int, recs []dlog.ReadRecord) {
				t.Helper()
				for k, rec := range recs {
					i := from + k
					if rec.DLSN != dlsns[i] || rec.TxID != int64(i/3) || rec.SequenceID != int64(i) || len(rec.Payload) != sizes[i] || payloadID(t, rec.Payload) != uint64(i) {
						t.Fatalf("record %d: dlsn %v txid %d seq %d size %d; want %v %d %d %d", i, rec.DLSN, rec.TxID, rec.SequenceID, len(rec.Payload), dlsns[i], i/3, i, sizes[i])
					}
				}
			}
			r, err := n.OpenReader(ctx, "rt", AtStart(), ReaderOptions{})
			must(t, err, "open reader")
			all := readN(t, ctx, r, total)
			check(0, all)
			r.Close()

			probes := 20
			if testing.Short() {
				probes = 5 // each probe opens readers: fixed costs dominate
			}
			for range probes {
				i := rng.IntN(total)
				r, err := n.OpenReader(ctx, "rt", AtDLSN(dlsns[i]), ReaderOptions{})
				must(t, err, "open reader at %v", dlsns[i])
				check(i, readN(t, ctx, r, min(50, total-i)))
				r.Close()

				txid := int64(rng.IntN(total / 3))
				r, err = n.OpenReader(ctx, "rt", AtTxID(txid), ReaderOptions{})
				must(t, err, "open reader at txid %d", txid)
				check(int(txid*3), readN(t, ctx, r, min(10, total-int(txid*3))))
				r.Close()
				d, err := n.DLSNForTxID(ctx, "rt", txid)
				must(t, err, "dlsn for txid %d", txid)
				if d != dlsns[txid*3] {
					t.Fatalf("DLSNForTxID(%d) = %v; want %v", txid, d, dlsns[txid*3])
				}
			}
			count, err := n.RecordCount(ctx, "rt")
			must(t, err, "record count")
			if count != int64(total) {
				t.Fatalf("record count %d; want %d", count, total)
			}
		})
	}
}
