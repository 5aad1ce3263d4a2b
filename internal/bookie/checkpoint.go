package bookie

import (
	"errors"
	"fmt"
	"time"

	"github.com/dlog-io/dlog/internal/journal"
	"github.com/dlog-io/dlog/internal/ledgerstore"
)

// errStopping: the bookie is closing; an apply gave up waiting.
var errStopping = errors.New("bookie: shutting down")

// replay reads the store's checkpoint mark and applies every journal record
// after it, in order. A record the journal yields but that does not decode
// (or an add whose entry fails its checksum) stops the start: the journal
// checksums records, so that is a bug, never a torn write, and skipping it
// could drop an acknowledged entry.
func (b *Bookie) replay() error {
	var from journal.Position
	if m := b.store.CheckpointMark(); m != nil {
		if err := from.UnmarshalBinary(m); err != nil {
			return fmt.Errorf("bookie: checkpoint mark: %w", err)
		}
	}
	start := time.Now()
	last, n := from, 0
	err := b.journal.Replay(from, func(pos, next journal.Position, rec []byte) error {
		r, err := decodeRecord(rec)
		if err != nil {
			return fmt.Errorf("journal record at %v: %w", pos, err)
		}
		if err := b.applyReplayed(r, pos); err != nil {
			return fmt.Errorf("journal record at %v: %w", pos, err)
		}
		last = next
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("bookie: replay: %w", err)
	}
	b.applied.pos = last
	if st := b.journal.Stats(); !st.ReplayCut.IsZero() {
		b.log.Warn("journal tail was cut during replay: records after the cut were torn or corrupt",
			"cut", st.ReplayCut.String(), "cut-bytes", st.ReplayCutBytes)
	}
	b.log.Info("journal replayed", "from", from.String(), "records", n, "took", time.Since(start))
	if n > 0 {
		if err := b.checkpoint(); err != nil {
			return err
		}
	}
	return nil
}

// applyReplayed applies one replayed record. pos is where it starts: every
// record before it is applied, so a flush forced by a full write cache may
// use it as its mark.
func (b *Bookie) applyReplayed(r record, pos journal.Position) error {
	ignore := func(err error) error {
		if errors.Is(err, ledgerstore.ErrLedgerDeleted) || errors.Is(err, ledgerstore.ErrNoLedger) {
			return nil // deleted later in the journal or before the mark
		}
		if errors.Is(err, ledgerstore.ErrMasterKeyMismatch) {
			b.log.Warn("replay: master key differs from the recorded one", "ledger-id", r.LedgerID)
			return nil
		}
		return err
	}
	switch r.Type {
	case recordAdd:
		if _, ok := entryFromStored(r.LedgerID, r.EntryID, r.Stored); !ok {
			return fmt.Errorf("%w: add %d:%d fails its checksum", errBadRecord, r.LedgerID, r.EntryID)
		}
		if err := ignore(b.store.SetMasterKey(r.LedgerID, r.Key)); err != nil {
			return err
		}
		for {
			err := b.store.AddEntry(r.LedgerID, r.EntryID, r.Stored)
			if !errors.Is(err, ledgerstore.ErrWriteCacheFull) {
				if err := ignore(err); err != nil {
					return err
				}
				break
			}
			mark, err := pos.MarshalBinary()
			if err != nil {
				return err
			}
			if err := b.store.Flush(mark); err != nil {
				return err
			}
		}
		lac, _, _, _ := decodeStoredEntry(r.Stored)
		if lac >= 0 {
			return ignore(b.store.SetLAC(r.LedgerID, lac))
		}
	case recordFence:
		if err := ignore(b.store.SetMasterKey(r.LedgerID, r.Key)); err != nil {
			return err
		}
		_, err := b.store.SetFenced(r.LedgerID)
		return ignore(err)
	case recordDelete:
		return b.store.DeleteLedger(r.LedgerID)
	}
	return nil
}

// runCheckpointer flushes the ledger store every FlushInterval, when the
// store's write cache asks, and when an applier waits for cache room.
func (b *Bookie) runCheckpointer() {
	t := time.NewTicker(b.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stopc:
			return
		case <-t.C:
		case <-b.store.FlushWanted():
		case <-b.flushReq:
		}
		if err := b.checkpoint(); err != nil {
			b.log.Error("checkpoint failed; retrying at the next one", "err", err)
		}
	}
}

// Checkpoint flushes the ledger store with the journal position everything
// applied so far ends at, then deletes the journal files before it. The
// bookie does this on its own; the method is for tests and tools.
func (b *Bookie) Checkpoint() error {
	if b.closing.Load() {
		return ErrClosed
	}
	return b.checkpoint()
}

func (b *Bookie) checkpoint() error {
	mark, err := b.flushMark()
	if err != nil {
		return err
	}
	if err := b.journal.ReleaseBefore(mark); err != nil && !errors.Is(err, journal.ErrClosed) {
		return fmt.Errorf("bookie: release journal before %v: %w", mark, err)
	}
	return nil
}

// flush flushes without releasing journal files (Close, after the journal
// is closed).
func (b *Bookie) flush() error {
	_, err := b.flushMark()
	return err
}

// flushMark flushes the store with the current applied position as its
// mark. The position is read before Flush is called, so every store call
// of the records before it has returned: Flush covers them (see
// ledgerstore.Store.Flush).
func (b *Bookie) flushMark() (journal.Position, error) {
	b.ckptMu.Lock()
	defer b.ckptMu.Unlock()
	mark := b.appliedPos()
	mb, err := mark.MarshalBinary()
	if err == nil {
		err = b.store.Flush(mb)
	}
	b.flushed.Lock()
	close(b.flushed.ch)
	b.flushed.ch = make(chan struct{})
	b.flushed.err = err
	b.flushed.Unlock()
	if err != nil {
		b.met.flushErrors.Inc()
		return mark, fmt.Errorf("bookie: checkpoint at %v: %w", mark, err)
	}
	return mark, nil
}

// waitFlush asks the checkpointer for a flush and waits for the next flush
// attempt to end. It returns the attempt's error, or errStopping.
func (b *Bookie) waitFlush() error {
	b.flushed.Lock()
	ch := b.flushed.ch
	b.flushed.Unlock()
	select {
	case b.flushReq <- struct{}{}:
	default:
	}
	select {
	case <-ch:
	case <-b.stopc:
		return errStopping
	}
	b.flushed.Lock()
	defer b.flushed.Unlock()
	return b.flushed.err
}
