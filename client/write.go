package client

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/internal/proxy/status"
)

// WriteResult is an acknowledged write.
type WriteResult struct {
	DLSN dlog.DLSN
	TxID int64
	// Duplicate is set when the write was a retry of one already in the
	// log: DLSN and TxID are the original's and nothing was appended.
	Duplicate bool
	// Owner is the API address of the proxy that owned the log and
	// answered (as Client.Heartbeat reports it). With
	// DLSN's segment number it names the writer epoch (every takeover
	// starts a new segment). "" from proxies that do not report it.
	Owner string
}

// producer is one of the client's producer ids with its next sequence.
type producer struct {
	id   string
	next int64
}

// producerPool hands out producer ids so that each has at most one write
// in flight: its sequences then reach the proxy in order, and a retry is
// always of its latest write.
type producerPool struct {
	prefix string
	sem    chan struct{} // one token per producer in use; capacity = the bound
	mu     sync.Mutex
	free   []*producer
	made   int
}

func newProducerPool(prefix string, n int) *producerPool {
	return &producerPool{prefix: prefix, sem: make(chan struct{}, n)}
}

func (p *producerPool) get(ctx context.Context) (*producer, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for a free producer id: %w", dlog.ErrOverCapacity, ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.free); n > 0 {
		pr := p.free[n-1]
		p.free = p.free[:n-1]
		return pr, nil
	}
	p.made++
	return &producer{id: p.prefix + "-" + strconv.Itoa(p.made)}, nil
}

func (p *producerPool) put(pr *producer) {
	p.mu.Lock()
	p.free = append(p.free, pr)
	p.mu.Unlock()
	<-p.sem
}

// recordPB converts a record for the wire: TxID 0 means "let the proxy
// assign one".
func recordPB(r dlog.Record) *dlogpb.Record {
	out := &dlogpb.Record{Payload: r.Payload}
	if r.TxID != 0 {
		t := r.TxID
		out.Txid = &t
	}
	return out
}

// Write appends one record to log and returns its position once it is
// durable. rec.TxID 0 lets the proxy assign the txid (max of the log's
// last txid and the time in ms), any other value is the record's txid
// (non-decreasing per log).
//
// Idempotency: a record tagged with rec.ProducerID (and rec.Sequence,
// increasing per producer) — or any record when Config.Idempotence is on,
// which tags it with one of the client's producer ids — may be retried
// after an indeterminate failure, on another proxy after a failover: the
// retry returns the original position (Duplicate) instead of appending a
// second copy, as long as the original is within the new owner's dedup
// window (see the proxy's documentation). Untagged writes are never
// retried once sent.
//
// Untagged writes of one log that are in flight at the same time are sent
// together as WriteBulk requests (Config.BatchWrites, see batch.go); each
// keeps its own outcome.
//
// Errors match the dlog sentinels with errors.Is and say with
// dlog.IsDefinite whether the record may be in the log: e.g.
// dlog.ErrLogNotFound, dlog.ErrRecordTooLarge, dlog.ErrTxIDOutOfOrder,
// dlog.ErrOverCapacity (definite), dlog.ErrFenced or dlog.ErrUnavailable
// (indeterminate). ctx bounds the whole call, retries included.
func (c *Client) Write(ctx context.Context, log string, rec dlog.Record) (WriteResult, error) {
	if err := dlog.ValidateName(log); err != nil {
		return WriteResult{}, fmt.Errorf("log: %w", err)
	}
	if rec.ProducerID == "" && c.cfg.BatchWrites {
		return c.writeBatched(ctx, log, recordPB(rec))
	}
	req := &dlogpb.WriteRequest{Log: c.ref(log), Record: recordPB(rec), ProducerId: rec.ProducerID, Sequence: rec.Sequence}
	if rec.ProducerID == "" && c.cfg.Idempotence {
		pr, err := c.producers.get(ctx)
		if err != nil {
			return WriteResult{}, err
		}
		defer c.producers.put(pr)
		req.ProducerId, req.Sequence = pr.id, pr.next
		pr.next++
	}
	return c.writePB(ctx, log, req)
}

// writePB sends one Write request (retried when tagged).
func (c *Client) writePB(ctx context.Context, log string, req *dlogpb.WriteRequest) (WriteResult, error) {
	var resp *dlogpb.WriteResponse
	_, err := c.call(ctx, c.logKey(log), routeOwner, req.ProducerId != "", func(ctx context.Context, s *stubs) error {
		r, err := s.log.Write(ctx, connect.NewRequest(req))
		if err == nil {
			resp = r.Msg
		}
		return err
	})
	if err != nil {
		return WriteResult{}, err
	}
	res, err := parseResult(resp.GetDlsn(), resp.GetTxid(), resp.GetDuplicate())
	if err != nil {
		return WriteResult{}, err
	}
	res.Owner = resp.GetOwner()
	return res, nil
}

func parseResult(d string, txid int64, dup bool) (WriteResult, error) {
	dlsn, err := dlog.ParseDLSN(d)
	if err != nil {
		return WriteResult{}, dlog.Indeterminate(fmt.Errorf("proxy answered a bad DLSN: %w", err))
	}
	return WriteResult{DLSN: dlsn, TxID: txid, Duplicate: dup}, nil
}

// WriteBulk appends records in order, as one request, with prefix-failure
// semantics: it returns the results of the acknowledged prefix and the
// error of the first record that failed (every later one failed too). Tag
// rules as Write; tagged records of one bulk must share a producer id and
// have consecutive sequences (or all be untagged).
func (c *Client) WriteBulk(ctx context.Context, log string, recs []dlog.Record) ([]WriteResult, error) {
	if err := dlog.ValidateName(log); err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	req := &dlogpb.WriteBulkRequest{Log: c.ref(log), Records: make([]*dlogpb.Record, len(recs)),
		ProducerId: recs[0].ProducerID, FirstSequence: recs[0].Sequence}
	for i, r := range recs {
		if r.ProducerID != req.ProducerId || (r.ProducerID != "" && r.Sequence != req.FirstSequence+int64(i)) {
			return nil, fmt.Errorf("%w: bulk record %d: tagged records of one bulk need one producer id and consecutive sequences", dlog.ErrInvalidArgument, i)
		}
		req.Records[i] = recordPB(r)
	}
	if req.ProducerId == "" && c.cfg.Idempotence {
		pr, err := c.producers.get(ctx)
		if err != nil {
			return nil, err
		}
		defer c.producers.put(pr)
		req.ProducerId, req.FirstSequence = pr.id, pr.next
		pr.next += int64(len(recs))
	}
	var out []WriteResult
	var recErr error
	_, err := c.call(ctx, c.logKey(log), routeOwner, req.ProducerId != "", func(ctx context.Context, s *stubs) error {
		out, recErr = nil, nil
		r, err := s.log.WriteBulk(ctx, connect.NewRequest(req))
		if err != nil {
			return err
		}
		for i, res := range r.Msg.GetResults() {
			if d := res.GetError(); d != nil {
				recErr = fmt.Errorf("bulk record %d: %w", i, status.FromDetail(d, c.logKey(log)))
				break
			}
			wr, err := parseResult(res.GetDlsn(), res.GetTxid(), res.GetDuplicate())
			if err != nil {
				recErr = err
				break
			}
			wr.Owner = r.Msg.GetOwner()
			out = append(out, wr)
		}
		if recErr == nil && len(out) != len(recs) {
			recErr = dlog.Indeterminate(fmt.Errorf("proxy answered %d results for %d records", len(out), len(recs)))
		}
		if recErr != nil && !dlog.IsDefinite(recErr) && req.ProducerId != "" {
			return recErr // retried as a whole: the dedup table answers the prefix
		}
		return nil
	})
	if err != nil {
		if recErr != nil {
			return out, recErr
		}
		return nil, err
	}
	return out, recErr
}
