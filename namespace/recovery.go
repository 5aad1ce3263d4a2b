package namespace

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/segment"
)

// errFenced wraps a metadata CAS failure: someone else changed the log
// (another writer took it, or it was deleted).
func errFenced(log string, err error) error {
	return fmt.Errorf("log %s: %w: %w", log, dlog.ErrFenced, err)
}

// isTransient reports errors worth retrying: the metadata service or the
// bookies could not be reached, or a recovery could not finish yet.
func isTransient(err error) bool {
	return errors.Is(err, metadata.ErrUnavailable) || errors.Is(err, dlog.ErrUnavailable) ||
		errors.Is(err, ledger.ErrRecoveryIncomplete) || errors.Is(err, ledger.ErrNotEnoughBookies)
}

// backoff doubles a delay between RetryMin and RetryMax.
type backoff struct{ cur, min, max time.Duration }

func (n *Namespace) newBackoff() *backoff {
	return &backoff{cur: n.cfg.RetryMin, min: n.cfg.RetryMin, max: n.cfg.RetryMax}
}

// wait sleeps the current delay (false if ctx ended first) and doubles it.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.cur)
	defer t.Stop()
	b.cur = min(2*b.cur, b.max)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// commitPlan commits p (with a CheckOwner of own when own is set) and
// returns the snapshot after it. Transient failures are retried; because
// the outcome of a failed attempt is unknown, every retry first re-reads
// the log and stops if the plan already landed (the CAS would otherwise
// fail on the attempt's own writes). A failed expectation means someone
// else changed the log: the error wraps dlog.ErrFenced.
func (n *Namespace) commitPlan(ctx context.Context, log string, st metadata.LogState, p segment.Plan, own metadata.Ownership) (metadata.LogState, error) {
	if p.Empty() {
		return st, nil
	}
	bo := n.newBackoff()
	ambiguous := false
	for {
		rev, err := n.store.Commit(ctx, p.Ops(n.name, log, own)...)
		if err == nil {
			return p.Apply(st, rev), nil
		}
		var oe *metadata.OpError
		switch {
		case errors.As(err, &oe) && !ambiguous:
			return st, errFenced(log, err)
		case errors.As(err, &oe), isTransient(err):
			ambiguous = ambiguous || isTransient(err)
			if !bo.wait(ctx) {
				return st, fmt.Errorf("log %s: commit: %w (last error: %w)", log, ctx.Err(), err)
			}
			fresh, rerr := n.store.GetLogState(ctx, n.name, log)
			switch {
			case errors.Is(rerr, metadata.ErrNotFound):
				return st, errFenced(log, fmt.Errorf("log deleted: %w", dlog.ErrLogNotFound))
			case rerr != nil:
				continue
			case p.Landed(fresh):
				return fresh, nil
			case errors.As(err, &oe):
				return st, errFenced(log, err)
			}
		default:
			return st, fmt.Errorf("log %s: commit: %w", log, err)
		}
	}
}

// ledgerCustom tags a segment's ledger with its log, for tools and for
// finding ledgers a crash left unreferenced.
func (n *Namespace) ledgerCustom(log string, lssn int64) map[string]string {
	return map[string]string{"dlog.namespace": n.name, "dlog.log": log, "dlog.lssn": strconv.FormatInt(lssn, 10)}
}

// createLedger creates a ledger for a new segment.
func (n *Namespace) createLedger(ctx context.Context, log string, lssn int64) (*ledger.Writer, error) {
	return n.ledgers.Create(ctx, ledger.CreateOptions{
		EnsembleSize: n.cfg.EnsembleSize, WriteQuorum: n.cfg.WriteQuorum, AckQuorum: n.cfg.AckQuorum,
		Custom: n.ledgerCustom(log, lssn),
	})
}

// readTail finds what a closed ledger holds by reading it backwards.
func (n *Namespace) readTail(ctx context.Context, ledgerID, lastEntryID int64) (segment.Tail, error) {
	scan := segment.NewTailScan(lastEntryID)
	if _, ok := scan.Want(); !ok {
		return scan.Tail(), nil
	}
	lr, err := n.ledgers.OpenReader(ctx, ledgerID)
	if err != nil {
		return segment.Tail{}, err
	}
	defer lr.Close()
	for id, ok := scan.Want(); ok; id, ok = scan.Want() {
		es, err := lr.Read(ctx, id, id)
		if err != nil {
			return segment.Tail{}, fmt.Errorf("ledger %d: read tail entry %d: %w", ledgerID, id, err)
		}
		if err := scan.Feed(id, es[0].Payload); err != nil {
			return segment.Tail{}, fmt.Errorf("ledger %d: %w", ledgerID, err)
		}
	}
	return scan.Tail(), nil
}

// recoverSegment recovers an in-progress segment (its writer may be gone):
// the ledger is fenced and closed by ledger recovery, its tail read, and
// the segment completed (or, when it holds no record, deleted with its
// ledger) in one transaction checked against own. Transient failures are
// retried until ctx ends.
func (n *Namespace) recoverSegment(ctx context.Context, log string, st metadata.LogState, seg metadata.Segment, own metadata.Ownership) (metadata.LogState, segment.Tail, error) {
	bo := n.newBackoff()
	for {
		st2, tail, err := n.recoverOnce(ctx, log, st, seg, own)
		if err == nil || !isTransient(err) || ctx.Err() != nil {
			return st2, tail, err
		}
		n.log.Warn("segment recovery failed; retrying", "log", log, "lssn", seg.LSSN, "ledger-id", seg.LedgerID, "err", err)
		if !bo.wait(ctx) {
			return st, tail, fmt.Errorf("recover segment %d of %s: %w (last error: %w)", seg.LSSN, log, ctx.Err(), err)
		}
	}
}

func (n *Namespace) recoverOnce(ctx context.Context, log string, st metadata.LogState, seg metadata.Segment, own metadata.Ownership) (metadata.LogState, segment.Tail, error) {
	start := time.Now()
	tail := segment.EmptyTail
	md, err := n.ledgers.Recover(ctx, seg.LedgerID)
	switch {
	case errors.Is(err, ledger.ErrNoLedger):
		// The ledger is gone (a forced delete raced with the writer): the
		// segment can only be dropped.
		n.log.Warn("in-progress segment has no ledger; deleting it", "log", log, "lssn", seg.LSSN, "ledger-id", seg.LedgerID)
	case err != nil:
		return st, tail, fmt.Errorf("recover segment %d of %s: %w", seg.LSSN, log, err)
	default:
		if tail, err = n.readTail(ctx, seg.LedgerID, md.LastEntryID); err != nil {
			return st, tail, fmt.Errorf("recover segment %d of %s: %w", seg.LSSN, log, err)
		}
	}
	p, err := segment.Complete(st, seg, tail, time.Now())
	if err != nil {
		return st, tail, fmt.Errorf("recover segment %d of %s: %w", seg.LSSN, log, err)
	}
	st, err = n.commitPlan(ctx, log, st, p, own)
	if err != nil {
		return st, tail, fmt.Errorf("recover segment %d of %s: %w", seg.LSSN, log, err)
	}
	outcome := "completed"
	if len(p.Delete) > 0 {
		outcome = "deleted-empty"
	}
	n.metrics.recoveries.WithLabelValues(outcome).Inc()
	n.deleteLedgers(ctx, log, p.DeleteLedgers)
	n.log.Info("segment recovered", "log", log, "lssn", seg.LSSN, "ledger-id", seg.LedgerID, "outcome", outcome,
		"records", tail.RecordCount, "last-entry-id", tail.LastEntryID, "took", time.Since(start))
	return st, tail, nil
}

// deleteLedgers deletes ledgers no segment references any more. A failure
// only leaks the ledger (it is tagged with its log); it is logged.
func (n *Namespace) deleteLedgers(ctx context.Context, log string, ids []int64) {
	for _, id := range ids {
		if err := n.ledgers.Delete(ctx, id); err != nil && !errors.Is(err, ledger.ErrNoLedger) {
			n.log.Warn("ledger left behind", "log", log, "ledger-id", id, "err", err)
		}
	}
}

// isOwnerCheck reports whether a commit failed on its ownership check.
func isOwnerCheck(err error) bool {
	return errors.Is(err, metadata.ErrOwnershipLost)
}
