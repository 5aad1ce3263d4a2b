package proxy

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/internal/proxy/status"
	"github.com/dlog-io/dlog/namespace"
)

// readSession is one Read stream: it reads from its own namespace reader
// (catch-up, from the bookies) until its position is covered by the log's
// tail cache, then from the cache, and back to catch-up when it falls
// behind the cache's window. Positions only move forward, so the stream
// is gap-free and duplicate-free across these switches.
type readSession struct {
	s      *Server
	k      logKey
	nsp    *namespace.Namespace
	out    *connect.ServerStream[dlogpb.ReadResponse]
	follow bool
	limit  int64
	skip   bool

	start   namespace.Position // first position, until p is known
	p       dlog.DLSN          // next position to deliver from
	pKnown  bool
	end     dlog.DLSN // non-follow: the last record to deliver
	endTxID int64     // non-follow: its txid
	sent    int64

	cache   *tailCache
	inCache bool
	idx     int64
	nr      *namespace.Reader
	entry   dlog.DLSN // entry accounting of nr
}

// Read implements the Read RPC.
func (s *Server) Read(ctx context.Context, req *connect.Request[dlogpb.ReadRequest], out *connect.ServerStream[dlogpb.ReadResponse]) error {
	if s.cfg.DisableReads {
		return fmt.Errorf("%w: proxy %s does not serve reads", status.ErrStreamUnavailable, s.id)
	}
	if n := s.readers.Add(1); n > int64(s.cfg.MaxReaders) {
		s.readers.Add(-1)
		s.metrics.rejected.WithLabelValues("readers").Inc()
		return fmt.Errorf("%w: proxy %s serves %d readers, its limit", dlog.ErrOverCapacity, s.id, n-1)
	}
	s.metrics.readers.Inc()
	defer func() {
		s.readers.Add(-1)
		s.metrics.readers.Dec()
	}()
	m := req.Msg
	k, err := s.logKey(m.GetLog())
	if err != nil {
		return err
	}
	if m.GetLimit() < 0 {
		return fmt.Errorf("%w: negative limit", dlog.ErrInvalidArgument)
	}
	nsp, err := s.namespace(ctx, k.ns)
	if err != nil {
		return err
	}
	r := &readSession{s: s, k: k, nsp: nsp, out: out, follow: m.GetFollow(), limit: m.GetLimit(), skip: m.GetSkipTruncated()}
	defer r.close()
	err = r.run(ctx, m)
	if err != nil && s.bg.Err() != nil {
		// Shutting down: the client resumes on another proxy.
		return fmt.Errorf("%w: proxy %s is shutting down", dlog.ErrClosed, s.id)
	}
	return err
}

func (r *readSession) close() {
	if r.nr != nil {
		r.nr.Close()
	}
	if r.cache != nil {
		r.cache.detach()
	}
}

// run resolves the start position, then streams.
func (r *readSession) run(ctx context.Context, m *dlogpb.ReadRequest) error {
	s, k := r.s, r.k
	if !r.follow {
		last, err := r.nsp.GetLastRecord(ctx, k.log)
		switch {
		case errors.Is(err, dlog.ErrNotFound):
			return nil // nothing to read up to now
		case err != nil:
			return err
		}
		r.end, r.endTxID = last.DLSN, last.TxID
	} else {
		r.cache = s.acquireCache(ctx, k)
	}
	resume := false
	switch from := m.GetFrom().(type) {
	case *dlogpb.ReadRequest_Dlsn:
		d, err := dlog.ParseDLSN(from.Dlsn)
		if err != nil {
			return fmt.Errorf("%w: from: %w", dlog.ErrInvalidArgument, err)
		}
		r.p, r.pKnown = d, true
	case *dlogpb.ReadRequest_Txid:
		if from.Txid < 0 {
			return fmt.Errorf("%w: from txid %d", dlog.ErrInvalidArgument, from.Txid)
		}
		if !r.follow && from.Txid > r.endTxID {
			// Txids never decrease: no record up to the end has one this
			// high (and the namespace reader would wait for one).
			return nil
		}
		r.start = namespace.AtTxID(from.Txid)
	case *dlogpb.ReadRequest_Start:
		r.start = namespace.AtStart()
	case *dlogpb.ReadRequest_End:
		if !r.follow {
			return nil // only records written after the call, and no waiting
		}
		if r.cache != nil {
			r.p, r.pKnown, resume = r.cache.tailPosition(), true, true
		} else {
			r.start = namespace.AtEnd()
		}
	case *dlogpb.ReadRequest_Subscription:
		d, err := r.nsp.GetSubscription(ctx, k.log, from.Subscription)
		if err != nil {
			return err
		}
		r.p, r.pKnown, resume = d.Next(), true, true
	default:
		return fmt.Errorf("%w: no start position (dlsn, txid, start, end or subscription)", dlog.ErrInvalidArgument)
	}
	if resume {
		if err := r.out.Send(&dlogpb.ReadResponse{ResumeDlsn: r.p.String()}); err != nil {
			return err
		}
	}
	return r.stream(ctx)
}

// tailPosition is where a reader "from the end" starts: after the newest
// record in the window (at from when it is empty).
func (c *tailCache) tailPosition() dlog.DLSN {
	c.mu.Lock()
	defer c.mu.Unlock()
	if win := c.mu.recs[c.mu.off:]; len(win) > 0 {
		return win[len(win)-1].DLSN.Next()
	}
	return c.mu.from
}

func (r *readSession) stream(ctx context.Context) error {
	s := r.s
	cfg := &s.cfg
	mCache := s.metrics.readRecords.WithLabelValues(r.k.String(), "cache")
	mBookies := s.metrics.readRecords.WithLabelValues(r.k.String(), "bookies")
	mBytes := s.metrics.readBytes.WithLabelValues(r.k.String())
	mBookieRecs := s.metrics.bookieRecords.WithLabelValues(r.k.String())
	mBookieEntries := s.metrics.bookieEntries.WithLabelValues(r.k.String())
	for {
		if r.limit > 0 && r.sent >= r.limit {
			return nil
		}
		if !r.follow && r.pKnown && r.end.Less(r.p) {
			return nil
		}
		var recs []dlog.ReadRecord
		var err error
		fromCache := r.inCache
		if r.inCache {
			recs, r.idx, err = r.cache.read(ctx, r.idx, cfg.ReadBatchRecords, cfg.ReadBatchBytes)
			if errors.Is(err, errBehind) {
				s.metrics.cacheFallback.Inc()
				r.inCache = false
				continue
			}
		} else {
			if r.cache != nil && r.pKnown {
				if idx, ok := r.cache.seek(r.p); ok {
					if r.nr != nil {
						r.nr.Close()
						r.nr = nil
					}
					r.inCache, r.idx = true, idx
					continue
				}
			}
			if r.nr == nil {
				pos := r.start
				if r.pKnown {
					pos = namespace.AtDLSN(r.p)
				}
				r.nr, err = r.nsp.OpenReader(ctx, r.k.log, pos, namespace.ReaderOptions{SkipTruncated: r.skip})
				if err != nil {
					return err
				}
			}
			recs, err = r.nr.NextBatch(ctx, cfg.ReadBatchRecords)
			mBookieRecs.Add(float64(len(recs)))
			mBookieEntries.Add(float64(countEntries(&r.entry, recs)))
		}
		if err != nil {
			if errors.Is(err, dlog.ErrEndOfStream) {
				return r.out.Send(&dlogpb.ReadResponse{EndOfStream: true})
			}
			return err
		}
		// A reader that joined the cache ahead of its newest record skips
		// what is before its position; a non-follow reader stops at its
		// end; limit counts records.
		i := 0
		if r.pKnown {
			for i < len(recs) && recs[i].DLSN.Less(r.p) {
				i++
			}
		}
		recs = recs[i:]
		past := false // a non-follow reader reached records after its end
		if !r.follow {
			j := 0
			for j < len(recs) && !r.end.Less(recs[j].DLSN) {
				j++
			}
			past = j < len(recs)
			recs = recs[:j]
		}
		if r.limit > 0 && int64(len(recs)) > r.limit-r.sent {
			recs = recs[:r.limit-r.sent]
		}
		if len(recs) == 0 {
			if past {
				return nil
			}
			continue
		}
		if err := r.send(recs); err != nil {
			return err
		}
		n, b := float64(len(recs)), 0
		for _, rec := range recs {
			b += len(rec.Payload)
		}
		if fromCache {
			mCache.Add(n)
		} else {
			mBookies.Add(n)
		}
		mBytes.Add(float64(b))
		r.sent += int64(len(recs))
		r.p, r.pKnown = recs[len(recs)-1].DLSN.Next(), true
	}
}

// send streams records in responses of at most ReadBatchRecords records
// and ReadBatchBytes of payload (at least one record each).
func (r *readSession) send(recs []dlog.ReadRecord) error {
	cfg := &r.s.cfg
	for len(recs) > 0 {
		resp := &dlogpb.ReadResponse{}
		size := 0
		for len(recs) > 0 && len(resp.Records) < cfg.ReadBatchRecords {
			rec := recs[0]
			if len(resp.Records) > 0 && size+len(rec.Payload) > cfg.ReadBatchBytes {
				break
			}
			resp.Records = append(resp.Records, readRecordPB(rec))
			size += len(rec.Payload)
			recs = recs[1:]
		}
		if err := r.out.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

func readRecordPB(r dlog.ReadRecord) *dlogpb.ReadRecord {
	return &dlogpb.ReadRecord{
		Dlsn: r.DLSN.String(), Txid: r.TxID, SequenceId: r.SequenceID, Payload: r.Payload,
		ProducerId: r.ProducerID, Sequence: r.Sequence,
	}
}
