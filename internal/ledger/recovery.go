package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
	"github.com/dlog-io/dlog/internal/quorum"
)

// recoveryAttempts bounds how often Recover re-reads metadata that another
// client keeps changing under it before giving up (retryably).
const recoveryAttempts = 8

// Recover closes a ledger whose writer may be gone, so that a new writer can
// take over (see the package documentation for the steps and why each
// recovery read fences). A CLOSED ledger's metadata is returned unchanged.
// Otherwise the ledger is moved to IN_RECOVERY, its last fragment fenced,
// its tail read and re-replicated, and it is closed at the last entry that
// may have been acknowledged; entries the old writer got acknowledged are
// never cut off. Concurrent recoveries converge: the CAS decides, and the
// loser returns the winner's CLOSED metadata.
//
// Errors: ErrNoLedger; ErrRecoveryIncomplete (retry later: fencing not
// covered, an entry neither readable nor provably absent, re-replication
// short of the ack quorum, metadata unavailable); ctx's error. On error the
// ledger is left IN_RECOVERY (or OPEN) and is never shortened.
//
// The returned metadata's Length is -1 when recovery closed the ledger:
// entries carry no cumulative length, so recovery cannot know the payload
// bytes of entries it did not read.
func (c *Client) Recover(ctx context.Context, id int64) (metadata.LedgerMetadata, error) {
	start := time.Now()
	md, result, err := c.recover(ctx, id)
	c.metrics.recoveries.WithLabelValues(result).Inc()
	if err != nil {
		c.log.Warn("ledger recovery failed", "ledger-id", id, "took", time.Since(start), "err", err)
		return metadata.LedgerMetadata{}, err
	}
	if result == "closed" {
		c.metrics.recoveryDuration.Observe(time.Since(start).Seconds())
		c.log.Info("ledger recovered", "ledger-id", id, "last-entry-id", md.LastEntryID, "took", time.Since(start))
	}
	return md, nil
}

func (c *Client) recover(ctx context.Context, id int64) (metadata.LedgerMetadata, string, error) {
	for range recoveryAttempts {
		md, ver, err := c.Metadata(ctx, id)
		if err != nil {
			return md, "failed", c.recoveryErr(id, "read metadata", err)
		}
		switch md.State {
		case metadata.LedgerClosed:
			return md, "already-closed", nil
		case metadata.LedgerOpen:
			next := cloneMetadata(md)
			next.State = metadata.LedgerInRecovery
			v, _, err := updateLedger(ctx, c, id, ver, next)
			if errors.Is(err, errMetadataChanged) {
				continue
			}
			if err != nil {
				return md, "failed", c.recoveryErr(id, "mark in recovery", err)
			}
			md, ver = next, v
		}
		last, err := c.recoverData(ctx, id, md)
		if err != nil {
			return md, "failed", err
		}
		next := cloneMetadata(md)
		next.State = metadata.LedgerClosed
		next.LastEntryID = last
		next.Length = -1 // unknown: see the package documentation
		if last < 0 {
			next.Length = 0
		}
		_, cur, err := updateLedger(ctx, c, id, ver, next)
		switch {
		case err == nil:
			return next, "closed", nil
		case errors.Is(err, errMetadataChanged):
			if cur.State == metadata.LedgerClosed {
				return cur, "already-closed", nil // another recovery won the CAS
			}
			continue
		}
		return md, "failed", c.recoveryErr(id, "close", err)
	}
	return metadata.LedgerMetadata{}, "failed", fmt.Errorf("ledger %d: %w: metadata kept changing", id, ErrRecoveryIncomplete)
}

// recoveryErr makes metadata trouble retryable while keeping the cause.
func (c *Client) recoveryErr(id int64, step string, err error) error {
	switch {
	case errors.Is(err, ErrNoLedger), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("recover ledger %d: %s: %w", id, step, err)
	case errors.Is(err, metadata.ErrUnavailable):
		return fmt.Errorf("recover ledger %d: %s: %w: %w", id, step, ErrRecoveryIncomplete, err)
	}
	return fmt.Errorf("recover ledger %d: %s: %w", id, step, err)
}

// recovery is one attempt at fencing and reading the tail of a ledger.
type recovery struct {
	c        *Client
	id       int64
	p        quorum.Params
	ensemble []string // the last fragment's
	first    int64    // the last fragment's first entry
	key      []byte

	// fenceBox receives the answers to the fencing reads and identity
	// checks; late ones keep arriving while the tail is scanned.
	fenceBox *inbox[fenceAnswer]
	// identity[i] is identityUnknown until the bookie at ensemble index i
	// proves to be the one the fragment names (identityConfirmed), or
	// answers as another bookie or not at all (identityRejected). Recovery
	// read answers and recovery add acks count only from confirmed
	// members; until then they wait (see scan).
	identity []identityState
}

type identityState int8

const (
	identityUnknown identityState = iota
	identityConfirmed
	identityRejected
)

// recoverData fences the last fragment and finds (and re-replicates) the
// ledger's tail; it returns the last entry id.
func (c *Client) recoverData(ctx context.Context, id int64, md metadata.LedgerMetadata) (int64, error) {
	frag := md.Fragments[len(md.Fragments)-1]
	r := &recovery{
		c:        c,
		id:       id,
		p:        quorum.Params{EnsembleSize: md.EnsembleSize, WriteQuorum: md.WriteQuorum, AckQuorum: md.AckQuorum},
		ensemble: frag.Bookies,
		first:    frag.FirstEntryID,
		key:      md.MasterKey,
		fenceBox: newInbox[fenceAnswer](),
		identity: make([]identityState, len(frag.Bookies)),
	}
	// The fence phase's requests stay live through the scan, so that a
	// late identity check can still confirm a member.
	fctx, cancel := context.WithTimeout(ctx, c.cfg.FenceTimeout+c.cfg.RecoveryReadTimeout)
	defer cancel()
	lac, err := r.fence(ctx, fctx)
	if err != nil {
		return 0, err
	}
	// Every entry before the last fragment was acknowledged when the
	// fragment was created (it starts at the writer's LAC+1), so the scan
	// never starts below it, whatever the fenced bookies know (BookKeeper
	// #2615).
	return r.scan(ctx, max(lac, r.first-1))
}

type fenceAnswer struct {
	index int
	info  bool // the answer to the identity check, not to the fence
	resp  *bookiepb.Response
	err   error
}

// onIdentity records an identity check's answer.
func (r *recovery) onIdentity(a fenceAnswer) {
	b := r.ensemble[a.index]
	if r.identity[a.index] != identityUnknown {
		return
	}
	switch got := a.resp.GetInfo().GetBookieId(); {
	case a.err != nil:
		r.c.log.Debug("identity check failed", "ledger-id", r.id, "bookie", b, "err", a.err)
		r.identity[a.index] = identityRejected
	case got != b:
		r.c.log.Warn("another bookie answers at a fragment member's address; ignoring it",
			"ledger-id", r.id, "bookie", b, "answered-as", got)
		r.identity[a.index] = identityRejected
	default:
		r.identity[a.index] = identityConfirmed
	}
}

// fence sends a fencing read (entry -1, fence flag, master key) to every
// bookie of the last fragment and waits until the answers cover every
// write set (quorum.Params.Coverage): then no write set can give the old
// writer Qa acks any more. It returns the highest LAC among the answers.
//
// Each bookie is also asked for its identity (Info, on the same stream as
// the fence): a fence answer counts only from the bookie the fragment
// names. A bookie whose disk was lost and that was started as a new
// identity at the old address would otherwise answer "no such entry" for
// data the old identity acknowledged, and recovery could cut the ledger
// short (the limbo case of the BookKeeper TLA+ model). reqCtx bounds the
// requests; ctx the wait.
func (r *recovery) fence(ctx, reqCtx context.Context) (int64, error) {
	states := make([]quorum.Response, r.p.EnsembleSize)
	for i, b := range r.ensemble {
		states[i] = quorum.Pending
		addr, ok := r.c.Address(b)
		if !ok {
			states[i] = quorum.Failed
			r.identity[i] = identityRejected
			continue
		}
		info := &bookiepb.Request{Body: &bookiepb.Request_Info{Info: &bookiepb.InfoRequest{}}}
		r.c.bk.Go(reqCtx, addr, info, func(resp *bookiepb.Response, err error) {
			r.fenceBox.push(fenceAnswer{index: i, info: true, resp: resp, err: err})
		})
		fctx, cancel := context.WithTimeout(reqCtx, r.c.cfg.FenceTimeout)
		req := &bookiepb.Request{Body: &bookiepb.Request_Read{Read: &bookiepb.ReadRequest{
			LedgerId: r.id, EntryId: -1, Fence: true, MasterKey: r.key,
		}}}
		r.c.bk.Go(fctx, addr, req, func(resp *bookiepb.Response, err error) {
			cancel()
			r.fenceBox.push(fenceAnswer{index: i, resp: resp, err: err})
		})
	}
	lac := int64(-1)
	fenced := make([]bool, len(r.ensemble))
	fenceLAC := make([]int64, len(r.ensemble))
	for {
		for i := range states {
			switch {
			case states[i] != quorum.Pending:
			case r.identity[i] == identityRejected:
				states[i] = quorum.Failed
			case fenced[i] && r.identity[i] == identityConfirmed:
				states[i] = quorum.Answered
				lac = max(lac, fenceLAC[i])
			}
		}
		switch r.p.Coverage(states) {
		case quorum.Covered:
			return lac, nil
		case quorum.NeverCovered:
			return 0, fmt.Errorf("recover ledger %d: %w: fencing not covered (answers by ensemble index: %v)", r.id, ErrRecoveryIncomplete, states)
		}
		select {
		case <-r.fenceBox.ready():
		case <-ctx.Done():
			return 0, fmt.Errorf("recover ledger %d: fence: %w", r.id, ctx.Err())
		}
		for _, a := range r.fenceBox.take() {
			i, b := a.index, r.ensemble[a.index]
			if a.info {
				r.onIdentity(a)
				continue
			}
			if states[i] != quorum.Pending {
				continue
			}
			switch {
			case a.err == nil:
				rd := a.resp.GetRead()
				switch {
				case rd == nil || (rd.Entry != nil && (!rd.Entry.Verify() || rd.Entry.LedgerId != r.id)):
					r.c.log.Warn("malformed fence answer", "ledger-id", r.id, "bookie", b)
					states[i] = quorum.Failed
				case !rd.Fenced:
					r.c.log.Error("bookie answered a fencing read without fencing", "ledger-id", r.id, "bookie", b)
					states[i] = quorum.Failed
				default:
					fenced[i] = true
					fenceLAC[i] = rd.Lac
					if rd.Entry != nil {
						fenceLAC[i] = max(fenceLAC[i], rd.Entry.Lac)
					}
				}
			case bookieclient.IsExplicitNegative(a.err):
				// The ledger is gone from this bookie (deleted); the fence
				// is recorded all the same.
				fenced[i] = true
				fenceLAC[i] = -1
			default:
				r.c.log.Debug("fence failed", "ledger-id", r.id, "bookie", b, "err", a.err)
				states[i] = quorum.Failed
			}
		}
	}
}

// recoveryEvent is a recovery read or recovery add answer.
type recoveryEvent struct {
	read  bool
	entry int64
	index int         // ensemble index of the answering bookie
	slot  int         // read: position in the write set
	send  quorum.Send // add
	resp  *bookiepb.Response
	err   error
}

// counts reports whether the answer would count toward a decision (data,
// an explicit negative, an ack) and so must come from a confirmed member.
func (ev recoveryEvent) counts() bool {
	return ev.err == nil || (ev.read && bookieclient.IsExplicitNegative(ev.err))
}

// readState collects the answers to the recovery read of one entry.
type readState struct {
	results []quorum.ReadResult // by write set position
	data    *bookiepb.Entry
}

// scan reads forward from lac+1 with fencing recovery reads, decides each
// entry with quorum.DecideEntry through a quorum.Scan, and re-adds every
// confirmed entry with the recovery flag to its whole write set through a
// tracker; it returns once the scan found the end and every confirmed entry
// is acknowledged by Qa bookies. Answers from a member whose identity is not
// confirmed yet wait for the identity check; if it fails they count as
// unknown (reads) or as a failed member (adds).
func (r *recovery) scan(ctx context.Context, lac int64) (int64, error) {
	window := r.c.cfg.RecoveryWindow
	scan := quorum.NewScan(lac, window)
	tr, err := quorum.NewTrackerAfter(r.p, r.ensemble, lac)
	if err != nil {
		return 0, fmt.Errorf("recover ledger %d: %w", r.id, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	box := newInbox[recoveryEvent]()
	reads := make(map[int64]*readState)
	confirmed := make(map[int64]*bookiepb.Entry) // awaiting Qa recovery adds
	waiting := make([][]recoveryEvent, len(r.ensemble))
	failedMember := make([]bool, len(r.ensemble))
	fence := !bugs.On(bugs.RecoveryReadsDoNotFence)

	issueRead := func(e int64) {
		st := &readState{results: make([]quorum.ReadResult, r.p.WriteQuorum)}
		reads[e] = st
		for k, idx := range r.p.WriteSet(e) {
			st.results[k] = quorum.ReadPending
			addr, ok := r.c.Address(r.ensemble[idx])
			if !ok || r.identity[idx] == identityRejected {
				box.push(recoveryEvent{read: true, entry: e, index: idx, slot: k, err: bookieclient.ErrUnavailable})
				continue
			}
			rd := &bookiepb.ReadRequest{LedgerId: r.id, EntryId: e, Fence: fence}
			if fence {
				rd.MasterKey = r.key
			}
			cctx, ccancel := context.WithTimeout(rctx, r.c.cfg.RecoveryReadTimeout)
			r.c.bk.Go(cctx, addr, &bookiepb.Request{Body: &bookiepb.Request_Read{Read: rd}}, func(resp *bookiepb.Response, err error) {
				ccancel()
				box.push(recoveryEvent{read: true, entry: e, index: idx, slot: k, resp: resp, err: err})
			})
		}
	}
	readd := func(e int64, data *bookiepb.Entry) error {
		id, sends := tr.Add()
		if id != e {
			return fmt.Errorf("recover ledger %d: re-add order: tracker gave %d for %d", r.id, id, e)
		}
		add := &bookiepb.AddRequest{Entry: data, MasterKey: r.key, Recovery: true}
		for _, s := range sends {
			addr, ok := r.c.Address(s.Bookie)
			if !ok {
				box.push(recoveryEvent{entry: e, index: s.Index, send: s, err: bookieclient.ErrUnavailable})
				continue
			}
			cctx, ccancel := context.WithTimeout(rctx, r.c.cfg.RecoveryReadTimeout)
			r.c.bk.AddAsync(cctx, addr, add, func(err error) {
				ccancel()
				box.push(recoveryEvent{entry: e, index: s.Index, send: s, err: err})
			})
		}
		return nil
	}
	// apply feeds one event whose member's identity is settled.
	apply := func(ev recoveryEvent) error {
		if r.identity[ev.index] == identityRejected && ev.counts() {
			ev.resp, ev.err = nil, errUntrusted
		}
		if ev.read {
			return r.onRead(ev, reads, confirmed, scan, readd)
		}
		if ev.err != nil {
			if !failedMember[ev.index] {
				failedMember[ev.index] = true
				r.c.log.Warn("recovery add failed", "ledger-id", r.id, "entry-id", ev.entry, "bookie", ev.send.Bookie, "err", ev.err)
			}
			if _, err := tr.Fail(ev.send.Index); err != nil {
				return fmt.Errorf("recover ledger %d: %w", r.id, err)
			}
			return nil
		}
		acked, err := tr.Ack(ev.entry, ev.send.Index, ev.send.Bookie)
		if err != nil {
			return fmt.Errorf("recover ledger %d: %w", r.id, err)
		}
		for e := acked.First; e <= acked.Last; e++ {
			delete(confirmed, e)
		}
		return nil
	}

	for {
		for tr.Pending() < window {
			e, ok := scan.Next()
			if !ok {
				break
			}
			issueRead(e)
		}
		if stalled := tr.Stalled(); len(stalled) > 0 {
			return 0, fmt.Errorf("recover ledger %d: %w: re-replication of entry %d cannot reach the ack quorum %d",
				r.id, ErrRecoveryIncomplete, stalled[0], r.p.AckQuorum)
		}
		switch scan.State() {
		case quorum.ScanFailed:
			return 0, fmt.Errorf("recover ledger %d: %w: %w", r.id, ErrRecoveryIncomplete, scan.Err())
		case quorum.ScanDone:
			if tr.LAC() >= scan.LastEntryID() {
				return scan.LastEntryID(), nil
			}
		}
		select {
		case <-box.ready():
		case <-r.fenceBox.ready():
		case <-ctx.Done():
			return 0, fmt.Errorf("recover ledger %d: %w", r.id, ctx.Err())
		}
		for _, a := range r.fenceBox.take() {
			if !a.info {
				continue // a late fence answer: its LAC is no longer needed
			}
			r.onIdentity(a)
			if r.identity[a.index] != identityUnknown {
				held := waiting[a.index]
				waiting[a.index] = nil
				for _, ev := range held {
					if err := apply(ev); err != nil {
						return 0, err
					}
				}
			}
		}
		for _, ev := range box.take() {
			if r.identity[ev.index] == identityUnknown && ev.counts() {
				waiting[ev.index] = append(waiting[ev.index], ev)
				continue
			}
			if err := apply(ev); err != nil {
				return 0, err
			}
		}
	}
}

// errUntrusted replaces answers from a member whose identity check failed.
var errUntrusted = errors.New("ledger: answer from a bookie that is not the fragment member")

// onRead records one recovery read answer and, once the entry is decided,
// feeds the scan and re-adds what it confirms.
func (r *recovery) onRead(ev recoveryEvent, reads map[int64]*readState, confirmed map[int64]*bookiepb.Entry,
	scan *quorum.Scan, readd func(int64, *bookiepb.Entry) error) error {
	st := reads[ev.entry]
	if st == nil {
		return nil // decided already
	}
	res := quorum.ReadUnknown
	switch {
	case ev.err == nil:
		if e := ev.resp.GetRead().GetEntry(); e != nil && e.Verify() && e.LedgerId == r.id && e.EntryId == ev.entry {
			res = quorum.ReadPresent
			if st.data == nil {
				st.data = e
			}
		}
	case errors.Is(ev.err, bookieclient.ErrNoEntry):
		res = quorum.ReadNoEntry
	case errors.Is(ev.err, bookieclient.ErrNoLedger):
		res = quorum.ReadNoLedger
	}
	st.results[ev.slot] = res
	d := r.p.DecideEntry(st.results)
	if d == quorum.Undecided {
		return nil
	}
	delete(reads, ev.entry)
	if d == quorum.Present {
		confirmed[ev.entry] = st.data
	}
	got, err := scan.Record(ev.entry, d)
	if err != nil {
		return fmt.Errorf("recover ledger %d: %w", r.id, err)
	}
	for e := got.First; e <= got.Last; e++ {
		if err := readd(e, confirmed[e]); err != nil {
			return err
		}
	}
	return nil
}
