package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/api/dlogpb/dlogpbconnect"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/obs"
	"github.com/dlog-io/dlog/internal/proxy/status"
)

// Server is a running proxy: the API listener, its registration in
// metadata, the logs it owns, its tail caches and (optionally) the
// operator HTTP endpoints. Start it with Start; Close stops it.
type Server struct {
	cfg       Config
	id        string
	advertise string
	log       *slog.Logger
	reg       *prometheus.Registry
	metrics   *metrics

	store   metadata.Store
	closeMD func() error // closes a store Start opened
	ledgers *ledger.Client

	ln      net.Listener
	httpSrv *http.Server
	obsSrv  *obs.Server

	bg       context.Context // request base context; ended by Close
	bgCancel context.CancelFunc
	wg       sync.WaitGroup // every goroutine the server starts

	accepting atomic.Bool
	readers   atomic.Int64

	recLim, byteLim *rate.Limiter // proxy-wide; nil: unlimited

	owners owners
	nss    namespaces
	caches caches

	regMu struct {
		sync.Mutex
		sess       metadata.Session
		registered bool
	}
	closeOnce sync.Once
	closeErr  error
}

// Start opens the metadata store (unless Config.Store), the ledger client
// and the default namespace, listens, registers the proxy in metadata and
// serves until Close. Errors: configuration errors (dlog.ErrInvalidArgument,
// dlog.ErrInvalidName), listen errors, metadata errors.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, log: cfg.Logger, reg: cfg.Registry}
	if s.reg == nil {
		s.reg = obs.NewRegistry()
	}
	s.metrics = newMetrics(s.reg)
	s.accepting.Store(cfg.AcceptNewLogs)
	s.owners.streams = make(map[logKey]*stream)
	s.owners.failures = make(map[logKey]*failureRecord)
	s.nss.byName = make(map[string]*nsEntry)
	s.caches.byKey = make(map[logKey]*tailCache)
	if r := cfg.ProxyRecordsPerSecond; r > 0 {
		s.recLim = rate.NewLimiter(rate.Limit(r), max(int(r), cfg.MaxBulkRecords))
	}
	if r := cfg.ProxyBytesPerSecond; r > 0 {
		s.byteLim = rate.NewLimiter(rate.Limit(r), max(int(r), cfg.MaxMessageBytes))
	}
	s.bg, s.bgCancel = context.WithCancel(context.Background())
	var cleanup []func()
	fail := func(err error) (*Server, error) {
		s.bgCancel()
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		return nil, err
	}

	s.store = cfg.Store
	if s.store == nil {
		opts := metadata.DefaultOptions()
		opts.Cluster = cfg.Cluster
		opts.Logger = cfg.Logger
		st, err := metadata.Open(ctx, cfg.MetadataURL, opts)
		if err != nil {
			return fail(fmt.Errorf("proxy: metadata: %w", err))
		}
		s.store, s.closeMD = st, st.Close
		cleanup = append(cleanup, func() { st.Close() })
	}
	lcfg := ledger.DefaultConfig()
	// Tailing readers see a record once the LAC passes it: an idle
	// writer's ledger announces it this soon (as the namespace's own
	// default does).
	lcfg.ExplicitLACDelay = time.Millisecond
	if cfg.Ledger != nil {
		lcfg = *cfg.Ledger
	}
	if lcfg.Logger == nil {
		lcfg.Logger = cfg.Logger
	}
	lcfg.Registerer = s.reg
	if need := cfg.MaxRecordBytes + 4096; lcfg.MaxEntryBytes < need {
		lcfg.MaxEntryBytes = need
	}
	lc, err := ledger.New(ctx, s.store, lcfg)
	if err != nil {
		return fail(fmt.Errorf("proxy: ledger client: %w", err))
	}
	s.ledgers = lc
	cleanup = append(cleanup, func() { lc.Close() })

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fail(fmt.Errorf("proxy: listen %s: %w", cfg.ListenAddr, err))
	}
	s.ln = ln
	cleanup = append(cleanup, func() { ln.Close() })
	s.advertise = cfg.AdvertiseAddr
	if s.advertise == "" {
		s.advertise = ln.Addr().String()
	}
	s.id = cfg.ID
	if s.id == "" {
		s.id = "proxy-" + strings.NewReplacer(":", "-", "[", "", "]", "").Replace(s.advertise)
	}
	if err := metadata.ValidateID(s.id); err != nil {
		return fail(fmt.Errorf("proxy: id from advertised address: %w", err))
	}
	s.log = s.log.With("proxy", s.id)

	// The default namespace is opened now so that a bad metadata service
	// fails Start rather than the first request.
	if _, err := s.namespace(ctx, cfg.DefaultNamespace); err != nil {
		return fail(err)
	}
	cleanup = append(cleanup, func() { s.closeNamespaces() })

	if cfg.HTTPAddr != "" {
		o, err := obs.NewServer(obs.ServerConfig{Addr: cfg.HTTPAddr, Registry: s.reg})
		if err != nil {
			return fail(err)
		}
		o.AddCheck("proxy", s.Ready)
		s.obsSrv = o
	}
	if err := s.registerAtStart(ctx); err != nil {
		if s.obsSrv != nil {
			s.obsSrv.Close()
		}
		return fail(err)
	}

	s.httpSrv = s.newHTTPServer()
	s.wg.Go(func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("api server stopped", "err", err)
		}
	})
	if s.obsSrv != nil {
		s.obsSrv.Serve()
	}
	s.wg.Go(s.keepRegistered)
	s.wg.Go(s.cacheJanitor)
	s.log.Info("proxy serving", "listen", ln.Addr().String(), "advertise", s.advertise, "http", s.HTTPAddr())
	return s, nil
}

// newHTTPServer builds the API server: the Connect handlers of both
// services (gRPC, gRPC-Web and Connect over HTTP/1.1 and cleartext
// HTTP/2), request bodies bounded before they are read.
func (s *Server) newHTTPServer() *http.Server {
	opts := []connect.HandlerOption{
		connect.WithInterceptors(interceptor{s}),
		connect.WithReadMaxBytes(s.cfg.MaxMessageBytes),
		// Compressing small answers costs more CPU than it saves bytes
		// (gzip's per-message setup dominated profiles): only large read
		// batches are compressed, for clients that accept it.
		connect.WithCompressMinBytes(64 << 10),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			s.log.Error("handler panic", "procedure", spec.Procedure, "panic", fmt.Sprint(p))
			return status.ToConnect(fmt.Errorf("%w: internal error in %s", dlog.ErrIndeterminate, spec.Procedure))
		}),
	}
	mux := http.NewServeMux()
	mux.Handle(dlogpbconnect.NewLogServiceHandler(logService{s}, opts...))
	mux.Handle(dlogpbconnect.NewAdminServiceHandler(adminService{s}, opts...))
	// A body larger than a message plus framing is cut off while it is
	// read, so an abusive client cannot make the proxy read it all.
	h := http.MaxBytesHandler(mux, int64(s.cfg.MaxMessageBytes)+64<<10)
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	return &http.Server{
		Handler:           h,
		Protocols:         &protos,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: s.cfg.MaxConcurrentStreams, MaxReadFrameSize: 1 << 20},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.bg },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
}

// interceptor maps every handler error through the status table (one
// place) and records RPC metrics.
type interceptor struct{ s *Server }

func method(procedure string) string {
	if i := strings.LastIndexByte(procedure, '/'); i >= 0 {
		return procedure[i+1:]
	}
	return procedure
}

func (i interceptor) done(ctx context.Context, procedure string, start time.Time, err error) error {
	m := method(procedure)
	d := status.Detail(err)
	code := dlogpb.Code_CODE_OK
	if d != nil {
		code = d.Code
	}
	i.s.metrics.rpcs.WithLabelValues(m, code.String()).Inc()
	i.s.metrics.rpcLatency.WithLabelValues(m).Observe(time.Since(start).Seconds())
	if err != nil {
		if code == dlogpb.Code_CODE_REDIRECT {
			i.s.metrics.redirects.Inc()
		}
		if code == dlogpb.Code_CODE_INTERNAL && ctx.Err() == nil {
			i.s.log.Warn("request failed", "method", m, "err", err)
		}
	}
	return status.ToConnect(err)
}

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		start := time.Now()
		resp, err := next(ctx, req)
		return resp, i.done(ctx, req.Spec().Procedure, start, err)
	}
}

func (i interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		start := time.Now()
		return i.done(ctx, conn.Spec().Procedure, start, next(ctx, conn))
	}
}

// info is the proxy's registration.
func (s *Server) info() metadata.ProxyInfo {
	return metadata.ProxyInfo{ID: s.id, Address: s.advertise, HTTPAddress: s.HTTPAddr(), Region: s.cfg.Region, AcceptNewLogs: s.accepting.Load()}
}

// registerFirst creates the registration session and registers.
func (s *Server) registerFirst(ctx context.Context) error {
	sess, err := s.store.NewSession(ctx, s.cfg.SessionTTL)
	if err != nil {
		return fmt.Errorf("proxy: registration session: %w", err)
	}
	if err := s.store.RegisterProxy(ctx, sess, s.info()); err != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		sess.Close(cctx)
		cancel()
		return fmt.Errorf("proxy: register %s: %w", s.id, err)
	}
	s.regMu.Lock()
	s.regMu.sess, s.regMu.registered = sess, true
	s.regMu.Unlock()
	return nil
}

// registerAtStart registers, waiting while the id is still held by a
// previous incarnation's lease (a proxy restarted after a crash or a kill
// -9): that lease ends within its TTL. It gives up after twice the TTL,
// when the id is held by another live proxy (a misconfiguration), or when
// ctx ends.
func (s *Server) registerAtStart(ctx context.Context) error {
	deadline := time.Now().Add(2 * s.cfg.SessionTTL)
	backoff := 100 * time.Millisecond
	for {
		err := s.registerFirst(ctx)
		if err == nil || !errors.Is(err, metadata.ErrExists) || time.Now().After(deadline) {
			return err
		}
		s.log.Warn("proxy id still registered (a previous incarnation's lease?); retrying", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		backoff = min(2*backoff, time.Second)
	}
}

// register rewrites the registration through the current session (after
// a change of AcceptNewLogs).
func (s *Server) register(ctx context.Context) error {
	s.regMu.Lock()
	sess := s.regMu.sess
	s.regMu.Unlock()
	if sess == nil {
		return fmt.Errorf("%w: proxy %s is not registered", dlog.ErrUnavailable, s.id)
	}
	return s.store.RegisterProxy(ctx, sess, s.info())
}

// keepRegistered registers again whenever the registration session ends
// (a lease lost to a long pause or a metadata outage), with backoff, until
// Close.
func (s *Server) keepRegistered() {
	backoff := 100 * time.Millisecond
	for {
		s.regMu.Lock()
		sess := s.regMu.sess
		s.regMu.Unlock()
		if sess != nil {
			select {
			case <-sess.Done():
				s.log.Warn("registration session ended; registering again")
			case <-s.bg.Done():
				return
			}
		}
		s.regMu.Lock()
		s.regMu.sess, s.regMu.registered = nil, false
		s.regMu.Unlock()
		ctx, cancel := context.WithTimeout(s.bg, s.cfg.SessionTTL)
		err := s.registerFirst(ctx)
		cancel()
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		s.log.Warn("register", "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.bg.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Ready reports nil once the proxy is registered and not shutting down.
func (s *Server) Ready(context.Context) error {
	if s.bg.Err() != nil {
		return fmt.Errorf("proxy %s: %w", s.id, dlog.ErrClosed)
	}
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if !s.regMu.registered {
		return fmt.Errorf("proxy %s not registered in metadata", s.id)
	}
	return nil
}

// ID is the proxy's id.
func (s *Server) ID() string { return s.id }

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AdvertiseAddr is the API address clients are told.
func (s *Server) AdvertiseAddr() string { return s.advertise }

// HTTPAddr is the operator endpoint's address ("" without one).
func (s *Server) HTTPAddr() string {
	if s.obsSrv == nil {
		return ""
	}
	return s.obsSrv.Addr()
}

// Registry is the proxy's metrics registry.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Close stops the proxy: it stops taking new logs, ends read streams (so
// readers resume elsewhere), lets in-flight requests finish, closes every
// owned log's writer (completing its segment and releasing its lock, so
// other proxies take over at once), removes its registration and closes
// what it opened. Safe to call twice.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	var errs []error
	s.owners.mu.Lock()
	s.owners.closing = true
	s.owners.mu.Unlock()
	// Read streams and takeovers end; in-flight writes wait for their
	// writers, which are closed below.
	s.bgCancel()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CloseTimeout)
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		s.log.Warn("api server shutdown", "err", err)
		s.httpSrv.Close()
	}
	cancel()
	s.closeStreams()
	s.closeCaches()
	s.wg.Wait() // keepRegistered has returned: the session is final
	s.regMu.Lock()
	sess := s.regMu.sess
	s.regMu.sess, s.regMu.registered = nil, false
	s.regMu.Unlock()
	if sess != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := sess.Close(ctx); err != nil {
			s.log.Warn("remove registration", "err", err)
		}
		cancel()
	}
	if s.obsSrv != nil {
		errs = append(errs, s.obsSrv.Close())
	}
	errs = append(errs, s.closeNamespaces())
	errs = append(errs, s.ledgers.Close())
	if s.closeMD != nil {
		errs = append(errs, s.closeMD())
	}
	s.log.Info("proxy stopped")
	return errors.Join(errs...)
}
