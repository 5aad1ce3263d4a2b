package metadata

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dlog-io/dlog/internal/metadata/kv"
)

// Options configures a Store.
type Options struct {
	// Cluster names the dlog cluster; its keys live under /dlog/<Cluster>/,
	// so several clusters can share one etcd. Checked with
	// dlog.ValidateName. Default "default".
	Cluster string
	// RequestTimeout bounds every single call to the service when ctx has
	// no earlier deadline, so a call never hangs on an unreachable etcd
	// (it then fails with ErrUnavailable). Waiting calls
	// (AcquireOwnership with wait) apply it per step. Default 10 s.
	RequestTimeout time.Duration
	// WatchBufferEvents is the capacity of every watch channel. A consumer
	// that lets it fill is cut off with ErrWatchLagged. Larger tolerates
	// longer consumer stalls at the cost of memory. Default 1024.
	WatchBufferEvents int
	// Embedded configures the server Open starts for "embedded:DIR":
	// ClientURL is where it serves clients ("" = http://127.0.0.1:0, a
	// free port; fix it when other processes must connect).
	EmbeddedClientURL string
	// Logger receives warnings (session expired, ownership lost, watch
	// lagged); nil discards them.
	Logger *slog.Logger
}

// DefaultOptions returns the defaults described on Options.
func DefaultOptions() Options {
	return Options{Cluster: "default", RequestTimeout: 10 * time.Second, WatchBufferEvents: 1024}
}

// Validate checks the options after defaults were applied.
func (o Options) Validate() error {
	if _, err := newKeyspace(o.Cluster); err != nil {
		return err
	}
	if o.RequestTimeout < 0 {
		return errors.New("metadata: negative request timeout")
	}
	if o.WatchBufferEvents < 1 {
		return errors.New("metadata: watch buffer must hold at least one event")
	}
	return nil
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Cluster == "" {
		o.Cluster = d.Cluster
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = d.RequestTimeout
	}
	if o.WatchBufferEvents == 0 {
		o.WatchBufferEvents = d.WatchBufferEvents
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// KVStore is the Store over a kv.KV: the one implementation of the typed
// metadata logic, whatever the backend.
type KVStore struct {
	kv    kv.KV
	opts  Options
	ks    keyspace
	log   *slog.Logger
	owned []func() // stopped after kv on Close (an embedded server)

	// holders counts the live Ownerships of this store per absolute lock
	// key, so that a lock bound to our session but held by none of them is
	// recognised as orphaned (see AcquireOwnership).
	holders struct {
		sync.Mutex
		m map[string]int
	}

	stop      context.Context // canceled by Close: every goroutine ends
	cancel    context.CancelFunc
	wg        sync.WaitGroup // watches, session keepalives, ownership watchers
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*KVStore)(nil)

// New returns a Store over kv, which it owns (Close closes it).
func New(backend kv.KV, opts Options) (*KVStore, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ks, _ := newKeyspace(opts.Cluster)
	stop, cancel := context.WithCancel(context.Background())
	return &KVStore{
		kv: backend, opts: opts, ks: ks, stop: stop, cancel: cancel,
		log: opts.Logger.With("cluster", opts.Cluster),
	}, nil
}

// Endpoints says where the metadata service is.
func (st *KVStore) Endpoints() []string { return st.kv.Endpoints() }

// Close stops every watch, session keepalive (without revoking: the leases
// expire after their TTL) and ownership watcher, closes the client, then
// stops an embedded server the store started. Safe to call twice.
func (st *KVStore) Close() error {
	st.closeOnce.Do(func() {
		st.cancel()
		st.wg.Wait()
		st.closeErr = st.kv.Close()
		for _, f := range st.owned {
			f()
		}
	})
	return st.closeErr
}

// callCtx bounds one call by RequestTimeout.
func (st *KVStore) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if st.opts.RequestTimeout > 0 {
		return context.WithTimeout(ctx, st.opts.RequestTimeout)
	}
	return context.WithCancel(ctx)
}

func (st *KVStore) txn(ctx context.Context, t kv.Txn) (kv.TxnResponse, error) {
	if st.stop.Err() != nil {
		return kv.TxnResponse{}, ErrClosed
	}
	ctx, cancel := st.callCtx(ctx)
	defer cancel()
	return st.kv.Txn(ctx, t)
}

// read runs read-only ops at one revision.
func (st *KVStore) read(ctx context.Context, ops ...kv.Op) (kv.TxnResponse, error) {
	return st.txn(ctx, kv.Txn{Then: ops})
}

// get reads one key (relative to the root); ok is false if absent.
func (st *KVStore) get(ctx context.Context, key string) (kv.KeyValue, bool, error) {
	resp, err := st.read(ctx, kv.Get(st.ks.root+key))
	if err != nil {
		return kv.KeyValue{}, false, err
	}
	if len(resp.Results[0].KVs) == 0 {
		return kv.KeyValue{}, false, nil
	}
	return resp.Results[0].KVs[0], true, nil
}

// abs turns a root-relative key into the stored key.
func (st *KVStore) abs(key string) string { return st.ks.root + key }

// ---- sessions ----

type session struct {
	st       *KVStore
	id       int64
	ttl      time.Duration
	done     chan struct{}
	doneOnce sync.Once
	stopc    chan struct{} // closed by Close: the keepalive loop ends
	loopDone chan struct{}
	stopOnce sync.Once
}

// NewSession implements Store.
func (st *KVStore) NewSession(ctx context.Context, ttl time.Duration) (Session, error) {
	if ttl <= 0 {
		return nil, badArg("session TTL %v", ttl)
	}
	if st.stop.Err() != nil {
		return nil, ErrClosed
	}
	cctx, cancel := st.callCtx(ctx)
	defer cancel()
	granted := time.Now()
	id, got, err := st.kv.Grant(cctx, ttl)
	if err != nil {
		return nil, fmt.Errorf("new session: %w", err)
	}
	s := &session{st: st, id: id, ttl: got, done: make(chan struct{}), stopc: make(chan struct{}), loopDone: make(chan struct{})}
	st.wg.Go(func() {
		defer close(s.loopDone)
		s.keepAlive(granted)
	})
	return s, nil
}

func (s *session) ID() int64             { return s.id }
func (s *session) TTL() time.Duration    { return s.ttl }
func (s *session) Done() <-chan struct{} { return s.done }
func (s *session) expired() bool         { return isClosed(s.done) }
func (s *session) end(reason string) {
	s.doneOnce.Do(func() {
		close(s.done)
		if reason != "" {
			s.st.log.Warn("metadata session ended", "lease-id", fmt.Sprintf("%x", s.id), "reason", reason)
		}
	})
}

// keepAlive renews the lease every TTL/3. A renewal sent at time t that
// succeeds proves the lease lives until at least t+TTL on the server, so
// the session is declared gone at lastOK+TTL if no renewal succeeded by
// then: never later than the server's expiry.
func (s *session) keepAlive(lastOK time.Time) {
	interval := s.ttl / 3
	retry := max(s.ttl/20, 10*time.Millisecond)
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-s.stopc:
			return
		case <-s.st.stop.Done():
			s.end("store closed")
			return
		case <-timer.C:
		}
		deadline := lastOK.Add(s.ttl)
		sent := time.Now()
		if !sent.Before(deadline) {
			s.end("lease not renewed within its TTL")
			return
		}
		ctx, cancel := context.WithDeadline(s.st.stop, deadline)
		ttl, err := s.st.kv.KeepAliveOnce(ctx, s.id)
		cancel()
		switch {
		case err == nil:
			lastOK = sent
			if ttl > 0 && ttl != s.ttl {
				interval = ttl / 3
			}
			timer.Reset(interval)
		case errors.Is(err, kv.ErrLeaseNotFound):
			s.end("lease expired or revoked")
			return
		case s.st.stop.Err() != nil:
			s.end("store closed")
			return
		default:
			timer.Reset(retry)
		}
	}
}

// Close implements Session.
func (s *session) Close(ctx context.Context) error {
	first := false
	s.stopOnce.Do(func() {
		first = true
		close(s.stopc)
	})
	<-s.loopDone
	if !first || s.expired() {
		s.end("")
		return nil
	}
	defer s.end("")
	if s.st.stop.Err() != nil {
		return ErrClosed
	}
	cctx, cancel := s.st.callCtx(ctx)
	defer cancel()
	if err := s.st.kv.Revoke(cctx, s.id); err != nil && !errors.Is(err, kv.ErrLeaseNotFound) {
		return fmt.Errorf("close session %x: %w", s.id, err)
	}
	return nil
}

// sessionOf checks that s is a live session of this store.
func (st *KVStore) sessionOf(s Session) (*session, error) {
	ss, ok := s.(*session)
	if !ok || ss.st != st {
		return nil, badArg("session does not belong to this store")
	}
	if ss.expired() {
		return nil, fmt.Errorf("session %x: %w", ss.id, ErrSessionExpired)
	}
	return ss, nil
}

// leaseErr turns a lost lease into ErrSessionExpired (and ends the session).
func (ss *session) leaseErr(err error) error {
	if errors.Is(err, kv.ErrLeaseNotFound) {
		ss.end("lease expired or revoked")
		return fmt.Errorf("session %x: %w: %w", ss.id, ErrSessionExpired, err)
	}
	return err
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
