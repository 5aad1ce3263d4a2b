package namespace

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dlog-io/dlog"
)

// TestIdempotencyTags: tags written with records come back from readers
// (uncompressed and compressed entries, single writes, bulks, record
// sets) and from GetLastRecord; bad tags are refused before anything is
// written.
func TestIdempotencyTags(t *testing.T) {
	c := startCluster(t, 3, "memory:")
	for _, codec := range []string{"none", "lz4"} {
		t.Run(codec, func(t *testing.T) {
			n := openNS(t, c, func(cfg *Config) { cfg.Compression = codec; cfg.Namespace = "tags-" + codec })
			ctx := deadline(t, 2*time.Minute)
			createLog(t, n, "tagged")
			w, err := n.OpenWriter(ctx, "tagged", WriterOptions{})
			must(t, err, "open writer")
			// A compressible payload so that lz4 really compresses.
			p := func(s string) []byte { return []byte(s + strings.Repeat(" padding", 40)) }
			_, err = w.Write(ctx, dlog.Record{TxID: 1, Payload: p("a"), ProducerID: "prod-1", Sequence: 5})
			must(t, err, "tagged write")
			_, err = w.Write(ctx, dlog.Record{TxID: 2, Payload: p("b")})
			must(t, err, "untagged write")
			_, err = w.WriteBulk(ctx, []dlog.Record{
				{TxID: 3, Payload: p("c"), ProducerID: "prod-2", Sequence: 0},
				{TxID: 3, Payload: p("d"), ProducerID: "prod-2", Sequence: 1},
			})
			must(t, err, "tagged bulk")
			_, err = w.WriteRecordSet(ctx, []dlog.Record{
				{TxID: 4, Payload: p("e")},
				{TxID: 4, Payload: p("f"), ProducerID: "prod-3", Sequence: 1 << 40},
			})
			must(t, err, "record set")
			for name, bad := range map[string]dlog.Record{
				"sequence without producer": {TxID: 9, Sequence: 1},
				"negative sequence":         {TxID: 9, ProducerID: "p", Sequence: -1},
				"space in producer":         {TxID: 9, ProducerID: "a b"},
				"producer too long":         {TxID: 9, ProducerID: strings.Repeat("p", dlog.MaxProducerIDLength+1)},
			} {
				if _, err := w.Write(ctx, bad); !errors.Is(err, dlog.ErrInvalidArgument) || !dlog.IsDefinite(err) {
					t.Fatalf("%s: %v", name, err)
				}
			}
			must(t, w.Close(ctx), "close writer")

			want := []string{"a/prod-1/5", "b//0", "c/prod-2/0", "d/prod-2/1", "e//0", fmt.Sprintf("f/prod-3/%d", int64(1)<<40)}
			r, err := n.OpenReader(ctx, "tagged", AtStart(), ReaderOptions{})
			must(t, err, "open reader")
			defer r.Close()
			recs := readN(t, ctx, r, len(want))
			for i, rec := range recs {
				if got := fmt.Sprintf("%c/%s/%d", rec.Payload[0], rec.ProducerID, rec.Sequence); got != want[i] {
					t.Fatalf("record %d: %s, want %s", i, got, want[i])
				}
			}
			last, err := n.GetLastRecord(ctx, "tagged")
			must(t, err, "last record")
			if last.ProducerID != "prod-3" || last.Sequence != 1<<40 || last.Payload[0] != 'f' {
				t.Fatalf("last record %c tag %q", last.Payload[0], last.ProducerID)
			}
		})
	}
}
