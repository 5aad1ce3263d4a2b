package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
	"github.com/dlog-io/dlog/internal/ledger"
	"github.com/dlog-io/dlog/namespace"
)

// An agent is a writer process of the embedded-library deployment: it
// embeds the dlog library (package namespace), owns the logs it is asked
// to write, and serves the harness's operations over a small HTTP/JSON
// API. To the harness an agent is what a write proxy is to a client: the
// owner of a log, a process that can be killed, paused and cut off, while
// the history is recorded in the harness alone.
//
// Every writer an agent opens is a new writer epoch with its own owner id
// "<agent>.p<pid>.w<n>", which is also the WriterID of the segments it
// creates, so the checker can tell which epoch wrote what.

// AgentConfig configures RunAgent.
type AgentConfig struct {
	// Name is the agent's process name (e.g. "agent-0"): the prefix of its
	// writer epochs.
	Name string
	// ListenAddr is the HTTP address of the harness API. Default
	// 127.0.0.1:0.
	ListenAddr string
	// MetadataURL is the metadata service (etcd endpoints, through the
	// agent's own fault links).
	MetadataURL string
	// Cluster and Namespace name the dlog cluster and namespace.
	Cluster, Namespace string
	// BookieRoutes maps a bookie id to the address this agent dials for it
	// (its own fault link); bookies not listed are dialled at their
	// registered address.
	BookieRoutes map[string]string
	// EnsembleSize, WriteQuorum and AckQuorum are the replication of new
	// segments.
	EnsembleSize, WriteQuorum, AckQuorum int
	// SegmentRollBytes rolls segments at this size (0: default).
	SegmentRollBytes int64
	// SessionTTL is the writer lock's lease.
	SessionTTL time.Duration
	// GCInterval runs the segment collector this often (0: default).
	GCInterval time.Duration
	// AddTimeout bounds one add to one bookie (0: default).
	AddTimeout time.Duration
	// Logger receives the library's logs; nil discards.
	Logger *slog.Logger
	// Ready is called with the HTTP address once the agent serves.
	Ready func(addr string)
}

// Owner API messages.
type (
	agentWriteReq struct {
		Log   string `json:"log"`
		Value string `json:"value"`
		TxID  int64  `json:"txid"`
		Pad   int    `json:"pad,omitempty"`
	}
	agentTruncateReq struct {
		Log  string    `json:"log"`
		DLSN dlog.DLSN `json:"dlsn"`
	}
	agentLogReq struct {
		Log string `json:"log"`
	}
	agentResp struct {
		DLSN  dlog.DLSN  `json:"dlsn,omitzero"`
		Epoch string     `json:"epoch,omitempty"`
		Owner string     `json:"owner,omitempty"`
		Err   *WireError `json:"error,omitempty"`
	}
)

// WireError is an error that crossed the agent API: its history class,
// whether it is definite, its text and, for "owned", the owner's id. It
// matches the dlog sentinel of its class (errors.Is), so
// history.ErrorClass and dlog.IsDefinite classify it as on the agent.
type WireError struct {
	Class    string `json:"class"`
	Definite bool   `json:"definite"`
	Msg      string `json:"msg"`
	OwnerID  string `json:"owner_id,omitempty"`
}

func (e *WireError) Error() string { return e.Msg }

// Is maps the class back to its sentinel.
func (e *WireError) Is(target error) bool {
	if !e.Definite {
		switch e.Class {
		case history.ClassFenced:
			return target == dlog.ErrFenced
		case history.ClassUnavailable:
			return target == dlog.ErrUnavailable
		case history.ClassCorrupt:
			return target == dlog.ErrCorrupt
		case history.ClassDeadline:
			return target == context.DeadlineExceeded
		case history.ClassCanceled:
			return target == context.Canceled
		case history.ClassIndeterminate:
			return target == dlog.ErrIndeterminate
		}
		return false // "unknown": indeterminate all the same
	}
	if s, ok := definiteSentinels[e.Class]; ok {
		return target == s
	}
	return false
}

// As makes an "owned" error a *dlog.OwnedError.
func (e *WireError) As(target any) bool {
	if p, ok := target.(**dlog.OwnedError); ok && e.Definite && e.Class == history.ClassOwned {
		*p = &dlog.OwnedError{OwnerID: e.OwnerID}
		return true
	}
	return false
}

var definiteSentinels = map[string]error{
	"invalid-name": dlog.ErrInvalidName, "invalid-argument": dlog.ErrInvalidArgument,
	"record-too-large": dlog.ErrRecordTooLarge, "txid-out-of-order": dlog.ErrTxIDOutOfOrder,
	"log-not-found": dlog.ErrLogNotFound, "log-exists": dlog.ErrLogExists,
	"namespace-not-found": dlog.ErrNamespaceNotFound, "end-of-stream": dlog.ErrEndOfStream,
	"over-capacity": dlog.ErrOverCapacity, "writer-active": dlog.ErrWriterActive,
	"closed": dlog.ErrClosed, "truncated": dlog.ErrTruncated, "not-found": dlog.ErrNotFound,
}

// toWire classifies err for the agent API.
func toWire(err error) *WireError {
	if err == nil {
		return nil
	}
	w := &WireError{Class: history.ErrorClass(err), Definite: dlog.IsDefinite(err), Msg: err.Error()}
	var owned *dlog.OwnedError
	if errors.As(err, &owned) {
		w.OwnerID = owned.OwnerID
	}
	return w
}

// agentAcquireTimeout bounds one takeover (lock, recovery of the previous
// owner's segments, first segment).
const agentAcquireTimeout = 30 * time.Second

type agentWriter struct {
	mu    sync.Mutex // serialises opening and replacing the writer
	w     *namespace.Writer
	epoch string
}

type agent struct {
	cfg    AgentConfig
	ns     *namespace.Namespace
	log    *slog.Logger
	seq    atomic.Int64
	addr   string
	closed atomic.Bool
	mu     struct {
		sync.Mutex
		logs map[string]*agentWriter
	}
	bg sync.WaitGroup // closes of replaced writers
}

// RunAgent runs an agent until ctx ends, then closes its writers (sealing
// their segments) and returns.
func RunAgent(ctx context.Context, cfg AgentConfig) error {
	if cfg.Name == "" || cfg.MetadataURL == "" {
		return errors.New("verify: agent needs a name and a metadata URL")
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	nc := namespace.DefaultConfig(cfg.MetadataURL)
	nc.Cluster = cfg.Cluster
	nc.Namespace = cfg.Namespace
	nc.Logger = logger
	nc.OwnerID = cfg.Name
	if cfg.EnsembleSize > 0 {
		nc.EnsembleSize, nc.WriteQuorum, nc.AckQuorum = cfg.EnsembleSize, cfg.WriteQuorum, cfg.AckQuorum
	}
	if cfg.SegmentRollBytes > 0 {
		nc.SegmentRollBytes = cfg.SegmentRollBytes
	}
	if cfg.SessionTTL > 0 {
		nc.SessionTTL = cfg.SessionTTL
	}
	if cfg.GCInterval > 0 {
		nc.GCInterval = cfg.GCInterval
	}
	lc := ledger.DefaultConfig()
	lc.Logger = logger
	if cfg.AddTimeout > 0 {
		lc.AddTimeout = cfg.AddTimeout
	}
	routes := cfg.BookieRoutes
	lc.ResolveAddress = func(id, registered string) string {
		if a, ok := routes[id]; ok {
			return a
		}
		return registered
	}
	nc.LedgerConfig = &lc
	ns, err := namespace.Open(ctx, nc)
	if err != nil {
		return fmt.Errorf("agent %s: open namespace: %w", cfg.Name, err)
	}
	a := &agent{cfg: cfg, ns: ns, log: logger}
	a.mu.logs = make(map[string]*agentWriter)
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		ns.Close()
		return err
	}
	a.addr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /write", a.handleWrite)
	mux.HandleFunc("POST /truncate", a.handleTruncate)
	mux.HandleFunc("POST /close", a.handleClose)
	mux.HandleFunc("POST /acquire", a.handleAcquire)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if cfg.Ready != nil {
		cfg.Ready(a.addr)
	}
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	a.closed.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	a.closeAll(sctx)
	a.bg.Wait()
	if cerr := ns.Close(); err == nil || errors.Is(err, http.ErrServerClosed) {
		err = cerr
	}
	return err
}

func (a *agent) slot(log string) *agentWriter {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.mu.logs[log]
	if !ok {
		s = &agentWriter{}
		a.mu.logs[log] = s
	}
	return s
}

// writer returns the log's live writer, opening one (a new epoch) if there
// is none or the last one failed for good.
func (a *agent) writer(ctx context.Context, log string) (*namespace.Writer, string, error) {
	s := a.slot(log)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil && s.w.Err() == nil {
		return s.w, s.epoch, nil
	}
	if s.w != nil {
		a.retire(s.w)
		s.w = nil
	}
	if a.closed.Load() {
		return nil, "", fmt.Errorf("agent %s: %w", a.cfg.Name, dlog.ErrClosed)
	}
	epoch := fmt.Sprintf("%s.p%d.w%d", a.cfg.Name, os.Getpid(), a.seq.Add(1))
	// A takeover runs on the agent's own deadline, not the caller's: like
	// a proxy, an owner must not give up an acquisition half way because
	// one client stopped waiting (an acquisition whose lock write times out
	// may have taken the lock; see docs/verification.md, findings).
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), agentAcquireTimeout)
	defer cancel()
	w, err := a.ns.OpenWriter(octx, log, namespace.WriterOptions{OwnerID: epoch, OwnerAddress: a.addr})
	if err != nil {
		return nil, epoch, err
	}
	s.w, s.epoch = w, epoch
	return w, epoch, nil
}

// drop forgets w if it is still the log's writer and closes it.
func (a *agent) drop(log string, w *namespace.Writer) {
	s := a.slot(log)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == w {
		s.w = nil
		a.retire(w)
	}
}

func (a *agent) retire(w *namespace.Writer) {
	a.bg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
}

func (a *agent) closeAll(ctx context.Context) {
	a.mu.Lock()
	slots := make([]*agentWriter, 0, len(a.mu.logs))
	for _, s := range a.mu.logs {
		slots = append(slots, s)
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range slots {
		wg.Go(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.w != nil {
				_ = s.w.Close(ctx)
				s.w = nil
			}
		})
	}
	wg.Wait()
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, resp agentResp) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func (a *agent) handleWrite(w http.ResponseWriter, r *http.Request) {
	var req agentWriteReq
	if !decode(w, r, &req) {
		return
	}
	ctx := r.Context()
	wr, epoch, err := a.writer(ctx, req.Log)
	resp := agentResp{Epoch: epoch, Owner: a.cfg.Name}
	if err != nil {
		resp.Err = toWire(err)
		reply(w, resp)
		return
	}
	d, err := wr.Write(ctx, dlog.Record{TxID: req.TxID, Payload: Payload(req.Value, req.Pad)})
	if err != nil {
		if wr.Err() != nil {
			a.drop(req.Log, wr)
		}
		resp.Err = toWire(err)
	} else {
		resp.DLSN = d
	}
	reply(w, resp)
}

func (a *agent) handleTruncate(w http.ResponseWriter, r *http.Request) {
	var req agentTruncateReq
	if !decode(w, r, &req) {
		return
	}
	wr, epoch, err := a.writer(r.Context(), req.Log)
	resp := agentResp{Epoch: epoch, Owner: a.cfg.Name}
	if err == nil {
		if err = wr.Truncate(r.Context(), req.DLSN); err != nil && wr.Err() != nil {
			a.drop(req.Log, wr)
		}
	}
	resp.Err = toWire(err)
	reply(w, resp)
}

// handleClose closes the log's writer, sealing its segment.
func (a *agent) handleClose(w http.ResponseWriter, r *http.Request) {
	var req agentLogReq
	if !decode(w, r, &req) {
		return
	}
	s := a.slot(req.Log)
	s.mu.Lock()
	wr, epoch := s.w, s.epoch
	s.w = nil
	s.mu.Unlock()
	resp := agentResp{Epoch: epoch, Owner: a.cfg.Name}
	if wr != nil {
		resp.Err = toWire(wr.Close(r.Context()))
	}
	reply(w, resp)
}

// handleAcquire opens the log's writer (a takeover, recovering the
// previous owner's segment) without writing anything.
func (a *agent) handleAcquire(w http.ResponseWriter, r *http.Request) {
	var req agentLogReq
	if !decode(w, r, &req) {
		return
	}
	_, epoch, err := a.writer(r.Context(), req.Log)
	reply(w, agentResp{Epoch: epoch, Owner: a.cfg.Name, Err: toWire(err)})
}
