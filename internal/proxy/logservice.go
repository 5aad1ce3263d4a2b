package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/proxy/status"
	"github.com/dlog-io/dlog/namespace"
)

// logService implements dlogpbconnect.LogServiceHandler (Read is in
// read.go). Handlers return plain errors; the interceptor maps them with
// the status table.
type logService struct{ *Server }

// CreateLog implements the RPC.
func (s logService) CreateLog(ctx context.Context, req *connect.Request[dlogpb.CreateLogRequest]) (*connect.Response[dlogpb.CreateLogResponse], error) {
	k, nsp, err := s.resolve(ctx, req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	if req.Msg.GetRetentionMs() < 0 {
		return nil, fmt.Errorf("%w: negative retention", dlog.ErrInvalidArgument)
	}
	opts := namespace.LogOptions{Retention: time.Duration(req.Msg.GetRetentionMs()) * time.Millisecond}
	if err := nsp.CreateLog(ctx, k.log, opts); err != nil {
		return nil, err
	}
	return connect.NewResponse(&dlogpb.CreateLogResponse{}), nil
}

// SetRetention implements the RPC: a metadata change any proxy can make
// (the collector of the log's namespace reads it on its next pass).
func (s logService) SetRetention(ctx context.Context, req *connect.Request[dlogpb.SetRetentionRequest]) (*connect.Response[dlogpb.SetRetentionResponse], error) {
	k, nsp, err := s.resolve(ctx, req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	if req.Msg.GetRetentionMs() < 0 {
		return nil, fmt.Errorf("%w: negative retention", dlog.ErrInvalidArgument)
	}
	if err := nsp.SetRetention(ctx, k.log, time.Duration(req.Msg.GetRetentionMs())*time.Millisecond); err != nil {
		return nil, err
	}
	return connect.NewResponse(&dlogpb.SetRetentionResponse{}), nil
}

// resolve validates a log reference and opens its namespace.
func (s *Server) resolve(ctx context.Context, ref *dlogpb.LogRef) (logKey, *namespace.Namespace, error) {
	k, err := s.logKey(ref)
	if err != nil {
		return k, nil, err
	}
	nsp, err := s.namespace(ctx, k.ns)
	return k, nsp, err
}

// DeleteLog implements the RPC. The owner proxy releases the log first;
// a proxy that does not own it redirects to the proxy that does (unless
// force).
func (s logService) DeleteLog(ctx context.Context, req *connect.Request[dlogpb.DeleteLogRequest]) (*connect.Response[dlogpb.DeleteLogResponse], error) {
	k, nsp, err := s.resolve(ctx, req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	if err := s.release(ctx, k, "delete"); err != nil {
		return nil, err
	}
	err = nsp.DeleteLog(ctx, k.log, req.Msg.GetForce())
	var owned *dlog.OwnedError
	if errors.As(err, &owned) && (owned.Owner == "" || owned.Owner == s.advertise) {
		// The owner is not a proxy clients can be sent to.
		return nil, fmt.Errorf("%w: %s", dlog.ErrWriterActive, err.Error())
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dlogpb.DeleteLogResponse{}), nil
}

// maxListLimit bounds one ListLogs page.
const maxListLimit = 10000

// ListLogs implements the RPC.
func (s logService) ListLogs(ctx context.Context, req *connect.Request[dlogpb.ListLogsRequest]) (*connect.Response[dlogpb.ListLogsResponse], error) {
	nsp, err := s.namespace(ctx, req.Msg.GetNamespace())
	if err != nil {
		return nil, err
	}
	limit := int(req.Msg.GetLimit())
	switch {
	case limit < 0:
		return nil, fmt.Errorf("%w: negative limit", dlog.ErrInvalidArgument)
	case limit == 0:
		limit = 1000
	case limit > maxListLimit:
		limit = maxListLimit
	}
	names, next, err := nsp.ListLogs(ctx, req.Msg.GetPrefix(), req.Msg.GetPageToken(), limit)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dlogpb.ListLogsResponse{Logs: names, NextPageToken: next}), nil
}

// GetLogInfo implements the RPC.
func (s logService) GetLogInfo(ctx context.Context, req *connect.Request[dlogpb.GetLogInfoRequest]) (*connect.Response[dlogpb.GetLogInfoResponse], error) {
	k, nsp, err := s.resolve(ctx, req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	st, err := s.store.GetLogState(ctx, k.ns, k.log)
	if errors.Is(err, metadata.ErrNotFound) {
		return nil, fmt.Errorf("log %s: %w", k, dlog.ErrLogNotFound)
	}
	if err != nil {
		return nil, err
	}
	out := &dlogpb.GetLogInfoResponse{
		Segments:      int32(len(st.Segments)),
		CreatedUnixMs: st.Info.Created.UnixMilli(),
		RetentionMs:   st.Info.Retention.Milliseconds(),
		LastTxid:      st.MaxTxID,
	}
	if st.Truncation.IsValid() {
		out.TruncatedTo = st.Truncation.String()
	}
	if n := len(st.Segments); n > 0 && st.Segments[n-1].EndOfStream {
		out.EndOfStream = true
	}
	first, err := nsp.GetFirstRecord(ctx, k.log)
	switch {
	case err == nil:
		out.FirstDlsn = first.DLSN.String()
		last, err := nsp.GetLastRecord(ctx, k.log)
		if err != nil && !errors.Is(err, dlog.ErrNotFound) {
			return nil, err
		}
		if err == nil {
			out.LastDlsn = last.DLSN.String()
			out.LastTxid = max(out.LastTxid, last.TxID)
			out.RecordCount = last.SequenceID - first.SequenceID + 1
		}
	case !errors.Is(err, dlog.ErrNotFound):
		return nil, err
	}
	if o, ok, err := s.store.GetOwner(ctx, k.ns, k.log); err == nil && ok {
		out.Owner = o.Address
	}
	return connect.NewResponse(out), nil
}

// Write implements the RPC.
func (s logService) Write(ctx context.Context, req *connect.Request[dlogpb.WriteRequest]) (*connect.Response[dlogpb.WriteResponse], error) {
	m := req.Msg
	w, err := s.parseWrite(m.GetLog(), []*dlogpb.Record{m.GetRecord()}, m.GetProducerId(), m.GetSequence())
	if err != nil {
		return nil, err
	}
	res, err := s.write(ctx, w)
	if err != nil {
		return nil, err
	}
	if res[0].err != nil {
		return nil, res[0].err
	}
	return connect.NewResponse(&dlogpb.WriteResponse{Dlsn: res[0].dlsn.String(), Txid: res[0].txid, Duplicate: res[0].duplicate, Owner: s.advertise}), nil
}

// WriteBulk implements the RPC: one result per record; after the first
// failure every later record failed too.
func (s logService) WriteBulk(ctx context.Context, req *connect.Request[dlogpb.WriteBulkRequest]) (*connect.Response[dlogpb.WriteBulkResponse], error) {
	m := req.Msg
	w, err := s.parseWrite(m.GetLog(), m.GetRecords(), m.GetProducerId(), m.GetFirstSequence())
	if err != nil {
		return nil, err
	}
	res, err := s.write(ctx, w)
	if err != nil {
		return nil, err
	}
	out := &dlogpb.WriteBulkResponse{Results: make([]*dlogpb.WriteResult, len(res)), Owner: s.advertise}
	for i, r := range res {
		if r.err != nil {
			out.Results[i] = &dlogpb.WriteResult{Error: status.Detail(r.err)}
			continue
		}
		out.Results[i] = &dlogpb.WriteResult{Dlsn: r.dlsn.String(), Txid: r.txid, Duplicate: r.duplicate}
	}
	return connect.NewResponse(out), nil
}

// Truncate implements the RPC. When another proxy owns the log the answer
// is a redirect to it.
func (s logService) Truncate(ctx context.Context, req *connect.Request[dlogpb.TruncateRequest]) (*connect.Response[dlogpb.TruncateResponse], error) {
	k, nsp, err := s.resolve(ctx, req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	switch to := req.Msg.GetTo().(type) {
	case *dlogpb.TruncateRequest_Dlsn:
		d, err := dlog.ParseDLSN(to.Dlsn)
		if err != nil {
			return nil, fmt.Errorf("%w: truncate to: %w", dlog.ErrInvalidArgument, err)
		}
		err = nsp.Truncate(ctx, k.log, d)
		if err != nil {
			return nil, err
		}
	case *dlogpb.TruncateRequest_Txid:
		if to.Txid < 0 {
			return nil, fmt.Errorf("%w: truncate to txid %d", dlog.ErrInvalidArgument, to.Txid)
		}
		if err := nsp.TruncateTxID(ctx, k.log, to.Txid); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: truncate needs dlsn or txid", dlog.ErrInvalidArgument)
	}
	st, err := s.store.GetLogState(ctx, k.ns, k.log)
	if err != nil {
		return nil, err
	}
	out := &dlogpb.TruncateResponse{}
	if st.Truncation.IsValid() {
		out.TruncatedTo = st.Truncation.String()
	}
	return connect.NewResponse(out), nil
}

// GetLastDLSN implements the RPC (empty dlsn for a log without records).
func (s logService) GetLastDLSN(ctx context.Context, req *connect.Request[dlogpb.GetLastDLSNRequest]) (*connect.Response[dlogpb.GetLastDLSNResponse], error) {
	k, nsp, err := s.resolve(ctx, req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	rec, err := nsp.GetLastRecord(ctx, k.log)
	switch {
	case errors.Is(err, dlog.ErrNotFound):
		return connect.NewResponse(&dlogpb.GetLastDLSNResponse{}), nil
	case err != nil:
		return nil, err
	}
	return connect.NewResponse(&dlogpb.GetLastDLSNResponse{Dlsn: rec.DLSN.String(), Txid: rec.TxID}), nil
}

// GetSubscription implements the RPC.
func (s logService) GetSubscription(ctx context.Context, req *connect.Request[dlogpb.GetSubscriptionRequest]) (*connect.Response[dlogpb.GetSubscriptionResponse], error) {
	k, nsp, err := s.resolve(ctx, req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	if err := dlog.ValidateName(req.Msg.GetName()); err != nil {
		return nil, fmt.Errorf("subscription: %w", err)
	}
	sub, err := s.store.GetSubscription(ctx, k.ns, k.log, req.Msg.GetName())
	if err != nil {
		// The namespace maps a missing subscription or log to dlog errors.
		_, nerr := nsp.GetSubscription(ctx, k.log, req.Msg.GetName())
		if nerr == nil {
			nerr = err
		}
		return nil, nerr
	}
	return connect.NewResponse(&dlogpb.GetSubscriptionResponse{Dlsn: sub.Position.String(), UpdatedUnixMs: sub.Updated.UnixMilli()}), nil
}

// CommitSubscription implements the RPC.
func (s logService) CommitSubscription(ctx context.Context, req *connect.Request[dlogpb.CommitSubscriptionRequest]) (*connect.Response[dlogpb.CommitSubscriptionResponse], error) {
	k, nsp, err := s.resolve(ctx, req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	d, err := dlog.ParseDLSN(req.Msg.GetDlsn())
	if err != nil {
		return nil, fmt.Errorf("%w: subscription position: %w", dlog.ErrInvalidArgument, err)
	}
	if req.Msg.GetReset_() {
		err = nsp.ResetSubscription(ctx, k.log, req.Msg.GetName(), d)
	} else {
		err = nsp.CommitSubscription(ctx, k.log, req.Msg.GetName(), d)
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dlogpb.CommitSubscriptionResponse{}), nil
}

// Heartbeat implements the RPC: it takes the log over if needed, makes
// everything written durable, and returns once a reader can see all of it
// (the last entry of a log becomes readable only when the LAC passes it).
func (s logService) Heartbeat(ctx context.Context, req *connect.Request[dlogpb.HeartbeatRequest]) (*connect.Response[dlogpb.HeartbeatResponse], error) {
	k, err := s.logKey(req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	st, err := s.stream(ctx, k)
	if err != nil {
		return nil, err
	}
	if err := st.w.Flush(ctx); err != nil {
		if !dlog.IsDefinite(err) {
			st.fail(err)
		}
		return nil, err
	}
	if last := st.w.LastDLSN(); last.IsValid() {
		// A reader at the last record returns it once the LAC covers it
		// (it long-polls the bookies meanwhile).
		r, err := st.nsp.OpenReader(ctx, k.log, namespace.AtDLSN(last), namespace.ReaderOptions{SkipTruncated: true})
		if err != nil {
			return nil, err
		}
		_, err = r.NextBatch(ctx, 1)
		r.Close()
		if err != nil && !errors.Is(err, dlog.ErrEndOfStream) {
			return nil, err
		}
	}
	return connect.NewResponse(&dlogpb.HeartbeatResponse{Owner: s.advertise}), nil
}

// ListSegments implements the RPC.
func (s logService) ListSegments(ctx context.Context, req *connect.Request[dlogpb.ListSegmentsRequest]) (*connect.Response[dlogpb.ListSegmentsResponse], error) {
	k, nsp, err := s.resolve(ctx, req.Msg.GetLog())
	if err != nil {
		return nil, err
	}
	segs, err := nsp.ListSegments(ctx, k.log)
	if err != nil {
		return nil, err
	}
	out := &dlogpb.ListSegmentsResponse{Segments: make([]*dlogpb.Segment, len(segs))}
	for i, sg := range segs {
		state := "completed"
		if sg.InProgress {
			state = "in-progress"
		}
		p := &dlogpb.Segment{
			Lssn: sg.LSSN, LedgerId: sg.LedgerID, State: state, FirstTxid: sg.FirstTxID, LastTxid: sg.LastTxID,
			LastEntryId: sg.LastEntryID, RecordCount: sg.RecordCount, StartSequenceId: sg.StartSequenceID,
			CreatedUnixMs: sg.Created.UnixMilli(), Truncation: sg.Truncation, EndOfStream: sg.EndOfStream,
		}
		if !sg.Completed.IsZero() {
			p.CompletedUnixMs = sg.Completed.UnixMilli()
		}
		out.Segments[i] = p
	}
	return connect.NewResponse(out), nil
}
