package ledger

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// blockingStore holds UpdateLedger calls while armed, until released: a
// metadata service that stalls at the worst moment.
type blockingStore struct {
	metadata.Store
	armed   atomic.Bool
	once    sync.Once
	entered chan struct{} // closed when the first call is held
	release chan struct{} // closed to let held calls through
}

func newBlockingStore(s metadata.Store) *blockingStore {
	return &blockingStore{Store: s, entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *blockingStore) UpdateLedger(ctx context.Context, id int64, m metadata.LedgerMetadata, expect metadata.Version) (metadata.Version, error) {
	if s.armed.Load() {
		s.once.Do(func() { close(s.entered) })
		select {
		case <-s.release:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return s.Store.UpdateLedger(ctx, id, m, expect)
}

// casResult is what the ack-before-CAS scenario observed while the
// ensemble change's CAS was held.
type casResult struct {
	ackedDuringCAS  int   // entries >= 10 acknowledged while the CAS was held
	sentToNewMember int64 // adds the replacement got while the CAS was held
	acked           map[int64][]byte
}

// ackBeforeCAS: E=Qw=3, Qa=2 on four bookies. Entries from 10 on reach
// only X (Z's proxy drops them; Y is killed), so each needs the
// replacement's ack. The metadata CAS of the ensemble change is held.
// Correct code sends nothing to the replacement and acknowledges nothing
// until the CAS completes (BookKeeper #1591); with AckBeforeEnsembleCAS
// the entries are acknowledged while metadata does not name the bookie
// holding their second copy.
func ackBeforeCAS(t *testing.T, waitForAck bool) casResult {
	c := startCluster(t, 4)
	store := newBlockingStore(c.Store())
	cfg := testConfig(t)
	cfg.AddTimeout = time.Minute // Z's silence must not trigger its replacement
	cfg.MetadataTimeout = time.Minute
	cfg.ExplicitLACDelay = 0
	cl, err := New(t.Context(), store, cfg)
	must(t, err, "client")
	t.Cleanup(func() { _ = cl.Close() })
	ctx := deadline(t, 60*time.Second)
	w, err := cl.Create(ctx, DefaultCreateOptions())
	must(t, err, "create")
	defer w.Abort()
	ens := w.Metadata().Fragments[0].Bookies
	y, z := c.Index(ens[1]), c.Index(ens[2])
	spare := -1
	for i := range c.Len() {
		if i != c.Index(ens[0]) && i != y && i != z {
			spare = i
		}
	}
	var toSpare atomic.Int64
	c.Proxy(spare).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
		if r.GetAdd() != nil {
			toSpare.Add(1)
		}
		return cluster.Pass
	})
	c.Proxy(z).OnRequest(func(r *bookiepb.Request) cluster.Verdict {
		if a := r.GetAdd(); a != nil && !a.Recovery && a.Entry.GetEntryId() >= 10 {
			return cluster.Drop
		}
		return cluster.Pass
	})
	log := newAckLog()
	for e := range int64(10) {
		data := payload("cas", e, 32)
		id, err := w.Add(ctx, data)
		must(t, err, "add %d", e)
		log.record(data)(id, nil)
	}
	store.armed.Store(true)
	must(t, c.Kill(y), "kill Y")
	for e := int64(10); e < 15; e++ {
		data := payload("cas", e, 32)
		must(t, w.AddAsync(ctx, data, log.record(data)), "add %d", e)
	}
	select {
	case <-store.entered:
	case <-ctx.Done():
		t.Fatal("the ensemble change never reached the metadata CAS")
	}
	var res casResult
	if waitForAck {
		waitUntil(t, 30*time.Second, "an entry acknowledged while the CAS is held", func() bool {
			acked, _, _ := log.snapshot()
			return len(acked) > 10
		})
	}
	acked, _, _ := log.snapshot()
	res.ackedDuringCAS = len(acked) - 10
	res.sentToNewMember = toSpare.Load()
	close(store.release)
	waitUntil(t, 30*time.Second, "every add acknowledged after the CAS", func() bool {
		acked, _, _ := log.snapshot()
		return len(acked) == 15
	})
	res.acked, _, _ = log.snapshot()
	// (With the bug, acks may all be in before the CAS returns.)
	waitUntil(t, 30*time.Second, "the new fragment in the writer's metadata", func() bool {
		md := w.Metadata()
		return len(md.Fragments) == 2 && md.Fragments[1].Bookies[1] == c.ID(spare)
	})
	stored, _, err := cl.Metadata(ctx, w.ID())
	must(t, err, "metadata")
	if len(stored.Fragments) != 2 || stored.Fragments[1].FirstEntryID != 10 || stored.Fragments[1].Bookies[1] != c.ID(spare) {
		t.Fatalf("stored metadata after the change: %+v, want a fragment from 10 with %s at index 1", stored.Fragments, c.ID(spare))
	}
	return res
}

// TestNoAckBeforeEnsembleCAS: while the ensemble change's CAS is held the
// replacement gets nothing and no entry that needs it is acknowledged;
// once the CAS completes they all are, with Qa copies each.
func TestNoAckBeforeEnsembleCAS(t *testing.T) {
	res := ackBeforeCAS(t, false)
	if res.ackedDuringCAS != 0 || res.sentToNewMember != 0 {
		t.Fatalf("while the CAS was held: %d entries acknowledged, %d adds sent to the replacement; want none",
			res.ackedDuringCAS, res.sentToNewMember)
	}
}
