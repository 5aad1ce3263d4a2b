package ledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/bugs"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/pb/bookiepb"
	"github.com/dlog-io/dlog/internal/placement"
	"github.com/dlog-io/dlog/internal/quorum"
)

// errMetadataChanged: a CAS found the ledger changed by someone else.
var errMetadataChanged = errors.New("ledger: metadata changed by someone else")

// superviseLoop is the writer's second goroutine: it performs ensemble
// changes (which wait on metadata) and explicit-LAC rounds, so that bookie
// callbacks never block. It exits when ctx ends (Writer.stop).
func (w *Writer) superviseLoop(ctx context.Context) {
	lacTimer := time.NewTimer(time.Hour)
	lacTimer.Stop()
	defer lacTimer.Stop()
	for {
		var registry <-chan struct{}
		w.mu.Lock()
		if w.mu.unreplaceable && w.mu.err == nil {
			registry = w.c.registryChanged()
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-w.changec:
			w.changeEnsemble(ctx)
		case <-registry:
			w.mu.Lock()
			w.mu.unreplaceable = false
			w.mu.Unlock()
			w.changeEnsemble(ctx)
		case <-w.lacc:
			lacTimer.Reset(w.c.cfg.ExplicitLACDelay)
		case <-lacTimer.C:
			w.flushLAC()
		}
	}
}

// changeEnsemble replaces the failed members of the current ensemble, in
// BookKeeper's order: freeze the LAC (BeginChange), pick replacements,
// persist the new fragment (starting at LAC+1) by CAS, and only then
// install it in the tracker (CommitChange) and resend the unacknowledged
// entries to the new members. Nothing relying on a new member can be
// acknowledged before its fragment is in metadata (BookKeeper #1591). If
// the CAS finds the ledger no longer OPEN, someone is recovering it and the
// writer is fenced. A member with no replacement stays failed; if that
// leaves some entry unable to reach Qa, the writer fails with
// ErrNotEnoughBookies.
func (w *Writer) changeEnsemble(ctx context.Context) {
	w.metaMu.Lock()
	defer w.metaMu.Unlock()
	noReplacement := make(map[int]bool)
	for ctx.Err() == nil {
		w.mu.Lock()
		if w.mu.err != nil || w.mu.closed {
			w.mu.Unlock()
			return
		}
		var todo []int
		for _, idx := range w.mu.tr.Failed() {
			if !noReplacement[idx] {
				todo = append(todo, idx)
			}
		}
		if len(todo) == 0 {
			if len(noReplacement) > 0 {
				w.degradedLocked(slices.Sorted(maps.Keys(noReplacement)))
			}
			w.mu.Unlock()
			return
		}
		first, err := w.mu.tr.BeginChange()
		if err != nil {
			w.mu.Unlock()
			w.log.Error("begin ensemble change", "err", err)
			return
		}
		ensemble := slices.Clone(w.mu.ensemble)
		md, ver := cloneMetadata(w.mu.md), w.mu.version
		exclude := placement.NewSet(slices.Collect(maps.Keys(w.mu.everFailed))...)
		w.mu.Unlock()

		repl, next, rerr := w.c.replacements(ensemble, todo, w.p, exclude)
		for _, idx := range todo {
			if _, ok := repl[idx]; !ok {
				noReplacement[idx] = true
			}
		}
		if len(repl) == 0 {
			w.log.Warn("no replacement bookie", "ensemble", ensemble, "failed", todo, "err", rerr)
			w.abortChange()
			w.c.metrics.ensembleChanges.WithLabelValues("no-replacement").Inc()
			continue
		}
		nextMD := withFragment(md, first, next)
		if bugs.On(bugs.AckBeforeEnsembleCAS) {
			// Seeded bug (BookKeeper #1591): install the new members and
			// let their acks count before metadata names them.
			w.commitChange(repl, next, nil, 0)
		}
		v, cur, err := w.updateLedger(ctx, ver, nextMD)
		switch {
		case err == nil:
			if bugs.On(bugs.AckBeforeEnsembleCAS) {
				w.mu.Lock()
				w.mu.md, w.mu.version = nextMD, v
				w.mu.Unlock()
			} else {
				w.commitChange(repl, next, &nextMD, v)
			}
			w.c.metrics.ensembleChanges.WithLabelValues("ok").Inc()
			w.log.Info("ensemble changed", "first-entry-id", first, "ensemble", next, "replaced", repl)
		case errors.Is(err, errMetadataChanged):
			w.c.metrics.ensembleChanges.WithLabelValues("failed").Inc()
			if cur.State != metadata.LedgerOpen {
				w.mu.Lock()
				w.failLocked(fencedError(w.id, fmt.Sprintf("ensemble change found the ledger %v", stateName(cur.State))))
				w.mu.Unlock()
				w.abortChange()
				return
			}
			// Still OPEN but changed (not by this writer): take the new
			// version and try again.
			w.mu.Lock()
			w.mu.md, w.mu.version = cur, v
			w.mu.Unlock()
			w.abortChange()
		default:
			w.c.metrics.ensembleChanges.WithLabelValues("failed").Inc()
			w.abortChange()
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			w.failLocked(fmt.Errorf("ledger %d: ensemble change: %w", w.id, err))
			w.mu.Unlock()
			return
		}
	}
}

// degradedLocked handles failed members with no replacement: if some
// pending entry can no longer reach Qa the writer fails; otherwise it keeps
// writing to the remaining members and retries when the registry changes.
func (w *Writer) degradedLocked(unreplaced []int) {
	if stalled := w.mu.tr.Stalled(); len(stalled) > 0 {
		w.failLocked(fmt.Errorf("ledger %d: %w: no replacement for ensemble indices %v; entries from %d cannot reach the ack quorum %d",
			w.id, ErrNotEnoughBookies, unreplaced, stalled[0], w.p.AckQuorum))
		return
	}
	w.mu.unreplaceable = true
}

func (w *Writer) abortChange() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.mu.tr.Changing() {
		return
	}
	acked, err := w.mu.tr.AbortChange()
	if err != nil {
		w.log.Error("abort ensemble change", "err", err)
		return
	}
	if w.mu.err == nil {
		w.completeLocked(acked)
	}
}

// commitChange installs persisted replacements in the tracker and resends
// the unacknowledged entries to the new members. md is nil when the bug
// switch commits before the CAS.
func (w *Writer) commitChange(repl map[int]string, next []string, md *metadata.LedgerMetadata, ver metadata.Version) {
	w.mu.Lock()
	if w.mu.err != nil {
		w.mu.Unlock()
		return
	}
	res, err := w.mu.tr.CommitChange(repl)
	if err != nil {
		w.mu.Unlock()
		w.log.Error("commit ensemble change", "err", err)
		return
	}
	w.mu.ensemble = next
	if md != nil {
		w.mu.md, w.mu.version = *md, ver
	}
	type resend struct {
		add *bookiepb.AddRequest
		s   quorum.Send
	}
	var out []resend
	if len(w.mu.ops) > 0 {
		base := w.mu.ops[0].entryID
		for _, s := range res.Resend {
			out = append(out, resend{w.mu.ops[s.EntryID-base].add, s})
		}
	}
	w.completeLocked(res.Acked)
	w.mu.Unlock()
	for _, r := range out {
		w.send(r.add, r.s)
	}
}

// withFragment returns md with a fragment of ensemble starting at first.
// A last fragment that starts at first held no entry: it is replaced.
func withFragment(md metadata.LedgerMetadata, first int64, ensemble []string) metadata.LedgerMetadata {
	out := cloneMetadata(md)
	f := metadata.Fragment{FirstEntryID: first, Bookies: slices.Clone(ensemble)}
	if last := len(out.Fragments) - 1; out.Fragments[last].FirstEntryID == first {
		out.Fragments[last] = f
	} else {
		out.Fragments = append(out.Fragments, f)
	}
	return out
}

// updateLedger CASes next over version ver. Transient metadata failures are
// retried (the CAS makes a retry safe; a re-read tells whether an attempt
// whose answer was lost landed). It returns the new version; or, wrapping
// errMetadataChanged, the current metadata and its version when someone
// else changed the ledger; or another error (ctx ended, ledger deleted,
// corrupt metadata).
func (w *Writer) updateLedger(ctx context.Context, ver metadata.Version, next metadata.LedgerMetadata) (metadata.Version, metadata.LedgerMetadata, error) {
	return updateLedger(ctx, w.c, w.id, ver, next)
}

func updateLedger(ctx context.Context, c *Client, id int64, ver metadata.Version, next metadata.LedgerMetadata) (metadata.Version, metadata.LedgerMetadata, error) {
	bo := newBackoff(20*time.Millisecond, time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, c.cfg.MetadataTimeout)
		v, err := c.store.UpdateLedger(cctx, id, next, ver)
		cancel()
		if err == nil {
			return v, next, nil
		}
		if ctx.Err() != nil {
			return 0, metadata.LedgerMetadata{}, ctx.Err()
		}
		if !errors.Is(err, metadata.ErrBadVersion) && !errors.Is(err, metadata.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
			return 0, metadata.LedgerMetadata{}, err
		}
		// A call that ran out of its own time is as unknown as an
		// unreachable service.
		transient := errors.Is(err, metadata.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
		cctx, cancel = context.WithTimeout(ctx, c.cfg.MetadataTimeout)
		cur, curVer, gerr := c.store.GetLedger(cctx, id)
		cancel()
		switch {
		case errors.Is(gerr, metadata.ErrNotFound):
			return 0, metadata.LedgerMetadata{}, fmt.Errorf("ledger %d: %w (deleted)", id, ErrNoLedger)
		case gerr != nil:
			if !errors.Is(gerr, metadata.ErrUnavailable) {
				return 0, metadata.LedgerMetadata{}, gerr
			}
			transient = true
		case curVer == ver:
			// Our write did not land; retry it (after a pause).
			transient = true
		case sameLedger(cur, next):
			return curVer, cur, nil // an earlier attempt landed
		default:
			return curVer, cur, errMetadataChanged
		}
		if transient && !bo.wait(ctx) {
			return 0, metadata.LedgerMetadata{}, ctx.Err()
		}
	}
}

// flushLAC sends the writer's LAC to its ensemble by WriteLAC when it is
// idle and no add carried that LAC (explicit LAC).
func (w *Writer) flushLAC() {
	w.mu.Lock()
	lac := w.mu.tr.LAC()
	if w.mu.err != nil || w.mu.tr.Pending() > 0 || lac <= w.mu.lastSentLAC || lac <= w.mu.lastExplicitLAC {
		w.mu.Unlock()
		return
	}
	w.mu.lastExplicitLAC = lac
	failed := w.mu.tr.Failed()
	var targets []string
	for i, b := range w.mu.ensemble {
		if !slices.Contains(failed, i) {
			targets = append(targets, b)
		}
	}
	w.mu.Unlock()
	w.c.metrics.explicitLACs.Inc()
	for _, b := range targets {
		addr, ok := w.c.Address(b)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), w.c.cfg.AddTimeout)
		req := &bookiepb.Request{ExpectedBookieId: b, Body: &bookiepb.Request_WriteLac{WriteLac: &bookiepb.WriteLACRequest{LedgerId: w.id, Lac: lac, MasterKey: w.masterKey}}}
		w.c.bk.Go(ctx, addr, req, func(_ *bookiepb.Response, err error) {
			cancel()
			switch {
			case err == nil:
			case errors.Is(err, bookieclient.ErrFenced):
				w.mu.Lock()
				w.failLocked(fencedError(w.id, fmt.Sprintf("bookie %s answered fenced to WriteLAC", b)))
				w.mu.Unlock()
			default:
				w.log.Debug("explicit LAC not delivered", "bookie", b, "lac", lac, "err", err)
			}
		})
	}
}
