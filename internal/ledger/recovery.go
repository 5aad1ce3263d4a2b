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
	"github.com/dlog-io/dlog/internal/placement"
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
// When a bookie fails the re-replication and the ack quorum can no longer
// be met, recovery changes the ensemble as a writer would (new fragment by
// CAS, state still IN_RECOVERY, before anything is sent to the new member).
//
// Errors: ErrNoLedger; ErrRecoveryIncomplete (retry later: fencing not
// covered, an entry neither readable nor provably absent, re-replication
// short of the ack quorum with no replacement, metadata unavailable); ctx's
// error. On error the ledger is left IN_RECOVERY (or OPEN) and is never
// shortened.
//
// The closed metadata records the last entry id and the ledger's length
// (payload bytes), taken from the cumulative length the last entry carries
// (entry format 1; a ledger of format 0 gets Length -1, unknown). When no
// scanned or fenced answer holds the last entry, it is read from its
// fragment; if that fails, ErrRecoveryIncomplete.
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
		if err := checkFormat(id, md.EntryFormat); err != nil {
			return md, "failed", err
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
		last, length, md, ver, err := c.recoverData(ctx, id, md, ver)
		if errors.Is(err, errMetadataChanged) {
			continue // changed under an ensemble change of this recovery
		}
		if err != nil {
			return md, "failed", err
		}
		next := cloneMetadata(md)
		next.State = metadata.LedgerClosed
		next.LastEntryID = last
		next.Length = length
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
	ensemble []string // the last fragment's: where the tail is read
	first    int64    // the last fragment's first entry
	key      []byte
	// md and ver are the metadata this recovery holds (IN_RECOVERY); an
	// ensemble change during re-replication updates them.
	md  metadata.LedgerMetadata
	ver metadata.Version
	// lengths are the cumulative ledger lengths carried by the entries
	// this recovery saw (fence answers, present recovery reads), by entry
	// id; empty for entry format 0.
	lengths map[int64]int64

	// fenceBox receives the answers to the fencing reads and identity
	// checks; late ones keep arriving while the tail is scanned.
	fenceBox *inbox[fenceAnswer]
	// identity is identityUnknown (absent) until a bookie proves to be the
	// one the fragment names (identityConfirmed), or answers as another
	// bookie or not at all (identityRejected). Recovery read answers and
	// recovery add acks count only from confirmed bookies; until then they
	// wait (see scan). Replacements chosen from the registry are confirmed.
	identity map[string]identityState
}

type identityState int8

const (
	identityUnknown identityState = iota
	identityConfirmed
	identityRejected
)

// recoverData fences the last fragment and finds (and re-replicates) the
// ledger's tail; it returns the last entry id, the ledger's length and the
// metadata (and version) the recovery holds, changed if it had to change
// the ensemble.
func (c *Client) recoverData(ctx context.Context, id int64, md metadata.LedgerMetadata, ver metadata.Version) (int64, int64, metadata.LedgerMetadata, metadata.Version, error) {
	frag := md.Fragments[len(md.Fragments)-1]
	r := &recovery{
		c:        c,
		id:       id,
		p:        quorum.Params{EnsembleSize: md.EnsembleSize, WriteQuorum: md.WriteQuorum, AckQuorum: md.AckQuorum},
		ensemble: frag.Bookies,
		first:    frag.FirstEntryID,
		key:      md.MasterKey,
		md:       md,
		ver:      ver,
		lengths:  make(map[int64]int64),
		fenceBox: newInbox[fenceAnswer](),
		identity: make(map[string]identityState),
	}
	// The fence phase's requests stay live through the scan, so that a
	// late identity check can still confirm a member.
	fctx, cancel := context.WithTimeout(ctx, c.cfg.FenceTimeout+c.cfg.RecoveryReadTimeout)
	defer cancel()
	lac, err := r.fence(ctx, fctx)
	if err != nil {
		return 0, 0, r.md, r.ver, err
	}
	// Every entry before the last fragment was acknowledged when the
	// fragment was created (it starts at the writer's LAC+1), so the scan
	// never starts below it, whatever the fenced bookies know (BookKeeper
	// #2615).
	last, err := r.scan(ctx, max(lac, r.first-1))
	if err != nil {
		return 0, 0, r.md, r.ver, err
	}
	length, err := r.length(ctx, last)
	return last, length, r.md, r.ver, err
}

// learn records the cumulative length an entry carries, if its format has
// one. ok is false when the entry's bytes are not a valid entry of the
// ledger's format.
func (r *recovery) learn(e *bookiepb.Entry) bool {
	_, n, ok := unframe(r.md.EntryFormat, e.Payload)
	if ok && n >= 0 {
		r.lengths[e.EntryId] = n
	}
	return ok
}

// length returns the ledger's length once it ends at last: the cumulative
// length entry last carries. Recovery usually saw it (the last entry found
// by the scan, or a fenced bookie's last entry); otherwise (the ledger ends
// at the LAC and no fence answer held that entry) it is read from its
// fragment like any acknowledged entry. Format 0 ledgers have no length:
// -1.
func (r *recovery) length(ctx context.Context, last int64) (int64, error) {
	switch {
	case last < 0:
		return 0, nil
	case r.md.EntryFormat == formatRaw:
		return -1, nil
	}
	if n, ok := r.lengths[last]; ok {
		return n, nil
	}
	ensemble := r.md.Fragments[fragmentFor(r.md, last)].Bookies
	ws := r.p.WriteSet(last)
	ids := make([]string, len(ws))
	for k, idx := range ws {
		ids[k] = ensemble[idx]
	}
	got, _, err := r.c.speculativeRead(ctx, r.id, last, r.md.EntryFormat, r.c.readOrder(ids))
	if err != nil {
		return 0, fmt.Errorf("recover ledger %d: %w: read the length of the last entry %d: %w", r.id, ErrRecoveryIncomplete, last, err)
	}
	return got.length, nil
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
	if r.identity[b] != identityUnknown {
		return
	}
	switch got := a.resp.GetInfo().GetBookieId(); {
	case a.err != nil:
		r.c.log.Debug("identity check failed", "ledger-id", r.id, "bookie", b, "err", a.err)
		r.identity[b] = identityRejected
	case got != b:
		r.c.log.Warn("another bookie answers at a fragment member's address; ignoring it",
			"ledger-id", r.id, "bookie", b, "answered-as", got)
		r.identity[b] = identityRejected
	default:
		r.identity[b] = identityConfirmed
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
			r.identity[b] = identityRejected
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
			case r.identity[r.ensemble[i]] == identityRejected:
				states[i] = quorum.Failed
			case fenced[i] && r.identity[r.ensemble[i]] == identityConfirmed:
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
				case rd == nil || (rd.Entry != nil && (!rd.Entry.Verify() || rd.Entry.LedgerId != r.id || !r.learn(rd.Entry))):
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
	read   bool
	entry  int64
	bookie string      // the answering bookie
	slot   int         // read: position in the write set
	send   quorum.Send // add
	resp   *bookiepb.Response
	err    error
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

// tail is the state of a scan: the reads in flight, the entries confirmed
// but not yet re-replicated, and the re-add tracker.
type tail struct {
	scan      *quorum.Scan
	tr        *quorum.Tracker
	reads     map[int64]*readState
	confirmed map[int64]*bookiepb.Entry // awaiting Qa recovery adds
	box       *inbox[recoveryEvent]
	ctx       context.Context // bounds the tail's requests
	fence     bool            // recovery reads carry the fence flag
	// failed are the bookies that failed a recovery add: never chosen as
	// replacements.
	failed placement.Set
	// warned bookies were logged once.
	warned map[string]bool
}

// scan reads forward from lac+1 with fencing recovery reads, decides each
// entry with quorum.DecideEntry through a quorum.Scan, and re-adds every
// confirmed entry with the recovery flag to its whole write set through a
// tracker; it returns once the scan found the end and every confirmed entry
// is acknowledged by Qa bookies. Answers from a bookie whose identity is not
// confirmed yet wait for the identity check; if it fails they count as
// unknown (reads) or as a failed member (adds). When failed members leave
// an entry short of Qa, the ensemble is changed (changeEnsemble).
func (r *recovery) scan(ctx context.Context, lac int64) (int64, error) {
	window := r.c.cfg.RecoveryWindow
	tr, err := quorum.NewTrackerAfter(r.p, r.ensemble, lac)
	if err != nil {
		return 0, fmt.Errorf("recover ledger %d: %w", r.id, err)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t := &tail{
		scan:      quorum.NewScan(lac, window),
		tr:        tr,
		reads:     make(map[int64]*readState),
		confirmed: make(map[int64]*bookiepb.Entry),
		box:       newInbox[recoveryEvent](),
		ctx:       rctx,
		fence:     !bugs.On(bugs.RecoveryReadsDoNotFence),
		failed:    placement.NewSet(),
		warned:    make(map[string]bool),
	}
	waiting := make(map[string][]recoveryEvent)
	for {
		for tr.Pending() < window {
			e, ok := t.scan.Next()
			if !ok {
				break
			}
			r.issueRead(t, e)
		}
		if stalled := tr.Stalled(); len(stalled) > 0 {
			if err := r.changeEnsemble(ctx, t, stalled[0]); err != nil {
				return 0, err
			}
			continue
		}
		switch t.scan.State() {
		case quorum.ScanFailed:
			return 0, fmt.Errorf("recover ledger %d: %w: %w", r.id, ErrRecoveryIncomplete, t.scan.Err())
		case quorum.ScanDone:
			if tr.LAC() >= t.scan.LastEntryID() {
				return t.scan.LastEntryID(), nil
			}
		}
		select {
		case <-t.box.ready():
		case <-r.fenceBox.ready():
		case <-ctx.Done():
			return 0, fmt.Errorf("recover ledger %d: %w", r.id, ctx.Err())
		}
		for _, a := range r.fenceBox.take() {
			if !a.info {
				continue // a late fence answer: its LAC is no longer needed
			}
			r.onIdentity(a)
			b := r.ensemble[a.index]
			if r.identity[b] != identityUnknown {
				held := waiting[b]
				delete(waiting, b)
				for _, ev := range held {
					if err := r.apply(t, ev); err != nil {
						return 0, err
					}
				}
			}
		}
		for _, ev := range t.box.take() {
			if r.identity[ev.bookie] == identityUnknown && ev.counts() {
				waiting[ev.bookie] = append(waiting[ev.bookie], ev)
				continue
			}
			if err := r.apply(t, ev); err != nil {
				return 0, err
			}
		}
	}
}

// issueRead sends the recovery read of entry e to its write set in the
// last fragment.
func (r *recovery) issueRead(t *tail, e int64) {
	st := &readState{results: make([]quorum.ReadResult, r.p.WriteQuorum)}
	t.reads[e] = st
	for k, idx := range r.p.WriteSet(e) {
		b := r.ensemble[idx]
		st.results[k] = quorum.ReadPending
		addr, ok := r.c.Address(b)
		if !ok || r.identity[b] == identityRejected {
			t.box.push(recoveryEvent{read: true, entry: e, bookie: b, slot: k, err: bookieclient.ErrUnavailable})
			continue
		}
		rd := &bookiepb.ReadRequest{LedgerId: r.id, EntryId: e, Fence: t.fence}
		if t.fence {
			rd.MasterKey = r.key
		}
		cctx, ccancel := context.WithTimeout(t.ctx, r.c.cfg.RecoveryReadTimeout)
		r.c.bk.Go(cctx, addr, &bookiepb.Request{Body: &bookiepb.Request_Read{Read: rd}}, func(resp *bookiepb.Response, err error) {
			ccancel()
			t.box.push(recoveryEvent{read: true, entry: e, bookie: b, slot: k, resp: resp, err: err})
		})
	}
}

// sendAdds sends recovery adds of one entry.
func (r *recovery) sendAdds(t *tail, data *bookiepb.Entry, sends []quorum.Send) {
	add := &bookiepb.AddRequest{Entry: data, MasterKey: r.key, Recovery: true}
	for _, s := range sends {
		addr, ok := r.c.Address(s.Bookie)
		if !ok || r.identity[s.Bookie] == identityRejected {
			t.box.push(recoveryEvent{entry: s.EntryID, bookie: s.Bookie, send: s, err: bookieclient.ErrUnavailable})
			continue
		}
		cctx, ccancel := context.WithTimeout(t.ctx, r.c.cfg.RecoveryReadTimeout)
		r.c.bk.AddAsyncTo(cctx, addr, s.Bookie, add, func(err error) {
			ccancel()
			t.box.push(recoveryEvent{entry: s.EntryID, bookie: s.Bookie, send: s, err: err})
		})
	}
}

// readd re-replicates a confirmed entry (the next one in order).
func (r *recovery) readd(t *tail, e int64) error {
	id, sends := t.tr.Add()
	if id != e {
		return fmt.Errorf("recover ledger %d: re-add order: tracker gave %d for %d", r.id, id, e)
	}
	r.sendAdds(t, t.confirmed[e], sends)
	return nil
}

// apply feeds one answer whose bookie's identity is settled.
func (r *recovery) apply(t *tail, ev recoveryEvent) error {
	if r.identity[ev.bookie] == identityRejected && ev.counts() {
		ev.resp, ev.err = nil, errUntrusted
	}
	if ev.read {
		return r.onRead(t, ev)
	}
	if ev.err != nil {
		if !t.warned[ev.bookie] {
			t.warned[ev.bookie] = true
			r.c.log.Warn("recovery add failed", "ledger-id", r.id, "entry-id", ev.entry, "bookie", ev.bookie, "err", ev.err)
		}
		if t.tr.Ensemble()[ev.send.Index] != ev.bookie {
			return nil // replaced already
		}
		t.failed[ev.bookie] = struct{}{}
		if _, err := t.tr.Fail(ev.send.Index); err != nil {
			return fmt.Errorf("recover ledger %d: %w", r.id, err)
		}
		return nil
	}
	acked, err := t.tr.Ack(ev.entry, ev.send.Index, ev.send.Bookie)
	if err != nil {
		return fmt.Errorf("recover ledger %d: %w", r.id, err)
	}
	for e := acked.First; e <= acked.Last; e++ {
		delete(t.confirmed, e)
	}
	return nil
}

// changeEnsemble replaces the failed members of the re-replication
// ensemble, in the writer's order: freeze (BeginChange), pick replacements,
// CAS the new fragment (the ledger stays IN_RECOVERY), then install them
// and resend the unacknowledged entries. A metadata change by someone else
// ends this attempt (errMetadataChanged: Recover re-reads); no replacement
// fails it retryably.
func (r *recovery) changeEnsemble(ctx context.Context, t *tail, stalled int64) error {
	first, err := t.tr.BeginChange()
	if err != nil {
		return fmt.Errorf("recover ledger %d: %w", r.id, err)
	}
	ensemble := t.tr.Ensemble()
	repl, next, rerr := r.c.replacements(ensemble, t.tr.Failed(), r.p, t.failed)
	if len(repl) == 0 {
		_, _ = t.tr.AbortChange()
		return fmt.Errorf("recover ledger %d: %w: re-replication of entry %d cannot reach the ack quorum %d and no replacement was found: %w",
			r.id, ErrRecoveryIncomplete, stalled, r.p.AckQuorum, rerr)
	}
	nextMD := withFragment(r.md, first, next)
	v, _, err := updateLedger(ctx, r.c, r.id, r.ver, nextMD)
	if err != nil {
		_, _ = t.tr.AbortChange()
		if errors.Is(err, errMetadataChanged) {
			return fmt.Errorf("recover ledger %d: ensemble change: %w", r.id, err)
		}
		return r.c.recoveryErr(r.id, "ensemble change", err)
	}
	r.md, r.ver = nextMD, v
	res, err := t.tr.CommitChange(repl)
	if err != nil {
		return fmt.Errorf("recover ledger %d: %w", r.id, err)
	}
	for _, b := range repl {
		r.identity[b] = identityConfirmed // chosen from the registry
	}
	r.c.metrics.ensembleChanges.WithLabelValues("recovery").Inc()
	r.c.log.Info("ensemble changed during recovery", "ledger-id", r.id, "first-entry-id", first, "ensemble", next, "replaced", repl)
	for e := res.Acked.First; e <= res.Acked.Last; e++ {
		delete(t.confirmed, e)
	}
	for _, s := range res.Resend {
		r.sendAdds(t, t.confirmed[s.EntryID], []quorum.Send{s})
	}
	return nil
}

// errUntrusted replaces answers from a member whose identity check failed.
var errUntrusted = errors.New("ledger: answer from a bookie that is not the fragment member")

// onRead records one recovery read answer and, once the entry is decided,
// feeds the scan and re-adds what it confirms.
func (r *recovery) onRead(t *tail, ev recoveryEvent) error {
	st := t.reads[ev.entry]
	if st == nil {
		return nil // decided already
	}
	res := quorum.ReadUnknown
	switch {
	case ev.err == nil:
		if e := ev.resp.GetRead().GetEntry(); e != nil && e.Verify() && e.LedgerId == r.id && e.EntryId == ev.entry && r.learn(e) {
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
	delete(t.reads, ev.entry)
	if d == quorum.Present {
		t.confirmed[ev.entry] = st.data
	}
	got, err := t.scan.Record(ev.entry, d)
	if err != nil {
		return fmt.Errorf("recover ledger %d: %w", r.id, err)
	}
	for e := got.First; e <= got.Last; e++ {
		if err := r.readd(t, e); err != nil {
			return err
		}
	}
	return nil
}
