package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/proxy/status"
	"github.com/dlog-io/dlog/namespace"
)

// logKey names a log across namespaces.
type logKey struct{ ns, log string }

func (k logKey) String() string { return k.ns + "/" + k.log }

type streamState int

const (
	streamAcquiring streamState = iota + 1
	streamReady
	streamClosing
)

// stream is one log this proxy owns (or is taking over): its writer, its
// txid sequencer and its dedup table. The acquisition runs in a goroutine
// of the server; requests wait on ready. A writer failure that leaves
// writes indeterminate closes the stream (its writer completes what it
// can and releases the log), so the next request takes the log over
// afresh and rebuilds the dedup table from the log itself.
type stream struct {
	key   logKey
	label string
	srv   *Server
	ready chan struct{} // closed when the acquisition ended (err or w set)
	done  chan struct{} // closed when the stream left the owner map
	err   error         // acquisition failure, set before ready closes
	w     *namespace.Writer
	nsp   *namespace.Namespace

	recLim, byteLim *rate.Limiter // per log; nil: unlimited

	// closer is set (under owners.mu) once a goroutine closes the stream.
	closer bool

	pendingRecs  atomic.Int64
	pendingBytes atomic.Int64

	// mu orders a log's writes: sequencing txids, checking the dedup table
	// and handing records to the writer happen under it, so writes are
	// accepted in one order. Lock order: stream.mu, then the writer's own.
	mu struct {
		sync.Mutex
		state     streamState
		producers *producerTable
	}
}

// failureRecord counts one log's writer failures for probation.
type failureRecord struct {
	count     int
	first     time.Time
	probation time.Time // no re-acquisition before this
}

// owners is the server's map of owned logs.
type owners struct {
	mu       sync.Mutex
	streams  map[logKey]*stream
	failures map[logKey]*failureRecord
	closing  bool
}

// admitLocked says whether a new log may be taken over now.
func (s *Server) admitLocked(k logKey, now time.Time) error {
	o := &s.owners
	switch {
	case o.closing:
		return fmt.Errorf("%w: proxy %s is shutting down", dlog.ErrClosed, s.id)
	case s.cfg.DisableWrites:
		s.metrics.rejected.WithLabelValues("writes-disabled").Inc()
		return fmt.Errorf("%w: proxy %s does not serve writes", status.ErrStreamUnavailable, s.id)
	case !s.accepting.Load():
		s.metrics.rejected.WithLabelValues("draining").Inc()
		return fmt.Errorf("%w: proxy %s does not accept new logs (draining)", status.ErrStreamUnavailable, s.id)
	case len(o.streams) >= s.cfg.MaxOwnedLogs:
		s.metrics.rejected.WithLabelValues("too-many-logs").Inc()
		return fmt.Errorf("%w: proxy %s owns %d logs, its limit", status.ErrStreamUnavailable, s.id, len(o.streams))
	}
	if f := o.failures[k]; f != nil {
		if now.Before(f.probation) {
			s.metrics.rejected.WithLabelValues("probation").Inc()
			return fmt.Errorf("%w: log %s is on probation on proxy %s until %s after repeated errors", status.ErrStreamUnavailable, k, s.id, f.probation.Format(time.RFC3339))
		}
		if !f.probation.IsZero() || now.Sub(f.first) > s.cfg.ProbationWindow {
			delete(o.failures, k)
		}
	}
	return nil
}

// stream returns the ready stream of k, taking the log over if this proxy
// does not own it yet (other requests for k wait for that one takeover).
// Errors: *dlog.OwnedError (another proxy owns it: redirect),
// status.ErrStreamUnavailable, dlog.ErrClosed, namespace and metadata
// errors of the takeover, ctx's.
func (s *Server) stream(ctx context.Context, k logKey) (*stream, error) {
	for {
		o := &s.owners
		o.mu.Lock()
		st := o.streams[k]
		if st == nil {
			if err := s.admitLocked(k, time.Now()); err != nil {
				o.mu.Unlock()
				return nil, err
			}
			st = s.newStream(k)
			o.streams[k] = st
			s.wg.Go(st.acquire)
		}
		o.mu.Unlock()
		select {
		case <-st.ready:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for ownership of %s: %w", k, ctx.Err())
		}
		if st.err != nil {
			return nil, st.err
		}
		st.mu.Lock()
		state := st.mu.state
		st.mu.Unlock()
		if state == streamReady {
			return st, nil
		}
		select { // closing: wait until it is gone, then take the log again
		case <-st.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s to be released: %w", k, ctx.Err())
		}
	}
}

// owned returns the stream of k if this proxy owns the log now.
func (s *Server) owned(k logKey) *stream {
	s.owners.mu.Lock()
	st := s.owners.streams[k]
	s.owners.mu.Unlock()
	if st == nil {
		return nil
	}
	select {
	case <-st.ready:
	default:
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.mu.state != streamReady {
		return nil
	}
	return st
}

func (s *Server) newStream(k logKey) *stream {
	st := &stream{key: k, label: k.String(), srv: s, ready: make(chan struct{}), done: make(chan struct{})}
	st.mu.state = streamAcquiring
	if r := s.cfg.LogRecordsPerSecond; r > 0 {
		st.recLim = rate.NewLimiter(rate.Limit(r), max(int(r), s.cfg.MaxBulkRecords))
	}
	if r := s.cfg.LogBytesPerSecond; r > 0 {
		st.byteLim = rate.NewLimiter(rate.Limit(r), max(int(r), s.cfg.MaxMessageBytes))
	}
	return st
}

// acquire takes the log over: the writer lock (a lost race is a
// *dlog.OwnedError naming the owner), recovery of the previous owner's
// segments (inside OpenWriter; it fences them) and the dedup table from
// the end of the log.
func (st *stream) acquire() {
	s := st.srv
	ctx, cancel := context.WithTimeout(s.bg, s.cfg.AcquireTimeout)
	defer cancel()
	start := time.Now()
	err := st.open(ctx)
	if err != nil {
		var owned *dlog.OwnedError
		switch {
		case errors.As(err, &owned) && owned.Owner != "" && owned.Owner == s.advertise:
			// Our own lock from an earlier life of this proxy (same
			// address): it goes when that session's lease ends.
			s.log.Warn("log locked by an earlier instance of this proxy; waiting for its lease", "log", st.label, "owner-id", owned.OwnerID)
			err = fmt.Errorf("%w: log %s is still locked by %s (an earlier instance of this proxy)", status.ErrStreamUnavailable, st.label, owned.OwnerID)
		case errors.As(err, &owned):
			s.metrics.ownership.WithLabelValues("redirected").Inc()
		case dlog.IsDefinite(err):
			s.log.Debug("taking log over refused", "log", st.label, "err", err)
		default:
			s.metrics.ownership.WithLabelValues("acquire-failed").Inc()
			s.log.Warn("taking log over failed", "log", st.label, "err", err)
		}
		st.err = err
		s.owners.mu.Lock()
		if s.owners.streams[st.key] == st {
			delete(s.owners.streams, st.key)
		}
		s.owners.mu.Unlock()
		close(st.ready)
		close(st.done)
		return
	}
	st.mu.Lock()
	st.mu.state = streamReady
	st.mu.Unlock()
	s.metrics.ownership.WithLabelValues("acquired").Inc()
	s.metrics.ownedLogs.Inc()
	s.log.Info("log acquired", "log", st.label, "producers", st.mu.producers.len(), "took", time.Since(start))
	close(st.ready)
}

func (st *stream) open(ctx context.Context) error {
	s := st.srv
	nsp, err := s.namespace(ctx, st.key.ns)
	if err != nil {
		return err
	}
	w, err := nsp.OpenWriter(ctx, st.key.log, namespace.WriterOptions{OwnerID: s.id, OwnerAddress: s.advertise})
	if err != nil {
		return err
	}
	table := newProducerTable(s.cfg.MaxProducersPerLog, s.cfg.ProducerRanges)
	if err := s.rebuildProducers(ctx, nsp, st.key, w, table); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.CloseTimeout)
		_ = w.Close(cctx)
		cancel()
		return dlog.Indeterminate(fmt.Errorf("log %s: rebuild dedup table: %w", st.label, err))
	}
	st.nsp, st.w = nsp, w
	st.mu.producers = table
	return nil
}

// fail closes the stream after a writer failure that left writes
// indeterminate (or a writer that is gone): the next request takes the log
// over again, which settles what the failure left behind and rebuilds the
// dedup table from the log. Repeated failures put the log on probation.
func (st *stream) fail(cause error) {
	if !st.beginClose() {
		return
	}
	s := st.srv
	s.metrics.ownership.WithLabelValues("failed").Inc()
	now := time.Now()
	s.owners.mu.Lock()
	f := s.owners.failures[st.key]
	if f == nil || now.Sub(f.first) > s.cfg.ProbationWindow {
		f = &failureRecord{first: now}
		s.owners.failures[st.key] = f
	}
	f.count++
	probation := s.cfg.ProbationErrors > 0 && f.count >= s.cfg.ProbationErrors
	if probation {
		f.probation = now.Add(s.cfg.ProbationPeriod)
		s.metrics.ownership.WithLabelValues("probation").Inc()
	}
	s.spawnCloseLocked(st, "failed")
	s.owners.mu.Unlock()
	if errors.Is(cause, dlog.ErrFenced) {
		s.log.Warn("log lost", "log", st.label, "err", cause)
	} else {
		s.log.Warn("log writer failed; releasing the log", "log", st.label, "err", cause, "probation", probation)
	}
}

// spawnCloseLocked starts a goroutine closing st, unless the server is
// shutting down (closeStreams closes it then). owners.mu is held, so no
// goroutine starts after closeStreams took its snapshot.
func (s *Server) spawnCloseLocked(st *stream, why string) {
	if s.owners.closing {
		return
	}
	st.closer = true
	s.wg.Go(func() { st.close(why) })
}

// beginClose moves a ready stream to closing; false if it was not ready.
func (st *stream) beginClose() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.mu.state != streamReady {
		return false
	}
	st.mu.state = streamClosing
	return true
}

// close completes the writer (its pending writes are acknowledged or fail)
// and releases the log, then forgets the stream.
func (st *stream) close(why string) {
	s := st.srv
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CloseTimeout)
	err := st.w.Close(ctx)
	cancel()
	if err != nil && !errors.Is(err, dlog.ErrFenced) {
		s.log.Warn("closing log writer", "log", st.label, "err", err)
	}
	s.owners.mu.Lock()
	if s.owners.streams[st.key] == st {
		delete(s.owners.streams, st.key)
	}
	s.owners.mu.Unlock()
	s.metrics.ownedLogs.Dec()
	s.metrics.ownership.WithLabelValues("released").Inc()
	s.log.Info("log released", "log", st.label, "why", why)
	close(st.done)
}

// release gives up a log this proxy owns (AdminService.Release, delete);
// it returns once the writer is closed. A no-op for a log it does not
// own.
func (s *Server) release(ctx context.Context, k logKey, why string) error {
	st := s.owned(k)
	if st == nil || !st.beginClose() {
		return nil
	}
	s.owners.mu.Lock()
	s.spawnCloseLocked(st, why)
	s.owners.mu.Unlock()
	select {
	case <-st.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("release %s: %w", k, ctx.Err())
	}
}

// closeStreams closes every owned log (shutdown) and waits for them.
func (s *Server) closeStreams() {
	s.owners.mu.Lock()
	s.owners.closing = true
	all := make([]*stream, 0, len(s.owners.streams))
	for _, st := range s.owners.streams {
		all = append(all, st)
	}
	s.owners.mu.Unlock()
	var wg sync.WaitGroup
	for _, st := range all {
		<-st.ready // acquisitions end quickly: their ctx is cancelled
		if st.err != nil {
			continue
		}
		s.owners.mu.Lock()
		hasCloser := st.closer
		s.owners.mu.Unlock()
		switch {
		case st.beginClose() || !hasCloser:
			wg.Go(func() { st.close("shutdown") })
		default:
			wg.Go(func() { <-st.done })
		}
	}
	wg.Wait()
}
