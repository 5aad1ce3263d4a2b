package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/dlog-io/dlog/internal/cluster"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/nemesis"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// Fault helpers of the nemeses: owners, ensembles, takeovers and
// protocol-aware detours.

// Owner returns the agent that owns log, or nil.
func (r *Run) Owner(ctx context.Context, log string) *Owner {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return r.C.OwnerOf(cctx, log)
}

// Others returns every agent but a.
func (r *Run) Others(a *Owner) []*Owner {
	var out []*Owner
	for _, b := range r.C.Owners {
		if b != a {
			out = append(out, b)
		}
	}
	return out
}

// Ensemble returns the bookies of the last fragment of log's in-progress
// segment (nil if there is none).
func (r *Run) Ensemble(ctx context.Context, log string) []*Bookie {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := r.C.Store.GetLogState(cctx, namespaceName, log)
	if err != nil {
		return nil
	}
	for i := len(st.Segments) - 1; i >= 0; i-- {
		s := st.Segments[i]
		if s.State != metadata.SegmentInProgress {
			continue
		}
		md, _, err := r.C.Store.GetLedger(cctx, s.LedgerID)
		if err != nil || len(md.Fragments) == 0 {
			return nil
		}
		var out []*Bookie
		for _, id := range md.Fragments[len(md.Fragments)-1].Bookies {
			if b := r.C.BookieByID(id); b != nil {
				out = append(out, b)
			}
		}
		return out
	}
	return nil
}

// Acquire asks agent a to take log over (open its writer, recovering the
// previous owner's segment). It returns the agent's error, if any.
func (r *Run) Acquire(ctx context.Context, a *Owner, log string) error {
	if r.proxy != nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return r.proxy.acquire(cctx, a, log)
	}
	addr := a.Addr()
	if addr == "" || !a.Proc.Running() {
		return fmt.Errorf("%s is down", a.Name)
	}
	b, _ := json.Marshal(agentLogReq{Log: log})
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, "http://"+addr+"/acquire", bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var out agentResp
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return err
	}
	if out.Err != nil {
		return out.Err
	}
	return nil
}

// AcquireUntil keeps asking a to take log over until it owns it or d
// passes; it reports whether it took over.
func (r *Run) AcquireUntil(ctx context.Context, a *Owner, log string, d time.Duration) bool {
	return waitUntil(ctx, d, func() bool {
		return r.Acquire(ctx, a, log) == nil && r.Owner(ctx, log) == a
	})
}

// WaitOwner waits until log's owner satisfies ok (or d passes).
func (r *Run) WaitOwner(ctx context.Context, log string, d time.Duration, ok func(*Owner) bool) *Owner {
	var got *Owner
	waitUntil(ctx, d, func() bool {
		got = r.Owner(ctx, log)
		return ok(got)
	})
	return got
}

// Cut black-holes both directions between process src and each server.
func (r *Run) Cut(src string, servers ...string) {
	for _, s := range servers {
		r.C.Net.SetLink(src, s, nemesis.Blackhole)
	}
}

// EtcdNames returns the etcd members' names (their link names).
func (r *Run) EtcdNames() []string {
	out := make([]string, len(r.C.Etcd))
	for i := range r.C.Etcd {
		out[i] = etcdName(i)
	}
	return out
}

// detour is a protocol-aware proxy on one (source, bookie) path.
type detour struct {
	front *nemesis.Front
	src   string
	proxy *cluster.Proxy
}

// Detour routes src's connections to bookie b through a bookie-protocol
// proxy whose request filter is f (pass, drop or hold each message), e.g.
// to lose exactly the fence requests of one recovery. HealAll removes it.
func (r *Run) Detour(b *Bookie, src string, f func(*bookiepb.Request) cluster.Verdict) error {
	p, err := cluster.NewProxy(b.Front.Target())
	if err != nil {
		return err
	}
	p.OnRequest(f)
	b.Front.SetSourceTarget(src, p.Addr())
	r.mu.Lock()
	r.mu.detours = append(r.mu.detours, detour{b.Front, src, p})
	r.mu.Unlock()
	return nil
}

// removeDetours undoes every Detour of r.
func (r *Run) removeDetours() {
	r.mu.Lock()
	ds := r.mu.detours
	r.mu.detours = nil
	r.mu.Unlock()
	for _, d := range ds {
		d.front.SetSourceTarget(d.src, "")
		d.proxy.Close()
	}
}

// openLedger returns the ledger id of log's in-progress segment, or -1.
func (r *Run) openLedger(ctx context.Context, log string) int64 {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := r.C.Store.GetLogState(cctx, namespaceName, log)
	if err != nil {
		return -1
	}
	for i := len(st.Segments) - 1; i >= 0; i-- {
		if st.Segments[i].State == metadata.SegmentInProgress {
			return st.Segments[i].LedgerID
		}
	}
	return -1
}
