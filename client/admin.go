package client

import (
	"context"
	"fmt"
	"iter"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/internal/proxy/status"
)

// Release makes the proxy owning log give it up (complete its segment and
// release the lock); the next write takes it over again, possibly on
// another proxy. A log nobody owns is a no-op.
func (c *Client) Release(ctx context.Context, log string) error {
	if err := checkLog(log); err != nil {
		return err
	}
	_, err := c.call(ctx, c.logKey(log), routeOwner, true, func(ctx context.Context, s *stubs) error {
		_, err := s.admin.Release(ctx, connect.NewRequest(&dlogpb.ReleaseRequest{Log: c.ref(log)}))
		return err
	})
	c.forgetOwner(c.logKey(log), "")
	return err
}

// SetAcceptNewLogs drains (false) or reopens (true) the proxy at server:
// a draining proxy keeps serving the logs it owns and refuses new ones,
// which clients then send to other proxies.
func (c *Client) SetAcceptNewLogs(ctx context.Context, server string, accept bool) error {
	_, err := c.stubsFor(server).admin.SetAcceptNewLogs(ctx, connect.NewRequest(&dlogpb.SetAcceptNewLogsRequest{Accept: accept}))
	return status.FromConnect(err, "")
}

// ProxyInfo is a live proxy's registration.
type ProxyInfo struct {
	ID, Address, HTTPAddress, Region string
	AcceptNewLogs                    bool
}

// Proxies lists the live proxies (and refreshes the client's ring).
func (c *Client) Proxies(ctx context.Context) ([]ProxyInfo, error) {
	var m *dlogpb.ListProxiesResponse
	_, err := c.call(ctx, "", routeAny, true, func(ctx context.Context, s *stubs) error {
		r, err := s.admin.ListProxies(ctx, connect.NewRequest(&dlogpb.ListProxiesRequest{}))
		if err == nil {
			m = r.Msg
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]ProxyInfo, len(m.GetProxies()))
	var addrs []string
	accept := make(map[string]bool)
	for i, p := range m.GetProxies() {
		out[i] = ProxyInfo{ID: p.GetId(), Address: p.GetAddress(), HTTPAddress: p.GetHttpAddress(), Region: p.GetRegion(), AcceptNewLogs: p.GetAcceptNewLogs()}
		if p.GetAddress() != "" {
			addrs = append(addrs, p.GetAddress())
			accept[p.GetAddress()] = p.GetAcceptNewLogs()
		}
	}
	if len(addrs) > 0 && c.cfg.DiscoveryInterval > 0 {
		c.setProxies(addrs, accept)
	}
	return out, nil
}

// BookieInfo is a bookie's registration.
type BookieInfo struct {
	ID, Address, Region, Rack string
	State                     string // "writable" or "read-only"
	FreeBytes, TotalBytes     uint64
}

// Bookies lists the live bookies.
func (c *Client) Bookies(ctx context.Context) ([]BookieInfo, error) {
	var m *dlogpb.ListBookiesResponse
	_, err := c.call(ctx, "", routeAny, true, func(ctx context.Context, s *stubs) error {
		r, err := s.admin.ListBookies(ctx, connect.NewRequest(&dlogpb.ListBookiesRequest{}))
		if err == nil {
			m = r.Msg
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]BookieInfo, len(m.GetBookies()))
	for i, b := range m.GetBookies() {
		out[i] = BookieInfo{ID: b.GetId(), Address: b.GetAddress(), Region: b.GetRegion(), Rack: b.GetRack(), State: b.GetState(),
			FreeBytes: b.GetFreeBytes(), TotalBytes: b.GetTotalBytes()}
	}
	return out, nil
}

// Ledger returns a ledger's metadata as the wire message
// (dlog.ErrNotFound for an unknown id).
func (c *Client) Ledger(ctx context.Context, id int64) (*dlogpb.GetLedgerResponse, error) {
	var m *dlogpb.GetLedgerResponse
	_, err := c.call(ctx, "", routeAny, true, func(ctx context.Context, s *stubs) error {
		r, err := s.admin.GetLedger(ctx, connect.NewRequest(&dlogpb.GetLedgerRequest{LedgerId: id}))
		if err == nil {
			m = r.Msg
		}
		return err
	})
	return m, err
}

// LedgerEntry is one raw entry of a ledger.
type LedgerEntry struct {
	ID      int64
	Payload []byte
}

// ReadLedger iterates over the raw entries first..last of a ledger (last
// -1: up to its last confirmed entry). The last pair carries an error, if
// any.
func (c *Client) ReadLedger(ctx context.Context, id, first, last int64) iter.Seq2[LedgerEntry, error] {
	return func(yield func(LedgerEntry, error) bool) {
		addr := c.pick("", routeAny, nil)
		if addr == "" {
			yield(LedgerEntry{}, fmt.Errorf("%w: no proxy", dlog.ErrUnavailable))
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		st, err := c.stubsFor(addr).admin.ReadLedger(ctx, connect.NewRequest(&dlogpb.ReadLedgerRequest{LedgerId: id, FirstEntryId: first, LastEntryId: last}))
		if err != nil {
			yield(LedgerEntry{}, status.FromConnect(err, ""))
			return
		}
		defer st.Close()
		for st.Receive() {
			if !yield(LedgerEntry{ID: st.Msg().GetEntryId(), Payload: st.Msg().GetPayload()}, nil) {
				return
			}
		}
		if err := st.Err(); err != nil {
			yield(LedgerEntry{}, status.FromConnect(err, ""))
		}
	}
}
