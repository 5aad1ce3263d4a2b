package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/namespace"
)

// errBehind: a reader's position left the cache window; it reads from the
// bookies again.
var errBehind = errors.New("proxy: reader fell behind the tail cache")

// recordOverheadBytes is what a cached record costs beyond its payload.
const recordOverheadBytes = 96

// tailBatchRecords bounds one batch of a cache's tail reader.
const tailBatchRecords = 256

// tailCache is the shared tail of one log on this proxy: ONE namespace
// reader (its goroutine, run) follows the log from the end it found and
// appends every record to a window bounded in bytes, dropping the oldest.
// Readers hold absolute indexes into the window and copy records out at
// their own pace (read); nobody ever waits for a reader, so a slow reader
// neither blocks the others nor grows memory: once its index falls below
// the window it gets errBehind and reads from the bookies again.
//
// The window's invariant: every record of the log at or after from is in
// it, in order, from index base on. A reader whose next position is at or
// after from can therefore switch to the window without a gap or a
// repeat (seek).
type tailCache struct {
	key    logKey
	label  string
	srv    *Server
	ready  chan struct{} // closed once positioned (from is set) or failed
	failed error         // could not start; set before ready closes
	cancel context.CancelFunc
	done   chan struct{} // closed when run has returned

	mu struct {
		sync.Mutex
		recs    []dlog.ReadRecord
		off     int   // recs[off:] is the window
		base    int64 // absolute index of recs[off]
		bytes   int64
		from    dlog.DLSN
		err     error         // the tail reader's terminal error, after the window's records
		wake    chan struct{} // closed (and replaced) when records or err arrive
		readers int
		idle    time.Time // since when readers is 0
	}
}

type caches struct {
	mu     sync.Mutex
	byKey  map[logKey]*tailCache
	closed bool
}

// acquireCache returns the started tail cache of k with the caller
// attached (release it with detach), or nil when the proxy keeps no cache
// for it (limit reached, the log cannot be read from its end).
func (s *Server) acquireCache(ctx context.Context, k logKey) *tailCache {
	if s.cfg.MaxCachedLogs == 0 || s.cfg.CacheBytesPerLog == 0 {
		return nil
	}
	s.caches.mu.Lock()
	if s.caches.closed {
		s.caches.mu.Unlock()
		return nil
	}
	c := s.caches.byKey[k]
	if c != nil && c.unusable() {
		delete(s.caches.byKey, k) // its reader has stopped; start afresh
		c.close()                 // returns at once: run has ended
		c = nil
	}
	if c == nil {
		if len(s.caches.byKey) >= s.cfg.MaxCachedLogs {
			s.caches.mu.Unlock()
			return nil
		}
		c = &tailCache{key: k, label: k.String(), srv: s, ready: make(chan struct{}), done: make(chan struct{})}
		c.mu.wake = make(chan struct{})
		c.mu.idle = time.Now()
		var cctx context.Context
		cctx, c.cancel = context.WithCancel(s.bg)
		s.caches.byKey[k] = c
		s.metrics.cachedLogs.Inc()
		s.wg.Go(func() { c.run(cctx) })
	}
	c.attach()
	s.caches.mu.Unlock()
	select {
	case <-c.ready:
	case <-ctx.Done():
		c.detach()
		return nil
	}
	if c.failed != nil {
		c.detach()
		return nil
	}
	return c
}

// unusable: the cache failed to start or its tail reader stopped.
func (c *tailCache) unusable() bool {
	select {
	case <-c.ready:
		if c.failed != nil {
			return true
		}
	default:
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err != nil && !errors.Is(c.mu.err, dlog.ErrEndOfStream)
}

func (c *tailCache) attach() {
	c.mu.Lock()
	c.mu.readers++
	c.mu.Unlock()
}

func (c *tailCache) detach() {
	c.mu.Lock()
	c.mu.readers--
	if c.mu.readers == 0 {
		c.mu.idle = time.Now()
	}
	c.mu.Unlock()
}

// run positions the tail reader after the last record of the log and
// follows the log until the cache is closed or the reader fails for good.
func (c *tailCache) run(ctx context.Context) {
	defer close(c.done)
	s := c.srv
	r, from, err := c.open(ctx)
	if err != nil {
		c.failed = err
		s.log.Debug("tail cache not started", "log", c.label, "err", err)
		close(c.ready)
		return
	}
	defer r.Close()
	c.mu.Lock()
	c.mu.from = from
	c.mu.Unlock()
	close(c.ready)
	var last dlog.DLSN // entry accounting
	mRecs := s.metrics.bookieRecords.WithLabelValues(c.label)
	mEntries := s.metrics.bookieEntries.WithLabelValues(c.label)
	for {
		recs, err := r.NextBatch(ctx, tailBatchRecords)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			c.mu.err = err
			close(c.mu.wake)
			c.mu.wake = make(chan struct{})
			c.mu.Unlock()
			s.log.Debug("tail cache reader stopped", "log", c.label, "err", err)
			return
		}
		mRecs.Add(float64(len(recs)))
		mEntries.Add(float64(countEntries(&last, recs)))
		c.append(recs)
	}
}

// open finds where the log ends and opens the tail reader there.
func (c *tailCache) open(ctx context.Context) (*namespace.Reader, dlog.DLSN, error) {
	s := c.srv
	nsp, err := s.namespace(ctx, c.key.ns)
	if err != nil {
		return nil, dlog.DLSN{}, err
	}
	var from dlog.DLSN
	last, err := nsp.GetLastRecord(ctx, c.key.log)
	switch {
	case err == nil:
		from = last.DLSN.Next()
	case errors.Is(err, dlog.ErrNotFound):
		// No readable record: the next one is at or after the truncation
		// point (the first position of a log that never had one).
		st, err := s.store.GetLogState(ctx, c.key.ns, c.key.log)
		if err != nil {
			return nil, dlog.DLSN{}, err
		}
		from = dlog.InitialDLSN
		if from.Less(st.Truncation) {
			from = st.Truncation
		}
	default:
		return nil, dlog.DLSN{}, err
	}
	r, err := nsp.OpenReader(ctx, c.key.log, namespace.AtDLSN(from), namespace.ReaderOptions{SkipTruncated: true})
	if err != nil {
		return nil, dlog.DLSN{}, fmt.Errorf("tail reader of %s at %v: %w", c.label, from, err)
	}
	return r, from, nil
}

// countEntries counts the distinct entries among recs, continuing from
// the entry of the record before them (*last), which it advances.
func countEntries(last *dlog.DLSN, recs []dlog.ReadRecord) int {
	n := 0
	for _, r := range recs {
		if r.DLSN.LSSN != last.LSSN || r.DLSN.EntryID != last.EntryID {
			n++
		}
		*last = r.DLSN
	}
	return n
}

// append adds records to the window and drops the oldest beyond the byte
// bound (always keeping the newest record).
func (c *tailCache) append(recs []dlog.ReadRecord) {
	s := c.srv
	c.mu.Lock()
	defer c.mu.Unlock()
	var added int64
	for _, r := range recs {
		c.mu.recs = append(c.mu.recs, r)
		added += int64(len(r.Payload)) + recordOverheadBytes
	}
	c.mu.bytes += added
	var dropped int64
	for c.mu.bytes > s.cfg.CacheBytesPerLog && len(c.mu.recs)-c.mu.off > 1 {
		r := &c.mu.recs[c.mu.off]
		sz := int64(len(r.Payload)) + recordOverheadBytes
		c.mu.bytes -= sz
		dropped += sz
		*r = dlog.ReadRecord{}
		c.mu.off++
		c.mu.base++
		c.mu.from = c.mu.recs[c.mu.off].DLSN
	}
	if c.mu.off > 1024 && c.mu.off > len(c.mu.recs)/2 {
		n := copy(c.mu.recs, c.mu.recs[c.mu.off:])
		clear(c.mu.recs[n:])
		c.mu.recs = c.mu.recs[:n]
		c.mu.off = 0
	}
	s.metrics.cacheBytes.Add(float64(added - dropped))
	close(c.mu.wake)
	c.mu.wake = make(chan struct{})
}

// seek returns the index of the first record at or after p, if every
// record from p on is in the window (or will be).
func (c *tailCache) seek(p dlog.DLSN) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.Less(c.mu.from) {
		return 0, false
	}
	win := c.mu.recs[c.mu.off:]
	i, _ := slices.BinarySearchFunc(win, p, func(r dlog.ReadRecord, p dlog.DLSN) int { return r.DLSN.Compare(p) })
	return c.mu.base + int64(i), true
}

// read copies records from index idx on (at most maxRecs, and maxBytes of
// payload unless that is less than one record), waiting for one when idx
// is at the head. It returns the next index. Errors: errBehind (idx left
// the window), the tail reader's terminal error once idx reached it,
// ctx's.
func (c *tailCache) read(ctx context.Context, idx int64, maxRecs, maxBytes int) ([]dlog.ReadRecord, int64, error) {
	for {
		c.mu.Lock()
		if idx < c.mu.base {
			c.mu.Unlock()
			return nil, idx, errBehind
		}
		win := c.mu.recs[c.mu.off:]
		if i := int(idx - c.mu.base); i < len(win) {
			var out []dlog.ReadRecord
			size := 0
			for _, r := range win[i:] {
				if len(out) == maxRecs || (len(out) > 0 && size+len(r.Payload) > maxBytes) {
					break
				}
				out = append(out, r)
				size += len(r.Payload)
			}
			c.mu.Unlock()
			return out, idx + int64(len(out)), nil
		}
		if err := c.mu.err; err != nil {
			c.mu.Unlock()
			return nil, idx, err
		}
		wake := c.mu.wake
		c.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, idx, ctx.Err()
		}
	}
}

// close stops the tail reader and frees the window.
func (c *tailCache) close() {
	c.cancel()
	<-c.done
	c.mu.Lock()
	c.srv.metrics.cacheBytes.Sub(float64(c.mu.bytes))
	c.mu.bytes = 0
	c.mu.recs = nil
	c.mu.off = 0
	c.mu.Unlock()
	c.srv.metrics.cachedLogs.Dec()
}

// cacheJanitor closes caches without readers for CacheIdleTimeout.
func (s *Server) cacheJanitor() {
	period := max(s.cfg.CacheIdleTimeout/2, 50*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var idle []*tailCache
		s.caches.mu.Lock()
		for k, c := range s.caches.byKey {
			c.mu.Lock()
			expired := c.mu.readers == 0 && now.Sub(c.mu.idle) >= s.cfg.CacheIdleTimeout
			c.mu.Unlock()
			if expired {
				delete(s.caches.byKey, k)
				idle = append(idle, c)
			}
		}
		s.caches.mu.Unlock()
		for _, c := range idle {
			c.close()
		}
		s.pruneFailures(now)
	}
}

// pruneFailures forgets failure records that can no longer matter (their
// window and probation are over).
func (s *Server) pruneFailures(now time.Time) {
	s.owners.mu.Lock()
	defer s.owners.mu.Unlock()
	for k, f := range s.owners.failures {
		if now.Sub(f.first) > s.cfg.ProbationWindow && now.After(f.probation) {
			delete(s.owners.failures, k)
		}
	}
}

// closeCaches stops every cache (shutdown).
func (s *Server) closeCaches() {
	s.caches.mu.Lock()
	s.caches.closed = true
	all := s.caches.byKey
	s.caches.byKey = nil
	s.caches.mu.Unlock()
	for _, c := range all {
		c.close()
	}
}
