package proxy

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/internal/proxy/status"
	"github.com/dlog-io/dlog/namespace"
)

// writeResult is the outcome of one record of a write.
type writeResult struct {
	dlsn      dlog.DLSN
	txid      int64
	duplicate bool // an idempotent retry answered from the dedup table
	err       error
}

// writeRequest is a validated write of one or more records.
type writeRequest struct {
	key      logKey
	recs     []dlog.Record
	hasTxID  []bool
	producer string // "" for plain writes
	firstSeq int64
	bytes    int64 // payload bytes
}

// maxWriteAttempts bounds how often one request follows its log through
// a release and a new takeover before giving up (nothing written).
const maxWriteAttempts = 4

// parseWrite validates a write's records and idempotency tag.
func (s *Server) parseWrite(ref *dlogpb.LogRef, records []*dlogpb.Record, producer string, firstSeq int64) (*writeRequest, error) {
	k, err := s.logKey(ref)
	if err != nil {
		return nil, err
	}
	n := len(records)
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: no records", dlog.ErrInvalidArgument)
	case n > s.cfg.MaxBulkRecords:
		return nil, fmt.Errorf("%w: %d records in one request, at most %d", dlog.ErrRecordTooLarge, n, s.cfg.MaxBulkRecords)
	}
	if producer != "" {
		if err := validateProducer(producer); err != nil {
			return nil, err
		}
		if firstSeq < 0 || firstSeq > dlog.MaxTxID-int64(n) {
			return nil, fmt.Errorf("%w: sequence %d", dlog.ErrInvalidArgument, firstSeq)
		}
	} else if firstSeq != 0 {
		return nil, fmt.Errorf("%w: a sequence without a producer id", dlog.ErrInvalidArgument)
	}
	req := &writeRequest{key: k, recs: make([]dlog.Record, n), hasTxID: make([]bool, n), producer: producer, firstSeq: firstSeq}
	for i, r := range records {
		if r == nil {
			return nil, fmt.Errorf("%w: record %d is missing", dlog.ErrInvalidArgument, i)
		}
		if len(r.Payload) > s.cfg.MaxRecordBytes {
			return nil, fmt.Errorf("%w: record %d: %d bytes, at most %d", dlog.ErrRecordTooLarge, i, len(r.Payload), s.cfg.MaxRecordBytes)
		}
		if r.Txid != nil {
			if t := r.GetTxid(); t < 0 || t == dlog.MaxTxID {
				return nil, fmt.Errorf("%w: record %d: txid %d is reserved", dlog.ErrInvalidArgument, i, t)
			}
			req.hasTxID[i] = true
			req.recs[i].TxID = r.GetTxid()
		}
		req.recs[i].Payload = r.Payload
		req.bytes += int64(len(r.Payload))
	}
	return req, nil
}

// validateProducer checks an idempotency producer id.
func validateProducer(id string) error {
	if len(id) > dlog.MaxProducerIDLength {
		return fmt.Errorf("%w: producer id of %d bytes, at most %d", dlog.ErrInvalidArgument, len(id), dlog.MaxProducerIDLength)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: producer id has byte %#x at %d; printable ASCII only", dlog.ErrInvalidArgument, c, i)
		}
	}
	return nil
}

// rateLimit is one limiter and what it counts (records or bytes).
type rateLimit struct {
	lim   *rate.Limiter
	bytes bool
}

func (l rateLimit) tokens(n, b int64) int {
	if l.bytes {
		return int(b)
	}
	return int(n)
}

// proxyLimits are the proxy-wide write limits.
func (s *Server) proxyLimits() []rateLimit {
	return []rateLimit{{lim: s.recLim}, {lim: s.byteLim, bytes: true}}
}

// limits are the log's write limits.
func (st *stream) limits() []rateLimit {
	return []rateLimit{{lim: st.recLim}, {lim: st.byteLim, bytes: true}}
}

// admitRate takes n records and b bytes from the limiters (proxy-wide
// ones first, then the log's); either refusing refunds the other.
func admitRate(now time.Time, n, b int64, lims ...rateLimit) bool {
	var taken []*rate.Reservation
	for _, l := range lims {
		if l.lim == nil {
			continue
		}
		r := l.lim.ReserveN(now, l.tokens(n, b))
		if !r.OK() || r.DelayFrom(now) > 0 {
			r.CancelAt(now)
			for _, t := range taken {
				t.CancelAt(now)
			}
			return false
		}
		taken = append(taken, r)
	}
	return true
}

// write appends a request's records to its log, taking the log over first
// if needed, and returns one result per record (prefix-failure semantics:
// after the first failure every later record fails too). The error is for
// the request as a whole: nothing was written.
func (s *Server) write(ctx context.Context, req *writeRequest) ([]writeResult, error) {
	n := int64(len(req.recs))
	for attempt := 0; ; attempt++ {
		st, err := s.stream(ctx, req.key)
		if err != nil {
			return nil, err
		}
		// The proxy's limits and the log's, all or nothing.
		if attempt == 0 && !admitRate(time.Now(), n, req.bytes, append(s.proxyLimits(), st.limits()...)...) {
			s.metrics.rejected.WithLabelValues("rate-limit").Inc()
			return nil, fmt.Errorf("%w: write rate limit of proxy %s or log %s", dlog.ErrOverCapacity, s.id, req.key)
		}
		res, retry, err := st.write(ctx, req)
		if !retry {
			return res, err
		}
		if attempt+1 >= maxWriteAttempts {
			return nil, fmt.Errorf("%w: log %s keeps changing owner state on proxy %s", status.ErrStreamUnavailable, req.key, s.id)
		}
	}
}

// write hands the request to the log's writer. retry reports that the
// stream closed before anything was done: take the log again.
func (st *stream) write(ctx context.Context, req *writeRequest) (res []writeResult, retry bool, err error) {
	s := st.srv
	n := int64(len(req.recs))
	for {
		st.mu.Lock()
		if st.mu.state != streamReady {
			st.mu.Unlock()
			return nil, true, nil
		}
		if werr := st.w.Err(); werr != nil {
			st.mu.Unlock()
			st.fail(werr)
			return nil, true, nil
		}
		var dups []writeResult
		if req.producer != "" {
			v := st.mu.producers.check(req.producer, req.firstSeq, n)
			switch {
			case v.wait != nil:
				// A retry of a write still in flight: its outcome is the
				// answer (or, if it fails, the log is taken over again).
				st.mu.Unlock()
				select {
				case <-v.wait.done:
					continue
				case <-ctx.Done():
					return nil, false, dlog.Indeterminate(fmt.Errorf("waiting for the earlier attempt of producer %q sequence %d: %w", req.producer, v.wait.first, ctx.Err()))
				}
			case v.tooOld != nil:
				st.mu.Unlock()
				s.metrics.dedup.WithLabelValues("too-old").Inc()
				return nil, false, fmt.Errorf("log %s: %w: %w", st.label, status.ErrSequenceTooOld, v.tooOld)
			}
			dups = v.dups
		}
		k := int64(len(dups))
		if k > 0 {
			s.metrics.dedup.WithLabelValues("duplicate").Add(float64(k))
		}
		if k == n {
			st.mu.Unlock()
			return dups, false, nil
		}
		res, err := st.appendLocked(req, k) // unlocks
		switch {
		case err != nil && k == 0:
			return nil, false, err
		case err != nil:
			// The remembered prefix stands; the rest was refused.
			for range n - k {
				dups = append(dups, writeResult{err: err})
			}
			return dups, false, nil
		}
		return append(dups, res...), false, nil
	}
}

// appendLocked sends records k.. of req to the writer (st.mu held; it
// unlocks it) and waits for their outcome.
func (st *stream) appendLocked(req *writeRequest, k int64) ([]writeResult, error) {
	s := st.srv
	recs := make([]dlog.Record, len(req.recs)-int(k))
	var bytes int64
	for i := range recs {
		bytes += int64(len(req.recs[int(k)+i].Payload))
	}
	if st.pendingRecs.Load()+int64(len(recs)) > int64(s.cfg.MaxPendingRecordsPerLog) || st.pendingBytes.Load()+bytes > s.cfg.MaxPendingBytesPerLog {
		pr, pb := st.pendingRecs.Load(), st.pendingBytes.Load()
		st.mu.Unlock()
		s.metrics.rejected.WithLabelValues("pending").Inc()
		return nil, fmt.Errorf("%w: log %s has %d records (%d bytes) pending", dlog.ErrOverCapacity, st.label, pr, pb)
	}
	// Txids: the client's, or max(the log's last txid, now in ms), never
	// decreasing (DistributedLog's TimeSequencer).
	cur := max(st.w.LastTxID(), time.Now().UnixMilli())
	for i := range recs {
		r := req.recs[int(k)+i]
		if req.hasTxID[int(k)+i] {
			cur = max(cur, r.TxID)
		} else {
			r.TxID = cur
		}
		if req.producer != "" {
			r.ProducerID, r.Sequence = req.producer, req.firstSeq+k+int64(i)
		}
		recs[i] = r
	}
	var futs []*namespace.Future
	if len(recs) == 1 {
		futs = []*namespace.Future{st.w.WriteAsync(recs[0])}
	} else {
		futs = st.w.WriteBulkAsync(recs)
	}
	select {
	case <-futs[0].Done():
		// Refused at once (validation, sealed log, closed writer): for a
		// definite refusal nothing of the request was accepted.
		if _, err := futs[0].Wait(context.Background()); err != nil && dlog.IsDefinite(err) {
			st.mu.Unlock()
			return nil, err
		}
	default:
	}
	var op *pendingOp
	if req.producer != "" {
		op = st.mu.producers.begin(req.producer, req.firstSeq+k, int64(len(recs)))
	}
	st.pendingRecs.Add(int64(len(recs)))
	st.pendingBytes.Add(bytes)
	s.metrics.pendingWrites.Add(float64(len(recs)))
	accepted := time.Now()
	st.mu.Unlock()

	// Wait for the outcome whatever the caller's ctx says: the writer
	// resolves every accepted record (acknowledgement, failure or close),
	// and the dedup table and the pending counts need that outcome.
	res := make([]writeResult, len(recs))
	var failure error
	var okRecs, okBytes int64
	for i, f := range futs {
		<-f.Done()
		d, err := f.Wait(context.Background())
		res[i] = writeResult{dlsn: d, txid: recs[i].TxID, err: err}
		switch {
		case err == nil:
			okRecs++
			okBytes += int64(len(recs[i].Payload))
		case failure == nil && !dlog.IsDefinite(err):
			failure = err
		}
	}
	s.metrics.writeLatency.Observe(time.Since(accepted).Seconds())
	st.mu.Lock()
	if op != nil {
		st.mu.producers.finish(op, res)
	}
	st.mu.Unlock()
	st.pendingRecs.Add(-int64(len(recs)))
	st.pendingBytes.Add(-bytes)
	s.metrics.pendingWrites.Sub(float64(len(recs)))
	s.metrics.writeRecords.WithLabelValues(st.label).Add(float64(okRecs))
	s.metrics.writeBytes.WithLabelValues(st.label).Add(float64(okBytes))
	if failure != nil {
		st.fail(failure)
	}
	return res, nil
}
