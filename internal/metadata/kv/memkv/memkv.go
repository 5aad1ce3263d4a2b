package memkv

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/dlog-io/dlog/internal/metadata/kv"
)

// Config tunes a Server.
type Config struct {
	// HistoryEvents is how many past events (at least; up to twice as
	// many) the server keeps for watches that start at an old revision
	// (etcd's compaction window). A watch starting before the window gets
	// kv.ErrCompacted. Default 10000.
	HistoryEvents int
	// WatchQueueEvents bounds the events queued for one watch whose reader
	// is slow; past it the watch ends with kv.ErrCompacted (as an etcd
	// watcher that fell behind compaction would). Default 10000.
	WatchQueueEvents int
}

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{HistoryEvents: 10000, WatchQueueEvents: 10000}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.HistoryEvents < 1 || c.WatchQueueEvents < 1 {
		return errors.New("memkv: history and watch queue must hold at least one event")
	}
	return nil
}

// Server holds the data.
type Server struct {
	cfg   Config
	stopc chan struct{}
	kickc chan struct{} // cap 1: a lease deadline changed
	wg    sync.WaitGroup

	mu struct {
		sync.Mutex
		closed      bool
		unavailable bool
		rev         int64
		compactRev  int64
		keys        map[string]kv.KeyValue
		sorted      []string   // keys of keys, ascending
		history     []kv.Event // ascending revision, at most cfg.HistoryEvents
		leases      map[int64]*lease
		nextLease   int64
		watchers    map[*watcher]struct{}
	}
}

type lease struct {
	ttl      time.Duration
	deadline time.Time
	keys     map[string]struct{}
}

// NewServer starts an empty server. Zero fields of cfg take defaults.
func NewServer(cfg Config) (*Server, error) {
	d := DefaultConfig()
	if cfg.HistoryEvents == 0 {
		cfg.HistoryEvents = d.HistoryEvents
	}
	if cfg.WatchQueueEvents == 0 {
		cfg.WatchQueueEvents = d.WatchQueueEvents
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, stopc: make(chan struct{}), kickc: make(chan struct{}, 1)}
	s.mu.keys = make(map[string]kv.KeyValue)
	s.mu.leases = make(map[int64]*lease)
	s.mu.watchers = make(map[*watcher]struct{})
	s.mu.nextLease = 0x1000
	s.wg.Go(s.expiryLoop)
	return s, nil
}

// Close stops the server: later calls of its clients fail with
// kv.ErrUnavailable, and watches end with it. Safe to call twice.
func (s *Server) Close() {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return
	}
	s.mu.closed = true
	ws := s.mu.watchers
	s.mu.watchers = map[*watcher]struct{}{}
	s.mu.Unlock()
	for w := range ws {
		w.fail(kv.ErrUnavailable)
	}
	close(s.stopc)
	s.wg.Wait()
}

// SetUnavailable simulates a partition: while on, Txn, Grant, KeepAliveOnce
// and Revoke block until their ctx ends and fail with kv.ErrUnavailable.
// Leases keep expiring and watches stay open.
func (s *Server) SetUnavailable(on bool) {
	s.mu.Lock()
	s.mu.unavailable = on
	s.mu.Unlock()
}

// Compact drops the whole watch history: watches from any revision up to
// the current one fail with kv.ErrCompacted.
func (s *Server) Compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.history = nil
	s.mu.compactRev = s.mu.rev
}

// Revision returns the current revision.
func (s *Server) Revision() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.rev
}

// Client opens a connection.
func (s *Server) Client() *Client {
	c := &Client{s: s}
	c.mu.watchers = make(map[*watcher]struct{})
	return c
}

// begin takes s.mu for a call, or explains why the call cannot run. On
// success the caller must unlock.
func (s *Server) begin(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%w: %w", kv.ErrUnavailable, err)
		}
		s.mu.Lock()
		switch {
		case s.mu.closed:
			s.mu.Unlock()
			return fmt.Errorf("%w: memkv server stopped", kv.ErrUnavailable)
		case !s.mu.unavailable:
			return nil
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-s.stopc:
		}
	}
}

func (s *Server) txn(t kv.Txn) (kv.TxnResponse, error) {
	if err := kv.CheckTxn(t); err != nil {
		return kv.TxnResponse{}, err
	}
	ok := true
	for _, c := range t.If {
		if !s.holds(c) {
			ok = false
			break
		}
	}
	ops := t.Then
	if !ok {
		ops = t.Else
	}
	for _, op := range ops {
		if op.Type == kv.OpPut && op.Lease != 0 {
			if _, found := s.mu.leases[op.Lease]; !found {
				return kv.TxnResponse{}, fmt.Errorf("%w: %d", kv.ErrLeaseNotFound, op.Lease)
			}
		}
	}
	resp := kv.TxnResponse{Succeeded: ok, Results: make([]kv.OpResult, len(ops))}
	rev := s.mu.rev + 1
	var events []kv.Event
	for i, op := range ops {
		switch op.Type {
		case kv.OpGet:
			resp.Results[i] = s.get(op)
		case kv.OpPut:
			events = append(events, s.put(op, rev))
		case kv.OpDelete:
			evs := s.deleteRange(op.Key, op.End, rev)
			resp.Results[i].Deleted = int64(len(evs))
			events = append(events, evs...)
		}
	}
	if len(events) > 0 {
		s.mu.rev = rev
		s.publish(events)
	}
	resp.Revision = s.mu.rev
	return resp, nil
}

func (s *Server) holds(c kv.Cmp) bool {
	if c.End == "" {
		return c.Holds(s.mu.keys[c.Key])
	}
	any := false
	for _, k := range s.keysIn(c.Key, c.End) {
		any = true
		if !c.Holds(s.mu.keys[k]) {
			return false
		}
	}
	return any || c.Holds(kv.KeyValue{})
}

// keysIn returns the sorted keys in [start, end) (end "" = start alone).
func (s *Server) keysIn(start, end string) []string {
	if end == "" {
		if _, ok := s.mu.keys[start]; ok {
			return []string{start}
		}
		return nil
	}
	i := sort.SearchStrings(s.mu.sorted, start)
	j := i
	for j < len(s.mu.sorted) && kv.InRange(s.mu.sorted[j], start, end) {
		j++
	}
	return s.mu.sorted[i:j]
}

func (s *Server) get(op kv.Op) kv.OpResult {
	keys := s.keysIn(op.Key, op.End)
	var r kv.OpResult
	if op.Limit > 0 && int64(len(keys)) > op.Limit {
		keys, r.More = keys[:op.Limit], true
	}
	r.KVs = make([]kv.KeyValue, 0, len(keys))
	for _, k := range keys {
		v := s.mu.keys[k]
		if op.KeysOnly {
			v.Value = nil
		} else {
			v.Value = append([]byte(nil), v.Value...)
		}
		r.KVs = append(r.KVs, v)
	}
	return r
}

func (s *Server) put(op kv.Op, rev int64) kv.Event {
	old, exists := s.mu.keys[op.Key]
	nv := kv.KeyValue{
		Key: op.Key, Value: append([]byte(nil), op.Value...),
		CreateRevision: rev, ModRevision: rev, Version: 1, Lease: op.Lease,
	}
	if exists {
		nv.CreateRevision, nv.Version = old.CreateRevision, old.Version+1
		if l := s.mu.leases[old.Lease]; l != nil {
			delete(l.keys, op.Key)
		}
	} else {
		i := sort.SearchStrings(s.mu.sorted, op.Key)
		s.mu.sorted = append(s.mu.sorted, "")
		copy(s.mu.sorted[i+1:], s.mu.sorted[i:])
		s.mu.sorted[i] = op.Key
	}
	if l := s.mu.leases[op.Lease]; l != nil {
		l.keys[op.Key] = struct{}{}
	}
	s.mu.keys[op.Key] = nv
	return kv.Event{Type: kv.EventPut, KV: nv}
}

func (s *Server) deleteRange(start, end string, rev int64) []kv.Event {
	keys := append([]string(nil), s.keysIn(start, end)...)
	events := make([]kv.Event, 0, len(keys))
	for _, k := range keys {
		old := s.mu.keys[k]
		if l := s.mu.leases[old.Lease]; l != nil {
			delete(l.keys, k)
		}
		delete(s.mu.keys, k)
		i := sort.SearchStrings(s.mu.sorted, k)
		s.mu.sorted = append(s.mu.sorted[:i], s.mu.sorted[i+1:]...)
		events = append(events, kv.Event{Type: kv.EventDelete, KV: kv.KeyValue{Key: k, ModRevision: rev}})
	}
	return events
}

// publish appends events (all of one revision) to the history and hands
// them to matching watchers.
func (s *Server) publish(events []kv.Event) {
	s.mu.history = append(s.mu.history, events...)
	// Trim in bulk, back to HistoryEvents once twice as many are kept, so
	// a commit costs O(1) amortized.
	if over := len(s.mu.history) - s.cfg.HistoryEvents; over > s.cfg.HistoryEvents {
		// Drop whole revisions only.
		cut := s.mu.history[over-1].KV.ModRevision
		for over < len(s.mu.history) && s.mu.history[over].KV.ModRevision == cut {
			over++
		}
		s.mu.history = append([]kv.Event(nil), s.mu.history[over:]...)
		s.mu.compactRev = cut
	}
	for w := range s.mu.watchers {
		w.offer(events)
	}
}

// revoke deletes a lease and its keys in one revision. Caller holds s.mu.
func (s *Server) revoke(id int64) {
	l := s.mu.leases[id]
	delete(s.mu.leases, id)
	if l == nil || len(l.keys) == 0 {
		return
	}
	keys := make([]string, 0, len(l.keys))
	for k := range l.keys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	rev := s.mu.rev + 1
	var events []kv.Event
	for _, k := range keys {
		events = append(events, s.deleteRange(k, "", rev)...)
	}
	s.mu.rev = rev
	s.publish(events)
}

func (s *Server) kick() {
	select {
	case s.kickc <- struct{}{}:
	default:
	}
}

// expiryLoop revokes leases whose deadline passed.
func (s *Server) expiryLoop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		now := time.Now()
		next := now.Add(time.Hour)
		for id, l := range s.mu.leases {
			if !now.Before(l.deadline) {
				s.revoke(id)
			} else if l.deadline.Before(next) {
				next = l.deadline
			}
		}
		s.mu.Unlock()
		timer.Reset(time.Until(next))
		select {
		case <-s.stopc:
			return
		case <-s.kickc:
		case <-timer.C:
		}
	}
}

// Client is one connection to a Server; it implements kv.KV.
type Client struct {
	s  *Server
	wg sync.WaitGroup // watch goroutines

	mu struct {
		sync.Mutex
		closed   bool
		watchers map[*watcher]struct{}
	}
}

var _ kv.KV = (*Client)(nil)

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.closed
}

// Txn implements kv.KV.
func (c *Client) Txn(ctx context.Context, t kv.Txn) (kv.TxnResponse, error) {
	if c.isClosed() {
		return kv.TxnResponse{}, kv.ErrClosed
	}
	if err := c.s.begin(ctx); err != nil {
		return kv.TxnResponse{}, err
	}
	defer c.s.mu.Unlock()
	return c.s.txn(t)
}

// Grant implements kv.KV.
func (c *Client) Grant(ctx context.Context, ttl time.Duration) (int64, time.Duration, error) {
	if ttl <= 0 {
		return 0, 0, fmt.Errorf("%w: lease TTL %v", kv.ErrInvalid, ttl)
	}
	if c.isClosed() {
		return 0, 0, kv.ErrClosed
	}
	if err := c.s.begin(ctx); err != nil {
		return 0, 0, err
	}
	defer c.s.mu.Unlock()
	c.s.mu.nextLease++
	id := c.s.mu.nextLease
	c.s.mu.leases[id] = &lease{ttl: ttl, deadline: time.Now().Add(ttl), keys: map[string]struct{}{}}
	c.s.kick()
	return id, ttl, nil
}

// KeepAliveOnce implements kv.KV.
func (c *Client) KeepAliveOnce(ctx context.Context, id int64) (time.Duration, error) {
	if c.isClosed() {
		return 0, kv.ErrClosed
	}
	if err := c.s.begin(ctx); err != nil {
		return 0, err
	}
	defer c.s.mu.Unlock()
	l := c.s.mu.leases[id]
	if l == nil {
		return 0, fmt.Errorf("%w: %d", kv.ErrLeaseNotFound, id)
	}
	l.deadline = time.Now().Add(l.ttl)
	return l.ttl, nil
}

// Revoke implements kv.KV.
func (c *Client) Revoke(ctx context.Context, id int64) error {
	if c.isClosed() {
		return kv.ErrClosed
	}
	if err := c.s.begin(ctx); err != nil {
		return err
	}
	defer c.s.mu.Unlock()
	if c.s.mu.leases[id] == nil {
		return fmt.Errorf("%w: %d", kv.ErrLeaseNotFound, id)
	}
	c.s.revoke(id)
	return nil
}

// Endpoints implements kv.KV.
func (c *Client) Endpoints() []string { return []string{"memory:"} }

// Close ends the client's watches (with a final kv.ErrClosed if their
// reader is ready for it; Close never waits for a reader) and makes later
// calls fail with kv.ErrClosed. Leases granted through it stay until they
// expire.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	ws := c.mu.watchers
	c.mu.watchers = nil
	c.mu.Unlock()
	for w := range ws {
		w.abort()
	}
	c.wg.Wait()
	return nil
}
