package namespace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/segment"
)

// maxTruncateAttempts bounds the retries of a truncation that keeps
// losing CAS races against the collector or another truncation.
const maxTruncateAttempts = 16

// Truncate moves the log's truncation point forward to d (see
// Writer.Truncate). When a writer of this namespace owns the log it goes
// through that writer; when nobody owns it, the namespace takes the lock
// for the duration of the truncation (recovering first any segment a dead
// writer left in progress, so that d is checked against the real end);
// when another process owns it, it fails with *dlog.OwnedError naming the
// owner (definite: ask the owner).
// A d at or before the current point is a no-op. Errors: dlog.ErrInvalidName,
// dlog.ErrLogNotFound, dlog.ErrInvalidArgument (invalid d, or after the end
// of the log as far as metadata knows it), *dlog.OwnedError, metadata
// errors.
func (n *Namespace) Truncate(ctx context.Context, log string, d dlog.DLSN) error {
	if err := checkLogName(log); err != nil {
		return err
	}
	if err := n.checkOpen(); err != nil {
		return err
	}
	if w := n.localWriter(log); w != nil {
		return w.Truncate(ctx, d)
	}
	n.maintMu.Lock()
	defer n.maintMu.Unlock()
	sess, err := n.session(ctx)
	if err != nil {
		return err
	}
	own, err := n.store.AcquireOwnership(ctx, sess, n.name, log, metadata.OwnerInfo{ID: n.cfg.OwnerID + "-truncate"}, false)
	var owned *dlog.OwnedError
	switch {
	case errors.As(err, &owned):
		return err
	case err != nil:
		return n.logErr(log, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = own.Release(rctx)
		cancel()
	}()
	// Segments a dead writer left in progress have no known end: recover
	// them first (as the next writer would), so that d is checked against
	// the real end of the log and never lands past it.
	st, err := n.store.GetLogState(ctx, n.name, log)
	if err != nil {
		return n.logErr(log, err)
	}
	for _, s := range segment.InProgress(st) {
		if st, _, err = n.recoverSegment(ctx, log, st, s, own); err != nil {
			return err
		}
	}
	return n.truncate(ctx, log, d, dlog.DLSN{}, own)
}

// TruncateTxID truncates every record with a txid below txid: the
// truncation point moves to the first record with txid >= txid, or after
// the last record when there is none. Errors as Truncate.
func (n *Namespace) TruncateTxID(ctx context.Context, log string, txid int64) error {
	d, err := n.DLSNForTxID(ctx, log, txid)
	if errors.Is(err, dlog.ErrNotFound) {
		last, lerr := n.GetLastRecord(ctx, log)
		switch {
		case errors.Is(lerr, dlog.ErrNotFound):
			return nil // nothing to truncate
		case lerr != nil:
			return lerr
		}
		d, err = last.DLSN.Next(), nil
	}
	if err != nil {
		return err
	}
	return n.Truncate(ctx, log, d)
}

// truncate commits a truncation plan checked against own, re-reading and
// retrying when the collector or another truncation won a CAS race.
func (n *Namespace) truncate(ctx context.Context, log string, d, end dlog.DLSN, own metadata.Ownership) error {
	for attempt := 0; ; attempt++ {
		st, err := n.store.GetLogState(ctx, n.name, log)
		if err != nil {
			return n.logErr(log, err)
		}
		p, changed, err := segment.Truncate(st, d, end)
		if err != nil {
			return fmt.Errorf("log %s/%s: %w", n.name, log, err)
		}
		if !changed {
			return nil
		}
		_, err = n.store.Commit(ctx, p.Ops(n.name, log, own)...)
		switch {
		case err == nil:
			n.log.Info("log truncated", "log", log, "dlsn", d.String())
			n.kickGC()
			return nil
		case isOwnerCheck(err):
			return errFenced(log, err)
		case errors.Is(err, metadata.ErrBadVersion) && attempt < maxTruncateAttempts:
			continue
		}
		return n.logErr(log, err)
	}
}

// RunGC runs the collector once over every log of the namespace: it
// deletes segments wholly before each log's truncation point and, with a
// retention, completed segments older than it (see segment.Collect),
// then their ledgers. It returns the first error met (and goes on with
// the other logs).
func (n *Namespace) RunGC(ctx context.Context) error {
	if err := n.checkOpen(); err != nil {
		return err
	}
	nsRetention := n.cfg.Retention
	if info, _, err := n.store.GetNamespace(ctx, n.name); err == nil && info.Retention > 0 {
		nsRetention = info.Retention
	}
	var first error
	token := ""
	for {
		logs, next, err := n.ListLogs(ctx, "", token, 0)
		if err != nil {
			return err
		}
		for _, log := range logs {
			if err := n.collectLog(ctx, log, nsRetention); err != nil && !errors.Is(err, dlog.ErrLogNotFound) && first == nil {
				first = err
			}
		}
		if next == "" {
			break
		}
		token = next
	}
	if n.cfg.OrphanLedgerGrace > 0 {
		if err := n.sweepOrphans(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// sweepOrphans deletes the ledgers this namespace's writers created (they
// carry their namespace and log in their custom metadata) that no segment
// references and that are older than OrphanLedgerGrace: left by a crash
// between a ledger's creation and its segment's commit, or between a
// segment's deletion and its ledger's. The grace period covers a writer
// between the two steps of a segment creation.
func (n *Namespace) sweepOrphans(ctx context.Context) error {
	states := make(map[string]*metadata.LogState) // nil: the log is gone
	referenced := func(log string, id int64) (bool, error) {
		st, ok := states[log]
		if !ok {
			s, err := n.store.GetLogState(ctx, n.name, log)
			switch {
			case errors.Is(err, metadata.ErrNotFound):
			case err != nil:
				return true, err
			default:
				st = &s
			}
			states[log] = st
		}
		if st == nil {
			return false, nil
		}
		for _, s := range st.Segments {
			if s.LedgerID == id {
				return true, nil
			}
		}
		return false, nil
	}
	cutoff := time.Now().Add(-n.cfg.OrphanLedgerGrace)
	after := int64(0)
	for {
		ids, err := n.store.ListLedgers(ctx, after, 1000)
		if err != nil {
			return fmt.Errorf("sweep orphan ledgers: %w", err)
		}
		for _, id := range ids {
			md, _, err := n.store.GetLedger(ctx, id)
			if err != nil {
				continue // deleted meanwhile, or unreadable: not ours to judge
			}
			log := md.Custom["dlog.log"]
			if md.Custom["dlog.namespace"] != n.name || log == "" || !md.Created.Before(cutoff) {
				continue
			}
			used, err := referenced(log, id)
			if err != nil || used {
				continue
			}
			n.log.Info("deleting orphan ledger", "log", log, "ledger-id", id, "created", md.Created)
			n.deleteLedgers(ctx, log, []int64{id})
		}
		if len(ids) < 1000 {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// collectLog deletes one log's collectable segments, one transaction per
// batch, then their ledgers.
func (n *Namespace) collectLog(ctx context.Context, log string, nsRetention time.Duration) error {
	for {
		st, err := n.store.GetLogState(ctx, n.name, log)
		if err != nil {
			return n.logErr(log, err)
		}
		retention := nsRetention
		if st.Info.Retention > 0 {
			retention = st.Info.Retention
		}
		p := segment.Collect(st, time.Now(), retention)
		if p.Empty() {
			return nil
		}
		if _, err := n.store.Commit(ctx, p.Ops(n.name, log, nil)...); err != nil {
			if errors.Is(err, metadata.ErrBadVersion) || errors.Is(err, metadata.ErrNotFound) {
				return nil // raced with a writer or a truncation; next round
			}
			return n.logErr(log, err)
		}
		n.metrics.gcSegments.Add(float64(len(p.Delete)))
		n.log.Info("segments collected", "log", log, "segments", len(p.Delete), "first-lssn", p.Delete[0].LSSN, "last-lssn", p.Delete[len(p.Delete)-1].LSSN)
		n.deleteLedgers(ctx, log, p.DeleteLedgers)
	}
}

func (n *Namespace) kickGC() { notify(n.gcKick) }

// gcLoop runs the collector every GCInterval and when kicked.
func (n *Namespace) gcLoop() {
	ctx := n.bg
	t := time.NewTicker(n.cfg.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stopc:
			return
		case <-t.C:
		case <-n.gcKick:
		}
		if err := n.RunGC(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, dlog.ErrClosed) {
			n.log.Warn("garbage collection", "err", err)
		}
	}
}
