package ledger

import (
	"fmt"
	"testing"
	"time"

	"github.com/dlog-io/dlog/internal/metadata"
)

// topologyClient returns a ledger client whose registry holds 12 bookies:
// regions r0..r2, two racks per region, two bookies per rack (registered
// on an in-memory store; nothing is ever sent to them). where maps a
// bookie id to its region and rack.
func topologyClient(t *testing.T, tune func(*Config)) (cl *Client, where map[string][2]string) {
	t.Helper()
	ctx := deadline(t, 30*time.Second)
	st, err := metadata.Open(ctx, "memory:", metadata.Options{})
	must(t, err, "open store")
	t.Cleanup(func() { _ = st.Close() })
	s, err := st.NewSession(ctx, time.Minute)
	must(t, err, "session")
	where = make(map[string][2]string)
	for r := range 3 {
		for k := range 2 {
			for i := range 2 {
				id := fmt.Sprintf("b-r%d-k%d-%d", r, k, i)
				region, rack := fmt.Sprintf("r%d", r), fmt.Sprintf("r%d-k%d", r, k)
				where[id] = [2]string{region, rack}
				must(t, st.RegisterBookie(ctx, s, metadata.BookieInfo{
					ID: id, Address: fmt.Sprintf("127.0.0.1:%d", 1+len(where)),
					Region: region, Rack: rack, State: metadata.BookieWritable,
				}), "register %s", id)
			}
		}
	}
	cfg := testConfig(t)
	if tune != nil {
		tune(&cfg)
	}
	cl, err = New(ctx, st, cfg)
	must(t, err, "new client")
	t.Cleanup(func() { _ = cl.Close() })
	waitUntil(t, 10*time.Second, "the client to see every bookie", func() bool {
		_, ok := cl.Address("b-r2-k1-1")
		return ok
	})
	return cl, where
}

// TestCreatePlacement: Create places ensembles with the configured policy
// (rack-aware: every write set spans two racks; region-aware: every ack
// quorum spans MinRegions regions) and refuses, with ErrInvalidArgument,
// sizes that BookKeeper's region rule Qa > Qw − Qw/minRegions forbids.
func TestCreatePlacement(t *testing.T) {
	t.Run("rack-aware", func(t *testing.T) {
		cl, where := topologyClient(t, func(cfg *Config) { cfg.Placement = PlacementRackAware })
		ctx := deadline(t, 30*time.Second)
		for range 20 {
			w, err := cl.Create(ctx, CreateOptions{EnsembleSize: 5, WriteQuorum: 3, AckQuorum: 2})
			must(t, err, "create")
			ens := w.Metadata().Fragments[0].Bookies
			w.Abort()
			for e := range 5 {
				racks := map[string]bool{}
				for _, idx := range w.p.WriteSet(int64(e)) {
					racks[where[ens[idx]][1]] = true
				}
				if len(racks) < 2 {
					t.Fatalf("ensemble %v: write set of entry %d is in one rack", ens, e)
				}
			}
		}
	})
	t.Run("region-aware", func(t *testing.T) {
		cl, where := topologyClient(t, func(cfg *Config) { cfg.Placement, cfg.MinRegions = PlacementRegionAware, 2 })
		ctx := deadline(t, 30*time.Second)
		_, err := cl.Create(ctx, CreateOptions{EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2})
		wantErr(t, err, ErrInvalidArgument, "Qa 2 with Qw 3 over 2 regions (2 > 3 - 3/2 fails)")
		for _, opts := range []CreateOptions{
			{EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 3},
			{EnsembleSize: 4, WriteQuorum: 4, AckQuorum: 3},
			{EnsembleSize: 6, WriteQuorum: 4, AckQuorum: 3},
		} {
			for range 10 {
				w, err := cl.Create(ctx, opts)
				must(t, err, "create %+v", opts)
				md := w.Metadata()
				w.Abort()
				if md.MinRegions != 2 {
					t.Fatalf("metadata records MinRegions %d, want 2", md.MinRegions)
				}
				ens := md.Fragments[0].Bookies
				for e := range opts.EnsembleSize {
					ws := w.p.WriteSet(int64(e))
					// Every subset of Qa members of the write set spans
					// two regions: no region holds Qa of them.
					count := map[string]int{}
					for _, idx := range ws {
						count[where[ens[idx]][0]]++
					}
					for region, n := range count {
						if n >= opts.AckQuorum {
							t.Fatalf("%+v ensemble %v: %d members of entry %d's write set in %s, an ack quorum could stay in one region", opts, ens, n, e, region)
						}
					}
				}
			}
		}
	})
}

// TestReadOrderLocality: reads try the write set's bookies in the client's
// rack first, then its region, then the rest.
func TestReadOrderLocality(t *testing.T) {
	cl, _ := topologyClient(t, func(cfg *Config) { cfg.Region, cfg.Rack = "r1", "r1-k0" })
	ws := []string{"b-r2-k0-0", "b-r1-k1-0", "b-r0-k0-1", "b-r1-k0-1", "unknown"}
	got := cl.readOrder(ws)
	want := []string{"b-r1-k0-1", "b-r1-k1-0", "b-r2-k0-0", "b-r0-k0-1", "unknown"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read order %v, want %v", got, want)
	}
	if fmt.Sprint(ws) != "[b-r2-k0-0 b-r1-k1-0 b-r0-k0-1 b-r1-k0-1 unknown]" {
		t.Fatalf("readOrder modified its argument: %v", ws)
	}
}
