package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/internal/proxy/status"
)

// Position says where a reader starts.
type Position struct {
	kind posKind
	dlsn dlog.DLSN
	txid int64
	sub  string
}

type posKind int

const (
	posDLSN posKind = iota + 1
	posTxID
	posStart
	posEnd
	posSubscription
)

// AtDLSN starts at the record at d, or the first one after it.
func AtDLSN(d dlog.DLSN) Position { return Position{kind: posDLSN, dlsn: d} }

// AtTxID starts at the first record with txid >= txid.
func AtTxID(txid int64) Position { return Position{kind: posTxID, txid: txid} }

// AtStart starts at the first readable record.
func AtStart() Position { return Position{kind: posStart} }

// AtEnd starts after the last record written so far.
func AtEnd() Position { return Position{kind: posEnd} }

// AtSubscription starts after the position stored for a subscription.
func AtSubscription(name string) Position { return Position{kind: posSubscription, sub: name} }

// ReadOptions tune a reader.
type ReadOptions struct {
	// Follow keeps the reader at the tail waiting for new records;
	// otherwise it ends (io.EOF) at the last record readable when it
	// started (the last acknowledged entry becomes readable with the next
	// write or a few ms later; Client.Heartbeat waits for it).
	Follow bool
	// Limit stops the reader (io.EOF) after this many records; 0: none.
	Limit int64
	// SkipTruncated starts a reader whose DLSN lies in truncated data at
	// the first readable record instead of failing with dlog.ErrTruncated.
	SkipTruncated bool
}

// Reader streams a log's records through the proxies. It resumes after
// any proxy failure from the record after the last one it received, on
// another proxy when needed, so it never skips or repeats a record. One
// goroutine (owned by the Reader, stopped by Close) receives ahead into a
// buffer of one response; Next is for one goroutine at a time.
type Reader struct {
	c    *Client
	log  string
	opts ReadOptions

	ctx    context.Context // ended by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	ch     chan readBatch // capacity 1: one response read ahead

	buf  []dlog.ReadRecord
	err  error     // terminal, returned again by every later Next
	last dlog.DLSN // of the last record Next returned
}

type readBatch struct {
	recs []dlog.ReadRecord
	err  error
}

// OpenReader starts reading log at pos. Errors of the start (an unknown
// log, a truncated position) come from the first Next. The reader uses
// any proxy (by consistent hashing of the log); close it with Close.
func (c *Client) OpenReader(ctx context.Context, log string, pos Position, opts ReadOptions) (*Reader, error) {
	if err := dlog.ValidateName(log); err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	if pos.kind == 0 {
		return nil, fmt.Errorf("%w: zero Position (use AtDLSN, AtTxID, AtStart, AtEnd or AtSubscription)", dlog.ErrInvalidArgument)
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("%w: negative limit", dlog.ErrInvalidArgument)
	}
	c.mu.Lock()
	closed := c.mu.closed
	c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("client: %w", dlog.ErrClosed)
	}
	r := &Reader{c: c, log: log, opts: opts, ch: make(chan readBatch, 1)}
	r.ctx, r.cancel = context.WithCancel(c.bg)
	p := &pump{r: r, start: pos, remaining: opts.Limit}
	r.wg.Go(p.run)
	return r, nil
}

// Next returns the next record, waiting for one. Errors: ctx's (the
// reader stays usable); io.EOF at the end of a non-follow read or after
// Limit records; dlog.ErrEndOfStream after the last record of a sealed
// log; dlog.ErrClosed after Close; definite errors of the log
// (dlog.ErrLogNotFound, dlog.ErrTruncated, ...). Terminal errors are
// returned again by every later call.
func (r *Reader) Next(ctx context.Context) (dlog.ReadRecord, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return dlog.ReadRecord{}, r.err
		}
		select {
		case b := <-r.ch:
			r.buf, r.err = b.recs, b.err
		case <-ctx.Done():
			return dlog.ReadRecord{}, ctx.Err()
		case <-r.ctx.Done():
			r.err = fmt.Errorf("reader: %w", dlog.ErrClosed)
		}
	}
	rec := r.buf[0]
	r.buf[0] = dlog.ReadRecord{}
	r.buf = r.buf[1:]
	r.last = rec.DLSN
	return rec, nil
}

// All iterates over the records until an error; the last pair carries it
// (io.EOF for a reader that simply ended).
func (r *Reader) All(ctx context.Context) iter.Seq2[dlog.ReadRecord, error] {
	return func(yield func(dlog.ReadRecord, error) bool) {
		for {
			rec, err := r.Next(ctx)
			if err != nil {
				yield(dlog.ReadRecord{}, err)
				return
			}
			if !yield(rec, nil) {
				return
			}
		}
	}
}

// LastDLSN is the DLSN of the last record Next returned (InvalidDLSN
// before the first).
func (r *Reader) LastDLSN() dlog.DLSN { return r.last }

// Close stops the reader and waits for its goroutine. Safe to call twice.
func (r *Reader) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}

// pump is the reader's goroutine: it holds the stream, and after a
// failure opens a new one from the position after the last record it
// received.
type pump struct {
	r         *Reader
	start     Position
	pos       dlog.DLSN // next position, once known
	posKnown  bool
	remaining int64 // records still to read under Limit (0: no limit)
}

func (p *pump) push(b readBatch) bool {
	select {
	case p.r.ch <- b:
		return true
	case <-p.r.ctx.Done():
		return false
	}
}

func (p *pump) request() *dlogpb.ReadRequest {
	r := p.r
	req := &dlogpb.ReadRequest{Log: r.c.ref(r.log), Follow: r.opts.Follow, SkipTruncated: r.opts.SkipTruncated}
	if r.opts.Limit > 0 {
		req.Limit = p.remaining
	}
	switch {
	case p.posKnown:
		req.From = &dlogpb.ReadRequest_Dlsn{Dlsn: p.pos.String()}
	case p.start.kind == posDLSN:
		req.From = &dlogpb.ReadRequest_Dlsn{Dlsn: p.start.dlsn.String()}
	case p.start.kind == posTxID:
		req.From = &dlogpb.ReadRequest_Txid{Txid: p.start.txid}
	case p.start.kind == posStart:
		req.From = &dlogpb.ReadRequest_Start{Start: true}
	case p.start.kind == posEnd:
		req.From = &dlogpb.ReadRequest_End{End: true}
	case p.start.kind == posSubscription:
		req.From = &dlogpb.ReadRequest_Subscription{Subscription: p.start.sub}
	}
	return req
}

func (p *pump) run() {
	r := p.r
	c := r.c
	key := r.c.logKey(r.log)
	tried := make(map[string]bool)
	failures := 0
	backoff := c.cfg.RetryBackoffMin
	for {
		addr := c.pick(key, routeAny, tried)
		if addr == "" {
			clear(tried)
			addr = c.pick(key, routeAny, tried)
		}
		progressed, err := p.stream(addr)
		if r.ctx.Err() != nil {
			return
		}
		if err == nil {
			p.push(readBatch{err: io.EOF})
			return
		}
		switch {
		case errors.Is(err, errEndOfStream):
			p.push(readBatch{err: fmt.Errorf("log %s: %w", r.log, dlog.ErrEndOfStream)})
			return
		case dlog.IsDefinite(err) && !isStreamUnavailable(err):
			p.push(readBatch{err: err})
			return
		}
		if progressed {
			failures = 0
			backoff = c.cfg.RetryBackoffMin
			clear(tried)
		}
		failures++
		if status.IsTransport(err) {
			c.blackout(addr)
		}
		tried[addr] = true
		if failures >= c.cfg.MaxAttempts {
			p.push(readBatch{err: err})
			return
		}
		c.log.Debug("read stream failed; resuming", "log", r.log, "proxy", addr, "from", p.pos.String(), "err", err)
		if sleep(r.ctx, backoff) != nil {
			return
		}
		backoff = min(2*backoff, c.cfg.RetryBackoffMax)
	}
}

// errEndOfStream: the stream ended with end_of_stream.
var errEndOfStream = errors.New("client: end of stream")

func isStreamUnavailable(err error) bool {
	var se *status.Error
	return errors.As(err, &se) && se.Code == dlogpb.Code_CODE_STREAM_UNAVAILABLE
}

// stream reads one stream from addr until it ends; progressed reports
// whether it delivered anything.
func (p *pump) stream(addr string) (progressed bool, err error) {
	r := p.r
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	st, err := r.c.stubsFor(addr).log.Read(ctx, connect.NewRequest(p.request()))
	if err != nil {
		return false, status.FromConnect(err, r.c.logKey(r.log))
	}
	defer st.Close()
	for st.Receive() {
		msg := st.Msg()
		if d := msg.GetResumeDlsn(); d != "" && !p.posKnown {
			if pos, err := dlog.ParseDLSN(d); err == nil {
				p.pos, p.posKnown = pos, true
			}
		}
		if n := len(msg.GetRecords()); n > 0 {
			recs := make([]dlog.ReadRecord, 0, n)
			for _, m := range msg.GetRecords() {
				d, err := dlog.ParseDLSN(m.GetDlsn())
				if err != nil {
					return progressed, dlog.Indeterminate(fmt.Errorf("proxy %s sent a bad DLSN: %w", addr, err))
				}
				if p.posKnown && d.Less(p.pos) {
					continue // never deliver a record twice
				}
				recs = append(recs, dlog.ReadRecord{DLSN: d, TxID: m.GetTxid(), SequenceID: m.GetSequenceId(), Payload: m.GetPayload(),
					ProducerID: m.GetProducerId(), Sequence: m.GetSequence()})
				p.pos, p.posKnown = d.Next(), true
			}
			if len(recs) > 0 {
				progressed = true
				if r.opts.Limit > 0 {
					p.remaining -= int64(len(recs))
				}
				if !p.push(readBatch{recs: recs}) {
					return progressed, r.ctx.Err()
				}
			}
		}
		if msg.GetEndOfStream() {
			return progressed, errEndOfStream
		}
	}
	if err := st.Err(); err != nil {
		return progressed, status.FromConnect(err, r.c.logKey(r.log))
	}
	return progressed, nil
}
