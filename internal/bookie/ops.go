package bookie

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/journal"
	"github.com/dlog-io/dlog/internal/ledgerstore"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// Status shorthands.
const (
	statusOK           = bookiepb.Status_STATUS_OK
	statusNoLedger     = bookiepb.Status_STATUS_NO_LEDGER
	statusNoEntry      = bookiepb.Status_STATUS_NO_ENTRY
	statusFenced       = bookiepb.Status_STATUS_FENCED
	statusUnauthorized = bookiepb.Status_STATUS_UNAUTHORIZED
	statusReadOnly     = bookiepb.Status_STATUS_READ_ONLY
	statusBadRequest   = bookiepb.Status_STATUS_BAD_REQUEST
	statusIOError      = bookiepb.Status_STATUS_IO_ERROR
	statusCorrupt      = bookiepb.Status_STATUS_CORRUPT
	statusTimeout      = bookiepb.Status_STATUS_TIMEOUT
	statusOverloaded   = bookiepb.Status_STATUS_OVERLOADED
	statusShutdown     = bookiepb.Status_STATUS_SHUTTING_DOWN
)

// outcome is a status with its message.
type outcome struct {
	status bookiepb.Status
	msg    string
}

var ok = outcome{status: statusOK}

// storeOutcome maps a ledger store error (see doc.go, "Errors").
func storeOutcome(err error) outcome {
	switch {
	case err == nil:
		return ok
	case errors.Is(err, ledgerstore.ErrNoLedger), errors.Is(err, ledgerstore.ErrLedgerDeleted):
		return outcome{statusNoLedger, err.Error()}
	case errors.Is(err, ledgerstore.ErrNoEntry):
		return outcome{statusNoEntry, err.Error()}
	case errors.Is(err, ledgerstore.ErrCorrupt):
		return outcome{statusCorrupt, err.Error()}
	case errors.Is(err, ledgerstore.ErrMasterKeyMismatch):
		return outcome{statusUnauthorized, err.Error()}
	case errors.Is(err, ledgerstore.ErrInvalidArgument):
		return outcome{statusBadRequest, err.Error()}
	case errors.Is(err, ledgerstore.ErrClosed), errors.Is(err, errStopping):
		return outcome{statusShutdown, "bookie is shutting down"}
	}
	return outcome{statusIOError, err.Error()}
}

// journalOutcome maps an error from journal.Append or from a journal
// callback. A failure turns the bookie read-only for good.
func (b *Bookie) journalOutcome(err error, queued bool) outcome {
	switch {
	case errors.Is(err, journal.ErrFailed):
		b.fail("journal failed: " + err.Error())
		if queued {
			// The record may or may not be on disk.
			return outcome{statusIOError, "journal write failed; outcome unknown: " + err.Error()}
		}
		return outcome{statusReadOnly, "journal failed: " + err.Error()}
	case errors.Is(err, journal.ErrOverloaded):
		return outcome{statusOverloaded, "journal queue full"}
	case errors.Is(err, journal.ErrClosed):
		return outcome{statusShutdown, "bookie is shutting down"}
	case errors.Is(err, journal.ErrRecordTooLarge):
		return outcome{bookiepb.Status_STATUS_TOO_LARGE, err.Error()}
	}
	return outcome{statusIOError, err.Error()}
}

// readOutcome adjusts an outcome answered to a reader about ledgerID: once
// the store has failed, an explicit negative could be wrong (a journalled
// record may not be applied), so it becomes IO_ERROR; in limbo (see
// doc.go, "Limbo") so does every one except NO_LEDGER for a deleted
// ledger.
func (b *Bookie) readOutcome(ledgerID int64, o outcome) outcome {
	if (o.status == statusNoEntry || o.status == statusNoLedger) && b.storeFailed.Load() {
		o = outcome{statusIOError, "ledger store failed; cannot tell: " + o.msg}
	}
	if l := b.limbo.Load(); l != nil && (o.status == statusNoEntry || o.status == statusNoLedger) {
		if deleted, err := b.store.Deleted(ledgerID); err != nil || !deleted {
			o = outcome{statusIOError, l.String() + "; cannot tell: " + o.msg}
		}
	}
	if bugs.On(bugs.IOErrorAsNoEntry) && (o.status == statusIOError || o.status == statusCorrupt) {
		return outcome{statusNoEntry, o.msg}
	}
	return o
}

// checkKey records key as the ledger's master key if it has none (creating
// the ledger), or checks it. Call it under the ledger's stripe.
func (b *Bookie) checkKey(ledgerID int64, key []byte) (ledgerstore.State, outcome) {
	st, err := b.store.Ledger(ledgerID)
	switch {
	case errors.Is(err, ledgerstore.ErrNoLedger):
		// Unknown or deleted: SetMasterKey creates the one, refuses the other.
	case err != nil:
		return st, storeOutcome(err)
	case st.MasterKey != nil:
		if !bytes.Equal(st.MasterKey, key) {
			return st, outcome{statusUnauthorized, fmt.Sprintf("ledger %d: master key mismatch", ledgerID)}
		}
		return st, ok
	}
	if err := b.store.SetMasterKey(ledgerID, key); err != nil {
		if errors.Is(err, ledgerstore.ErrLedgerDeleted) {
			return st, outcome{statusNoLedger, fmt.Sprintf("ledger %d was deleted", ledgerID)}
		}
		return st, storeOutcome(err)
	}
	return st, ok
}

// pendingAdd is an add between its journal append and its answer. Its
// answer is allocated with it.
type pendingAdd struct {
	b        *Bookie
	st       *stream
	txn      uint64
	entry    *bookiepb.Entry // applied from the callback
	arrival  time.Time
	deadline time.Time
	answered atomic.Bool // the answer is claimed once: callback or timeout
	// timer is the add's own deadline timer, when its deadline comes
	// before that of an add appended earlier on the stream (see
	// addTimeouts); nil otherwise.
	timer *time.Timer

	resp    bookiepb.Response
	body    bookiepb.Response_Add
	addResp bookiepb.AddResponse
}

// answer answers the add with o (once: the caller claimed answered).
func (p *pendingAdd) answer(o outcome) {
	r := &p.resp
	r.Txn, r.Status, r.Message = p.txn, o.status, o.msg
	if !utf8.ValidString(o.msg) {
		r.Message = strings.ToValidUTF8(o.msg, "\uFFFD")
	}
	if o.status == statusOK {
		p.addResp.LedgerId, p.addResp.EntryId = p.entry.LedgerId, p.entry.EntryId
		p.body.Add = &p.addResp
		r.Body = &p.body
	}
	p.st.answer(opAdd, p.arrival, r)
}

// add handles an add (on the stream's receive goroutine; nothing here
// blocks for long): state checks and the journal append happen under the
// ledger's stripe, the answer comes from the journal callback.
func (b *Bookie) add(st *stream, txn uint64, a *bookiepb.AddRequest, arrival, deadline time.Time) {
	e := a.Entry
	p := &pendingAdd{b: b, st: st, txn: txn, entry: e, arrival: arrival, deadline: deadline}
	if reason := b.readOnlyReason(); reason != "" {
		p.answer(outcome{statusReadOnly, reason})
		return
	}
	key := masterKey(a.MasterKey)
	st.rec = appendAddRecord(st.rec[:0], e, key, a.Recovery)

	mu := b.stripe(e.LedgerId)
	mu.Lock()
	if !mu.isOpen(e.LedgerId, key) {
		state, o := b.checkKey(e.LedgerId, key)
		if o.status == statusOK && state.Fenced && !a.Recovery {
			o = outcome{statusFenced, fmt.Sprintf("ledger %d is fenced", e.LedgerId)}
		}
		if o.status != statusOK {
			mu.Unlock()
			p.answer(o)
			return
		}
		if !state.Fenced {
			mu.remember(e.LedgerId, key)
		}
	}
	ackEarly := bugs.On(bugs.AckBeforeFsync)
	if ackEarly {
		p.answered.Store(true) // the callback applies but does not answer
	} else {
		// Watched before the append, so the callback always finds it.
		st.timeouts.push(p)
	}
	err := b.journal.Append(st.rec, p.done)
	mu.Unlock()
	if err != nil {
		if !ackEarly {
			st.timeouts.remove(p)
		}
		if ackEarly || p.answered.CompareAndSwap(false, true) {
			p.answer(b.journalOutcome(err, false))
		}
		return
	}
	if ackEarly {
		p.answer(ok) // bug: acknowledged before the fsync
	}
}

// timeout answers TIMEOUT unless the add was answered.
func (p *pendingAdd) timeout() {
	if p.answered.CompareAndSwap(false, true) {
		p.answer(outcome{statusTimeout, "add not durable before the request deadline; outcome unknown"})
	}
}

// done is the journal callback (on the journal's goroutine, in journal
// order): apply the entry, raise the LAC, wake long polls, answer.
func (p *pendingAdd) done(end journal.Position, err error) {
	b := p.b
	var o outcome
	if err != nil {
		o = b.journalOutcome(err, true)
	} else {
		o = b.applyAdd(p.entry)
		if o.status == statusOK || o.status == statusNoLedger {
			b.advance(end) // a no-op apply (deleted ledger) is applied too
		} else {
			b.freeze()
		}
	}
	if p.answered.Load() {
		return // bug mode, or timed out (and no longer watched)
	}
	p.st.timeouts.remove(p)
	if p.answered.CompareAndSwap(false, true) {
		p.answer(o)
	}
}

// applyAdd puts a durable add into the store. A full write cache makes it
// wait for a flush: back-pressure on the journal, which stops acknowledging
// until the store has room.
func (b *Bookie) applyAdd(e *bookiepb.Entry) outcome {
	for {
		b.apply.Lock()
		b.apply.buf = appendStoredEntry(b.apply.buf[:0], e.Lac, e.Crc32C, e.Payload)
		err := b.store.AddEntry(e.LedgerId, e.EntryId, b.apply.buf)
		if cap(b.apply.buf) > maxScratchBytes {
			b.apply.buf = nil
		}
		b.apply.Unlock()
		if err == nil {
			break
		}
		if errors.Is(err, ledgerstore.ErrLedgerDeleted) {
			return outcome{statusNoLedger, fmt.Sprintf("ledger %d was deleted", e.LedgerId)}
		}
		if !errors.Is(err, ledgerstore.ErrWriteCacheFull) {
			return b.applyFailed(err)
		}
		if err := b.waitFlush(); err != nil {
			return b.applyFailed(err)
		}
	}
	if e.Lac >= 0 {
		if err := b.store.SetLAC(e.LedgerId, e.Lac); err != nil && !errors.Is(err, ledgerstore.ErrLedgerDeleted) {
			return b.applyFailed(err)
		}
	}
	b.lacs.notify(e.LedgerId)
	return ok
}

// applyFailed handles a record that is durable in the journal but could not
// be applied: the answer is "unknown", and unless the bookie is only
// stopping, the store is failed for good.
func (b *Bookie) applyFailed(err error) outcome {
	if errors.Is(err, errStopping) || errors.Is(err, ledgerstore.ErrClosed) {
		return outcome{statusShutdown, "bookie is shutting down; the add is journalled and will be applied at restart"}
	}
	b.storeFailed.Store(true)
	b.fail("ledger store failed: " + err.Error())
	return outcome{statusIOError, "ledger store failed; outcome unknown: " + err.Error()}
}

// handle serves the requests that may wait (on the journal, on disk, on a
// LAC): read, read-lac, write-lac and delete, on a goroutine of their own.
func (b *Bookie) handle(ctx context.Context, req *bookiepb.Request) *bookiepb.Response {
	var (
		o    outcome
		body func(*bookiepb.Response)
	)
	switch x := req.Body.(type) {
	case *bookiepb.Request_Read:
		var rr *bookiepb.ReadResponse
		rr, o = b.read(ctx, x.Read)
		o = b.readOutcome(x.Read.LedgerId, o)
		if rr != nil {
			body = func(r *bookiepb.Response) { r.Body = &bookiepb.Response_Read{Read: rr} }
		}
	case *bookiepb.Request_ReadLac:
		var rr *bookiepb.ReadLACResponse
		rr, o = b.readLAC(ctx, x.ReadLac)
		o = b.readOutcome(x.ReadLac.LedgerId, o)
		if rr != nil {
			body = func(r *bookiepb.Response) { r.Body = &bookiepb.Response_ReadLac{ReadLac: rr} }
		}
	case *bookiepb.Request_WriteLac:
		o = b.writeLAC(x.WriteLac)
		if o.status == statusOK {
			body = func(r *bookiepb.Response) {
				r.Body = &bookiepb.Response_WriteLac{WriteLac: &bookiepb.WriteLACResponse{}}
			}
		}
	case *bookiepb.Request_Delete:
		o = b.deleteLedger(ctx, x.Delete.LedgerId)
		if o.status == statusOK {
			body = func(r *bookiepb.Response) { r.Body = &bookiepb.Response_Delete{Delete: &bookiepb.DeleteResponse{}} }
		}
	default:
		o = outcome{statusBadRequest, fmt.Sprintf("unexpected request %T", x)}
	}
	r := response(req.Txn, o.status, o.msg)
	if body != nil {
		body(r)
	}
	return r
}

// waitJournal waits for a journal callback's result.
func (b *Bookie) waitJournal(ctx context.Context, ch <-chan error, what string) outcome {
	select {
	case err := <-ch:
		if err != nil {
			return b.journalOutcome(err, true)
		}
		return ok
	case <-ctx.Done():
		return outcome{statusTimeout, what + " not durable before the request deadline; outcome unknown"}
	case <-b.stopc:
		return outcome{statusShutdown, "bookie is shutting down; " + what + " outcome unknown"}
	}
}

// fence durably fences a ledger: under its stripe, check the key (creating
// the ledger if unknown), set the fence in the store and append a fence
// record; then wait until the record is durable. Every add that passed its
// state check before the fence was appended to the journal before it, and
// journal callbacks run in order, so once the fence is durable those adds
// are applied and the answer computed afterwards includes them.
func (b *Bookie) fence(ctx context.Context, ledgerID int64, key []byte) outcome {
	if reason := b.writesFailed(); reason != "" {
		return outcome{statusReadOnly, reason}
	}
	ch := make(chan error, 1)
	mu := b.stripe(ledgerID)
	mu.Lock()
	_, o := b.checkKey(ledgerID, key)
	if o.status != statusOK {
		mu.Unlock()
		return o
	}
	mu.forget(ledgerID)
	if _, err := b.store.SetFenced(ledgerID); err != nil {
		mu.Unlock()
		return storeOutcome(err)
	}
	err := b.journal.Append(appendFenceRecord(nil, ledgerID, key), func(end journal.Position, err error) {
		if err == nil {
			b.advance(end) // the fence was applied before the append
		}
		ch <- err
	})
	mu.Unlock()
	if err != nil {
		return b.journalOutcome(err, false)
	}
	return b.waitJournal(ctx, ch, "fence")
}

func (b *Bookie) read(ctx context.Context, r *bookiepb.ReadRequest) (*bookiepb.ReadResponse, outcome) {
	if r.Fence {
		if o := b.fence(ctx, r.LedgerId, masterKey(r.MasterKey)); o.status != statusOK {
			return nil, o
		}
	}
	state, err := b.store.Ledger(r.LedgerId)
	if err != nil {
		return nil, storeOutcome(err)
	}
	out := &bookiepb.ReadResponse{Lac: state.LAC, Fenced: state.Fenced}
	entryID := r.EntryId
	if entryID < 0 {
		last, err := b.store.LastEntryID(r.LedgerId)
		if err != nil {
			return nil, storeOutcome(err)
		}
		if last < 0 {
			return out, ok
		}
		entryID = last
	}
	e, o := b.getEntry(r.LedgerId, entryID)
	if o.status != statusOK {
		if o.status == statusNoEntry {
			return out, o
		}
		return nil, o
	}
	out.Entry = e
	return out, ok
}

// getEntry reads an entry and verifies its checksum on the way out: bytes
// that fail it are CORRUPT, never data and never NO_ENTRY.
func (b *Bookie) getEntry(ledgerID, entryID int64) (*bookiepb.Entry, outcome) {
	data, err := b.store.GetEntry(ledgerID, entryID)
	if err != nil {
		return nil, storeOutcome(err)
	}
	e, valid := entryFromStored(ledgerID, entryID, data)
	if !valid {
		b.log.Error("stored entry fails its checksum", "ledger-id", ledgerID, "entry-id", entryID)
		return nil, outcome{statusCorrupt, fmt.Sprintf("ledger %d entry %d fails its checksum", ledgerID, entryID)}
	}
	return e, ok
}

// longPollShare is the part of a request's timeout a long poll is held:
// the rest leaves time for the unchanged answer to reach the client before
// its own deadline, which is the same instant.
const longPollShare = 0.75

func (b *Bookie) readLAC(ctx context.Context, r *bookiepb.ReadLACRequest) (*bookiepb.ReadLACResponse, outcome) {
	state, err := b.store.Ledger(r.LedgerId)
	if err != nil {
		return nil, storeOutcome(err)
	}
	if r.LongPoll && state.LAC <= r.PreviousLac {
		if n := b.longPolls.Add(1); n > int64(b.cfg.MaxLongPollWaiters) {
			b.longPolls.Add(-1)
			return nil, outcome{statusOverloaded, fmt.Sprintf("%d long polls held", b.cfg.MaxLongPollWaiters)}
		}
		b.met.longPolls.Inc()
		defer func() {
			b.longPolls.Add(-1)
			b.met.longPolls.Dec()
		}()
		hold := ctx
		if dl, set := ctx.Deadline(); set {
			var cancel context.CancelFunc
			hold, cancel = context.WithTimeout(ctx, time.Duration(float64(time.Until(dl))*longPollShare))
			defer cancel()
		}
		w := b.lacs.join(r.LedgerId)
		defer b.lacs.leave(r.LedgerId, w)
	wait:
		for {
			changed := b.lacs.changed(w)
			if state, err = b.store.Ledger(r.LedgerId); err != nil {
				return nil, storeOutcome(err)
			}
			if state.LAC > r.PreviousLac {
				break
			}
			select {
			case <-changed:
			case <-hold.Done():
				if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
					return nil, outcome{statusShutdown, "stream closed"}
				}
				break wait // answer the unchanged LAC
			case <-b.stopc:
				return nil, outcome{statusShutdown, "bookie is shutting down"}
			}
		}
	}
	out := &bookiepb.ReadLACResponse{Lac: state.LAC}
	if r.IncludeEntry && state.LAC > r.PreviousLac {
		if e, o := b.getEntry(r.LedgerId, r.PreviousLac+1); o.status == statusOK {
			out.Entry = e
		}
	}
	return out, ok
}

// writeLAC raises a ledger's LAC (max-merge). Not journalled: a LAC is a
// lower bound, and the next checkpoint persists it.
func (b *Bookie) writeLAC(w *bookiepb.WriteLACRequest) outcome {
	state, err := b.store.Ledger(w.LedgerId)
	if err != nil {
		return storeOutcome(err)
	}
	if state.MasterKey != nil && !bytes.Equal(state.MasterKey, masterKey(w.MasterKey)) {
		return outcome{statusUnauthorized, fmt.Sprintf("ledger %d: master key mismatch", w.LedgerId)}
	}
	if err := b.store.SetLAC(w.LedgerId, w.Lac); err != nil {
		return storeOutcome(err)
	}
	b.lacs.notify(w.LedgerId)
	return ok
}

// deleteLedger journals a delete record, waits for it, then deletes the
// ledger from the store (durably; its entries are unreadable from then on).
func (b *Bookie) deleteLedger(ctx context.Context, ledgerID int64) outcome {
	if reason := b.writesFailed(); reason != "" {
		return outcome{statusReadOnly, reason}
	}
	ch := make(chan error, 1)
	mu := b.stripe(ledgerID)
	mu.Lock()
	mu.forget(ledgerID)
	err := b.journal.Append(appendDeleteRecord(nil, ledgerID), func(end journal.Position, err error) {
		if err == nil {
			// Advancing before the store delete is done is safe: if a
			// checkpoint covers this record and the bookie crashes before
			// the delete commits, the delete (never answered) is lost,
			// which its client sees as an indeterminate outcome.
			b.advance(end)
		}
		ch <- err
	})
	mu.Unlock()
	if err != nil {
		return b.journalOutcome(err, false)
	}
	if o := b.waitJournal(ctx, ch, "delete"); o.status != statusOK {
		return o
	}
	err = b.store.DeleteLedger(ledgerID)
	// An add between the DELETE record and here may have cached the
	// ledger as open again.
	mu.Lock()
	mu.forget(ledgerID)
	mu.Unlock()
	if err != nil {
		return storeOutcome(err)
	}
	b.lacs.notify(ledgerID)
	return ok
}
