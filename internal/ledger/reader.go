package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
	"github.com/dlog-io/dlog/internal/quorum"
)

// pollRetryDelay spaces long polls to a bookie that failed (unreachable,
// erroring), so a dead bookie is not hammered while a reader waits.
const pollRetryDelay = 200 * time.Millisecond

// Entry is one entry read back from a ledger.
type Entry struct {
	ID      int64
	Payload []byte
}

// Reader reads a ledger without recovering it: it serves only entries up
// to the LAC it knows (the max LAC reported by the last fragment's bookies,
// or the last entry once the ledger is CLOSED), so it never shows an entry
// that was not acknowledged. It neither fences nor changes anything. Safe
// for concurrent use; it owns no goroutine between calls.
type Reader struct {
	c  *Client
	id int64
	p  quorum.Params

	mu struct {
		sync.Mutex
		md      metadata.LedgerMetadata
		version metadata.Version
		lac     int64
		sealed  bool // the ledger is CLOSED: lac is its last entry
		closed  bool // Close was called
	}
}

// OpenReader opens a ledger for reading without recovery. For an OPEN (or
// IN_RECOVERY) ledger the LAC is the highest the last fragment's bookies
// report (best effort: it waits until the answers cover every write set, or
// all answered, or Config.ReadTimeout); it is never below the last
// fragment's first entry − 1. Errors: ErrNoLedger, metadata errors, ctx's.
func (c *Client) OpenReader(ctx context.Context, id int64) (*Reader, error) {
	md, ver, err := c.Metadata(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := checkFormat(id, md.EntryFormat); err != nil {
		return nil, err
	}
	r := &Reader{c: c, id: id, p: quorum.Params{EnsembleSize: md.EnsembleSize, WriteQuorum: md.WriteQuorum, AckQuorum: md.AckQuorum}}
	r.mu.lac = -1
	r.apply(md, ver)
	if r.Sealed() {
		return r, nil
	}
	lac, err := r.readLAC(ctx, md)
	if err != nil {
		return nil, err
	}
	r.advance(lac)
	return r, nil
}

// ID returns the ledger id.
func (r *Reader) ID() int64 { return r.id }

// LAC returns the highest entry this reader may serve (-1: none).
func (r *Reader) LAC() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.lac
}

// Sealed reports whether the reader has seen the ledger CLOSED: LAC is then
// the ledger's last entry and will not move.
func (r *Reader) Sealed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.sealed
}

// Metadata returns a copy of the metadata the reader last saw.
func (r *Reader) Metadata() metadata.LedgerMetadata {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneMetadata(r.mu.md)
}

// Close marks the reader closed; later calls fail with ErrClosed.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.closed = true
	return nil
}

// apply installs newer metadata; a CLOSED ledger fixes the LAC.
func (r *Reader) apply(md metadata.LedgerMetadata, ver metadata.Version) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ver < r.mu.version {
		return
	}
	r.mu.md, r.mu.version = cloneMetadata(md), ver
	if last := md.Fragments[len(md.Fragments)-1].FirstEntryID - 1; last > r.mu.lac {
		// Entries before the last fragment were all acknowledged when it
		// was created.
		r.mu.lac = last
	}
	if md.State == metadata.LedgerClosed {
		r.mu.sealed = true
		r.mu.lac = md.LastEntryID
	}
}

// advance raises the LAC to lac (never past a sealed end).
func (r *Reader) advance(lac int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.mu.sealed && lac > r.mu.lac {
		r.mu.lac = lac
	}
	return r.mu.lac
}

func (r *Reader) state() (metadata.LedgerMetadata, metadata.Version, int64, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.closed {
		return metadata.LedgerMetadata{}, 0, 0, false, fmt.Errorf("ledger %d: reader: %w", r.id, ErrClosed)
	}
	return r.mu.md, r.mu.version, r.mu.lac, r.mu.sealed, nil
}

// RefreshLAC re-reads the metadata (noticing CLOSED and new fragments)
// and, while the ledger is not closed, asks the last fragment's bookies for
// their LAC. It returns the reader's LAC.
func (r *Reader) RefreshLAC(ctx context.Context) (int64, error) {
	if _, _, _, _, err := r.state(); err != nil {
		return 0, err
	}
	md, ver, err := r.c.Metadata(ctx, r.id)
	if err != nil {
		return r.LAC(), err
	}
	r.apply(md, ver)
	if r.Sealed() {
		return r.LAC(), nil
	}
	lac, err := r.readLAC(ctx, md)
	if err != nil {
		return r.LAC(), err
	}
	return r.advance(lac), nil
}

type lacAnswer struct {
	bookie string
	index  int
	resp   *bookiepb.Response
	err    error
}

// readLAC asks every bookie of the last fragment for its LAC (no long
// poll) and returns the max, once the answers cover every write set or no
// answer is pending. Any LAC a bookie reports was piggybacked or sent by
// the writer, so it only names acknowledged entries.
func (r *Reader) readLAC(ctx context.Context, md metadata.LedgerMetadata) (int64, error) {
	frag := md.Fragments[len(md.Fragments)-1]
	states := make([]quorum.Response, len(frag.Bookies))
	box := newInbox[lacAnswer]()
	cctx, cancel := context.WithTimeout(ctx, r.c.cfg.ReadTimeout)
	defer cancel()
	pending := 0
	for i, b := range frag.Bookies {
		addr, ok := r.c.Address(b)
		if !ok {
			states[i] = quorum.Failed
			continue
		}
		states[i] = quorum.Pending
		pending++
		req := &bookiepb.Request{Body: &bookiepb.Request_ReadLac{ReadLac: &bookiepb.ReadLACRequest{LedgerId: r.id}}}
		r.c.bk.Go(cctx, addr, req, func(resp *bookiepb.Response, err error) {
			box.push(lacAnswer{bookie: b, index: i, resp: resp, err: err})
		})
	}
	lac := frag.FirstEntryID - 1
	for pending > 0 && r.p.Coverage(states) != quorum.Covered {
		select {
		case <-box.ready():
		case <-ctx.Done():
			return lac, ctx.Err()
		}
		for _, a := range box.take() {
			pending--
			switch {
			case a.err == nil && a.resp.GetReadLac() != nil:
				states[a.index] = quorum.Answered
				lac = max(lac, a.resp.GetReadLac().Lac)
			case bookieclient.IsExplicitNegative(a.err):
				states[a.index] = quorum.Answered
			default:
				states[a.index] = quorum.Failed
			}
		}
	}
	if bugs.On(bugs.ReaderPastLAC) {
		lac = max(lac, r.lastAdded(ctx, md))
	}
	return lac, nil
}

// lastAdded is the seeded bug bugs.ReaderPastLAC: it asks the last
// fragment's bookies for the last entry they hold (a plain, fence-less read
// of entry -1) and returns the highest, acknowledged or not, which the
// buggy reader then takes for the LAC. Recovery may truncate such an entry
// when the writer dies before it is acknowledged.
func (r *Reader) lastAdded(ctx context.Context, md metadata.LedgerMetadata) int64 {
	frag := md.Fragments[len(md.Fragments)-1]
	cctx, cancel := context.WithTimeout(ctx, r.c.cfg.ReadTimeout)
	defer cancel()
	answers := make(chan int64, len(frag.Bookies)) // one slot per request: callbacks never block
	asked := 0
	for _, b := range frag.Bookies {
		addr, ok := r.c.Address(b)
		if !ok {
			continue
		}
		asked++
		req := &bookiepb.Request{Body: &bookiepb.Request_Read{Read: &bookiepb.ReadRequest{LedgerId: r.id, EntryId: -1}}}
		r.c.bk.Go(cctx, addr, req, func(resp *bookiepb.Response, err error) {
			last := int64(-1)
			if e := resp.GetRead().GetEntry(); err == nil && e != nil && e.LedgerId == r.id {
				last = e.EntryId
			}
			answers <- last
		})
	}
	last := frag.FirstEntryID - 1
	for range asked {
		select {
		case l := <-answers:
			last = max(last, l)
		case <-cctx.Done():
			return last
		}
	}
	return last
}

// WaitLAC returns the reader's LAC as soon as it is greater than previous:
// at once if it already is; otherwise it long-polls the last fragment's
// bookies (the first answer above previous wins) while watching the
// ledger's metadata for a close or a new fragment. On a CLOSED ledger whose
// last entry is not after previous it returns the last entry and
// ErrEndOfLedger. Errors: ctx's (with the current LAC), ErrNoLedger if the
// ledger is deleted, ErrClosed.
func (r *Reader) WaitLAC(ctx context.Context, previous int64) (int64, error) {
	md, ver, lac, sealed, err := r.state()
	if err != nil {
		return 0, err
	}
	switch {
	case lac > previous:
		return lac, nil
	case sealed:
		return lac, fmt.Errorf("ledger %d: %w at entry %d", r.id, ErrEndOfLedger, lac)
	}
	if bugs.On(bugs.ReaderPastLAC) {
		if l := r.advance(r.lastAdded(ctx, md)); l > previous {
			return l, nil
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := r.c.store.WatchLedger(wctx, r.id, int64(ver)+1)
	box := newInbox[lacAnswer]()
	polling := make(map[string]bool)
	var timers []*time.Timer
	defer func() {
		for _, t := range timers {
			t.Stop()
		}
	}()
	poll := func(b string, delay time.Duration) {
		polling[b] = true
		do := func() {
			addr, ok := r.c.Address(b)
			if !ok {
				box.push(lacAnswer{bookie: b, err: bookieclient.ErrUnavailable})
				return
			}
			pctx, pcancel := context.WithTimeout(wctx, r.c.cfg.LongPollTimeout)
			req := &bookiepb.Request{Body: &bookiepb.Request_ReadLac{ReadLac: &bookiepb.ReadLACRequest{
				LedgerId: r.id, LongPoll: true, PreviousLac: previous,
			}}}
			r.c.bk.Go(pctx, addr, req, func(resp *bookiepb.Response, err error) {
				pcancel()
				box.push(lacAnswer{bookie: b, resp: resp, err: err})
			})
		}
		if delay == 0 {
			do()
		} else {
			timers = append(timers, time.AfterFunc(delay, do))
		}
	}
	current := func() []string { return md.Fragments[len(md.Fragments)-1].Bookies }
	for _, b := range current() {
		poll(b, 0)
	}
	// onMetadata applies a metadata change; done reports a final answer.
	onMetadata := func(next metadata.LedgerMetadata, v metadata.Version) (int64, bool, error) {
		r.apply(next, v)
		md = next
		if r.Sealed() {
			l := r.LAC()
			if l > previous {
				return l, true, nil
			}
			return l, true, fmt.Errorf("ledger %d: %w at entry %d", r.id, ErrEndOfLedger, l)
		}
		if l := r.LAC(); l > previous {
			return l, true, nil
		}
		for _, b := range current() {
			if !polling[b] {
				poll(b, 0)
			}
		}
		return 0, false, nil
	}
	for {
		select {
		case <-ctx.Done():
			return r.LAC(), ctx.Err()
		case ev, ok := <-events:
			switch {
			case !ok:
				events = nil // ctx ended (handled above) or the store closed
			case ev.Err != nil:
				events = nil
				if errors.Is(ev.Err, metadata.ErrWatchLagged) {
					next, v, err := r.c.Metadata(ctx, r.id)
					if err != nil {
						return r.LAC(), err
					}
					if l, done, err := onMetadata(next, v); done {
						return l, err
					}
					events = r.c.store.WatchLedger(wctx, r.id, int64(v)+1)
				}
			case ev.Type == metadata.EventDelete:
				return r.LAC(), fmt.Errorf("ledger %d: %w (deleted)", r.id, ErrNoLedger)
			default:
				if l, done, err := onMetadata(ev.Ledger, ev.Version); done {
					return l, err
				}
			}
		case <-box.ready():
			for _, a := range box.take() {
				polling[a.bookie] = false
				if a.err == nil && a.resp.GetReadLac() != nil {
					if l := r.advance(a.resp.GetReadLac().Lac); l > previous {
						return l, nil
					}
				}
				stillMember := false
				for _, b := range current() {
					stillMember = stillMember || b == a.bookie
				}
				switch {
				case !stillMember:
				case a.err == nil, errors.Is(a.err, bookieclient.ErrTimeout):
					poll(a.bookie, 0) // long poll ended without news
				default:
					poll(a.bookie, pollRetryDelay)
				}
			}
		}
	}
}

// Read returns entries first..last in order, each verified (checksum,
// ledger and entry id). It refuses entries beyond the reader's LAC with
// ErrBeyondLAC. On an error it returns the entries read before the first
// failure. Errors: ErrBeyondLAC, ErrInconsistent (every bookie of an
// entry's write set denies an entry at or below the LAC: acknowledged data
// is missing), ErrUnavailable (no bookie answered usefully; retry), ctx's,
// ErrClosed, ErrInvalidArgument.
func (r *Reader) Read(ctx context.Context, first, last int64) ([]Entry, error) {
	md, _, lac, _, err := r.state()
	if err != nil {
		return nil, err
	}
	if first < 0 || last < first {
		return nil, fmt.Errorf("ledger %d: %w: read %d..%d", r.id, ErrInvalidArgument, first, last)
	}
	if last > lac && !bugs.On(bugs.ReaderPastLAC) {
		return nil, fmt.Errorf("ledger %d: read %d..%d: %w %d", r.id, first, last, ErrBeyondLAC, lac)
	}
	n := int(last - first + 1)
	out := make([]Entry, n)
	errs := make([]error, n)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, r.c.cfg.ReadAhead)
	var wg sync.WaitGroup
	issued := 0
issue:
	for ; issued < n; issued++ {
		select {
		case sem <- struct{}{}:
		case <-rctx.Done():
			break issue
		}
		i := issued
		wg.Go(func() {
			defer func() { <-sem }()
			e, err := r.readEntry(rctx, first+int64(i), md)
			if err != nil {
				errs[i] = err
				cancel()
				return
			}
			out[i] = e
		})
	}
	wg.Wait()
	for i := range issued {
		if errs[i] != nil {
			return out[:i], errs[i]
		}
	}
	if issued < n {
		return out[:issued], fmt.Errorf("ledger %d: read: %w", r.id, ctx.Err())
	}
	return out, nil
}

// readEntry reads one entry from its write set. If every bookie denies it,
// the metadata is re-read once (the entry may live in a fragment created
// after this reader's copy) before the denial is called an inconsistency.
func (r *Reader) readEntry(ctx context.Context, e int64, md metadata.LedgerMetadata) (Entry, error) {
	for attempt := 0; ; attempt++ {
		ensemble := md.Fragments[fragmentFor(md, e)].Bookies
		ws := r.p.WriteSet(e)
		ids := make([]string, len(ws))
		for k, idx := range ws {
			ids[k] = ensemble[idx]
		}
		got, allDenied, err := r.c.speculativeRead(ctx, r.id, e, md.EntryFormat, r.c.readOrder(ids))
		if err == nil {
			r.advance(got.lac)
			return Entry{ID: e, Payload: got.payload}, nil
		}
		if !allDenied || ctx.Err() != nil {
			r.c.metrics.readErrors.WithLabelValues("unavailable").Inc()
			return Entry{}, err
		}
		if attempt == 0 {
			next, ver, merr := r.c.Metadata(ctx, r.id)
			if merr == nil && fragmentFor(next, e) != fragmentFor(md, e) || merr == nil && len(next.Fragments) != len(md.Fragments) {
				r.apply(next, ver)
				md = next
				continue
			}
		}
		r.c.metrics.readErrors.WithLabelValues("inconsistent").Inc()
		r.c.log.Error("entry at or below the LAC denied by every bookie of its write set", "ledger-id", r.id, "entry-id", e, "bookies", ids)
		return Entry{}, fmt.Errorf("ledger %d entry %d: %w (bookies %v)", r.id, e, ErrInconsistent, ids)
	}
}

type readAnswer struct {
	resp *bookiepb.Response
	err  error
	sent time.Time
}

// readResult is one entry read and decoded.
type readResult struct {
	lac     int64  // the LAC the entry carried
	payload []byte // the caller's payload
	length  int64  // cumulative ledger length through the entry; -1 unknown
}

// speculativeRead asks the bookies in order: the next one when the
// previous answered an error (at once) or has not answered within the
// speculative timeout; the first valid entry (checksum, ids and the
// ledger's entry format) wins. allDenied reports that every bookie
// answered an explicit negative.
func (c *Client) speculativeRead(ctx context.Context, ledgerID, e int64, format int, order []string) (readResult, bool, error) {
	answers := make(chan readAnswer, len(order)) // one slot per request: callbacks never block
	cctx, cancel := context.WithTimeout(ctx, c.cfg.ReadTimeout)
	defer cancel()
	next, outstanding, negatives := 0, 0, 0
	var lastErr error
	start := func() bool {
		for next < len(order) {
			b := order[next]
			next++
			addr, ok := c.Address(b)
			if !ok {
				lastErr = fmt.Errorf("%w: bookie %s has no known address", bookieclient.ErrUnavailable, b)
				continue
			}
			outstanding++
			sent := time.Now()
			req := &bookiepb.Request{Body: &bookiepb.Request_Read{Read: &bookiepb.ReadRequest{LedgerId: ledgerID, EntryId: e}}}
			c.bk.Go(cctx, addr, req, func(resp *bookiepb.Response, err error) {
				answers <- readAnswer{resp, err, sent}
			})
			return true
		}
		return false
	}
	start()
	spec := c.spec.timeout()
	var timer *time.Timer
	var timerC <-chan time.Time
	if spec > 0 {
		timer = time.NewTimer(spec)
		defer timer.Stop()
		timerC = timer.C
	}
	for outstanding > 0 {
		select {
		case a := <-answers:
			outstanding--
			if a.err == nil {
				if entry := a.resp.GetRead().GetEntry(); entry != nil && entry.Verify() && entry.LedgerId == ledgerID && entry.EntryId == e {
					if payload, length, ok := unframe(format, entry.Payload); ok {
						took := time.Since(a.sent)
						c.spec.observe(took)
						c.metrics.readLatency.Observe(took.Seconds())
						return readResult{lac: entry.Lac, payload: payload, length: length}, false, nil
					}
				}
				lastErr = fmt.Errorf("%w: entry %d:%d failed verification", bookieclient.ErrBadResponse, ledgerID, e)
			} else if bookieclient.IsExplicitNegative(a.err) {
				negatives++
			} else {
				lastErr = a.err
			}
			if start() && timer != nil {
				timer.Reset(spec)
			}
		case <-timerC:
			if start() {
				c.metrics.speculativeReads.Inc()
				timer.Reset(spec)
			} else {
				timerC = nil
			}
		case <-ctx.Done():
			return readResult{}, false, fmt.Errorf("ledger %d entry %d: %w", ledgerID, e, ctx.Err())
		}
	}
	if negatives == len(order) {
		return readResult{}, true, fmt.Errorf("ledger %d entry %d: %w", ledgerID, e, bookieclient.ErrNoEntry)
	}
	return readResult{}, false, fmt.Errorf("ledger %d entry %d: %w: %w", ledgerID, e, ErrUnavailable, lastErr)
}
