package proxy

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
)

// adminService implements dlogpbconnect.AdminServiceHandler.
type adminService struct{ *Server }

// readLedgerBatch bounds the entries one ReadLedger step fetches.
const readLedgerBatch = 64

// Release implements the RPC: the owner closes the log's writer (its
// segment is completed and the lock released); a proxy that does not own
// the log redirects to the one that does, and answers OK when nobody
// does.
func (s adminService) Release(ctx context.Context, req *connect.Request[dlogpb.ReleaseRequest]) (*connect.Response[dlogpb.ReleaseResponse], error) {
	k, err := s.logKey(req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	if s.owned(k) != nil {
		if err := s.release(ctx, k, "admin"); err != nil {
			return nil, err
		}
		return connect.NewResponse(&dlogpb.ReleaseResponse{}), nil
	}
	o, ok, err := s.store.GetOwner(ctx, k.ns, k.log)
	if err != nil {
		return nil, err
	}
	if ok && o.Address != "" && o.Address != s.advertise {
		return nil, &dlog.OwnedError{Log: k.String(), OwnerID: o.ID, Owner: o.Address}
	}
	return connect.NewResponse(&dlogpb.ReleaseResponse{}), nil
}

// SetAcceptNewLogs implements the RPC: draining keeps serving the logs
// this proxy owns and refuses new ones (CODE_STREAM_UNAVAILABLE); the
// registration says so, so clients stop sending new logs here.
func (s adminService) SetAcceptNewLogs(ctx context.Context, req *connect.Request[dlogpb.SetAcceptNewLogsRequest]) (*connect.Response[dlogpb.SetAcceptNewLogsResponse], error) {
	s.accepting.Store(req.Msg.GetAccept())
	s.log.Info("accept new logs", "accept", req.Msg.GetAccept())
	if err := s.register(ctx); err != nil {
		return nil, fmt.Errorf("update registration: %w", err)
	}
	return connect.NewResponse(&dlogpb.SetAcceptNewLogsResponse{}), nil
}

// ListBookies implements the RPC.
func (s adminService) ListBookies(ctx context.Context, _ *connect.Request[dlogpb.ListBookiesRequest]) (*connect.Response[dlogpb.ListBookiesResponse], error) {
	bs, _, err := s.store.ListBookies(ctx)
	if err != nil {
		return nil, err
	}
	out := &dlogpb.ListBookiesResponse{Bookies: make([]*dlogpb.Bookie, len(bs))}
	for i, b := range bs {
		state := "writable"
		if b.State == metadata.BookieReadOnly {
			state = "read-only"
		}
		out.Bookies[i] = &dlogpb.Bookie{Id: b.ID, Address: b.Address, Region: b.Region, Rack: b.Rack, State: state, FreeBytes: b.FreeBytes, TotalBytes: b.TotalBytes}
	}
	return connect.NewResponse(out), nil
}

// ListProxies implements the RPC: every live registration.
func (s adminService) ListProxies(ctx context.Context, _ *connect.Request[dlogpb.ListProxiesRequest]) (*connect.Response[dlogpb.ListProxiesResponse], error) {
	ps, _, err := s.store.ListProxies(ctx)
	if err != nil {
		return nil, err
	}
	out := &dlogpb.ListProxiesResponse{Proxies: make([]*dlogpb.Proxy, len(ps))}
	for i, p := range ps {
		out.Proxies[i] = &dlogpb.Proxy{Id: p.ID, Address: p.Address, HttpAddress: p.HTTPAddress, AcceptNewLogs: p.AcceptNewLogs, Region: p.Region}
	}
	return connect.NewResponse(out), nil
}

func ledgerErr(id int64, err error) error {
	if errors.Is(err, metadata.ErrNotFound) || errors.Is(err, ledger.ErrNoLedger) {
		return fmt.Errorf("ledger %d: %w", id, dlog.ErrNotFound)
	}
	return fmt.Errorf("ledger %d: %w", id, err)
}

// GetLedger implements the RPC.
func (s adminService) GetLedger(ctx context.Context, req *connect.Request[dlogpb.GetLedgerRequest]) (*connect.Response[dlogpb.GetLedgerResponse], error) {
	id := req.Msg.GetLedgerId()
	if id <= 0 {
		return nil, fmt.Errorf("%w: ledger id %d", dlog.ErrInvalidArgument, id)
	}
	md, _, err := s.ledgers.Metadata(ctx, id)
	if err != nil {
		return nil, ledgerErr(id, err)
	}
	state := map[metadata.LedgerState]string{metadata.LedgerOpen: "open", metadata.LedgerInRecovery: "in-recovery", metadata.LedgerClosed: "closed"}[md.State]
	out := &dlogpb.GetLedgerResponse{
		LedgerId: id, EnsembleSize: int32(md.EnsembleSize), WriteQuorum: int32(md.WriteQuorum), AckQuorum: int32(md.AckQuorum),
		State: state, LastEntryId: md.LastEntryID, Length: md.Length, Custom: md.Custom,
	}
	for _, f := range md.Fragments {
		out.Fragments = append(out.Fragments, &dlogpb.Fragment{FirstEntryId: f.FirstEntryID, Bookies: f.Bookies})
	}
	return connect.NewResponse(out), nil
}

// ReadLedger implements the RPC: raw entries (record sets as stored) from
// first_entry_id to last_entry_id (-1: the last confirmed entry).
func (s adminService) ReadLedger(ctx context.Context, req *connect.Request[dlogpb.ReadLedgerRequest], out *connect.ServerStream[dlogpb.ReadLedgerResponse]) error {
	m := req.Msg
	id := m.GetLedgerId()
	if id <= 0 || m.GetFirstEntryId() < 0 || m.GetLastEntryId() < -1 {
		return fmt.Errorf("%w: ledger %d entries %d..%d", dlog.ErrInvalidArgument, id, m.GetFirstEntryId(), m.GetLastEntryId())
	}
	r, err := s.ledgers.OpenReader(ctx, id)
	if err != nil {
		return ledgerErr(id, err)
	}
	defer r.Close()
	last := m.GetLastEntryId()
	if lac := r.LAC(); last < 0 || last > lac {
		if last >= 0 {
			return fmt.Errorf("%w: ledger %d: entry %d is beyond the last confirmed entry %d", dlog.ErrInvalidArgument, id, last, lac)
		}
		last = lac
	}
	for first := m.GetFirstEntryId(); first <= last; first += readLedgerBatch {
		es, err := r.Read(ctx, first, min(first+readLedgerBatch-1, last))
		for _, e := range es {
			if serr := out.Send(&dlogpb.ReadLedgerResponse{EntryId: e.ID, Payload: e.Payload}); serr != nil {
				return serr
			}
		}
		if err != nil {
			return ledgerErr(id, err)
		}
	}
	return nil
}
