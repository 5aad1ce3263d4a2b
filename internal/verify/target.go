package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/history"
	"github.com/dlog-io/dlog/namespace"
)

func zapNop() *zap.Logger { return zap.NewNop() }

// WriteResult is what an acknowledged append returns.
type WriteResult struct {
	DLSN  dlog.DLSN
	Epoch string // the writer epoch that acknowledged it
	Owner string // the owner process
}

// Target is the system under test as the workload sees it: where appends,
// truncations and reads go. Errors must classify (dlog.IsDefinite,
// history.ErrorClass) as the system reported them.
type Target interface {
	// Write appends one record with payload Payload(value, pad). On error
	// the WriteResult still carries the epoch and owner if known.
	Write(ctx context.Context, log, value string, txid int64, pad int) (WriteResult, error)
	// Truncate moves log's truncation point to d.
	Truncate(ctx context.Context, log string, d dlog.DLSN) (WriteResult, error)
	// Seal closes log's writer wherever it is, sealing its segment.
	Seal(ctx context.Context, log string) error
	// OpenReader opens a reader of log at pos.
	OpenReader(ctx context.Context, log string, pos history.Position) (LogReader, error)
}

// runTarget is a Target the runner closes.
type runTarget interface {
	Target
	close()
}

// LogReader is one reader session.
type LogReader interface {
	Next(ctx context.Context) (dlog.ReadRecord, error)
	Close() error
}

// embeddedTarget sends appends and truncations to the agent that owns the
// log (following "owned" redirects and moving on from agents that do not
// answer) and reads with the harness's own namespace.
type embeddedTarget struct {
	c    *Cluster
	http *http.Client
	mu   struct {
		sync.Mutex
		route map[string]int // log → agent index believed to own it
	}
}

func newEmbeddedTarget(c *Cluster, opTimeout time.Duration) *embeddedTarget {
	t := &embeddedTarget{c: c, http: &http.Client{
		Timeout:   opTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
	}}
	t.mu.route = make(map[string]int)
	return t
}

func (t *embeddedTarget) close() { t.http.CloseIdleConnections() }

func (t *embeddedTarget) agentFor(log string) (int, *Owner) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.mu.route[log]
	if !ok {
		i = int(hashString(log) % uint64(len(t.c.Owners)))
		t.mu.route[log] = i
	}
	return i, t.c.Owners[i]
}

// reroute records where log should go next: the owner named by an
// "owned" error, or the next agent after one that did not answer.
func (t *embeddedTarget) reroute(log string, from int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.route[log] != from {
		return // someone else moved it already
	}
	var owned *dlog.OwnedError
	if errors.As(err, &owned) {
		for i, a := range t.c.Owners {
			if a.Name == agentOfEpoch(owned.OwnerID) {
				t.mu.route[log] = i
				return
			}
		}
	}
	t.mu.route[log] = (from + 1) % len(t.c.Owners)
}

// errAgentDown: the request did not get an answer from the agent (refused,
// reset, timed out). Indeterminate: the agent may have acted on it.
var errAgentDown = errors.New("verify: agent did not answer")

func (t *embeddedTarget) call(ctx context.Context, log, path string, body any) (agentResp, int, error) {
	i, a := t.agentFor(log)
	b, err := json.Marshal(body)
	if err != nil {
		return agentResp{}, i, err
	}
	addr := a.Addr()
	if addr == "" || !a.Proc.Running() {
		err := fmt.Errorf("%w: %s is down: %w", errAgentDown, a.Name, dlog.ErrUnavailable)
		t.reroute(log, i, err)
		return agentResp{Owner: a.Name}, i, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, bytes.NewReader(b))
	if err != nil {
		return agentResp{}, i, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.http.Do(req)
	if err != nil {
		err = fmt.Errorf("%w: %s: %w", errAgentDown, a.Name, classifyTransport(ctx, err))
		t.reroute(log, i, err)
		return agentResp{Owner: a.Name}, i, err
	}
	defer resp.Body.Close()
	var out agentResp
	if resp.StatusCode != http.StatusOK {
		return agentResp{Owner: a.Name}, i, fmt.Errorf("verify: agent %s: HTTP %s", a.Name, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		err = fmt.Errorf("%w: %s: reading the answer: %w", errAgentDown, a.Name, dlog.ErrIndeterminate)
		return agentResp{Owner: a.Name}, i, err
	}
	if out.Err != nil {
		var owned *dlog.OwnedError
		if errors.As(out.Err, &owned) || errors.Is(out.Err, dlog.ErrFenced) || errors.Is(out.Err, dlog.ErrClosed) {
			t.reroute(log, i, out.Err)
		}
		return out, i, out.Err
	}
	return out, i, nil
}

// classifyTransport keeps the context's error (deadline, canceled) and
// marks everything else unavailable; both are indeterminate.
func classifyTransport(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return fmt.Errorf("%w: %v", dlog.ErrUnavailable, err)
}

func (t *embeddedTarget) Write(ctx context.Context, log, value string, txid int64, pad int) (WriteResult, error) {
	out, _, err := t.call(ctx, log, "/write", agentWriteReq{Log: log, Value: value, TxID: txid, Pad: pad})
	return WriteResult{DLSN: out.DLSN, Epoch: out.Epoch, Owner: out.Owner}, err
}

func (t *embeddedTarget) Truncate(ctx context.Context, log string, d dlog.DLSN) (WriteResult, error) {
	out, _, err := t.call(ctx, log, "/truncate", agentTruncateReq{Log: log, DLSN: d})
	return WriteResult{Epoch: out.Epoch, Owner: out.Owner}, err
}

// Seal closes the log's writer on every agent, then opens and closes a
// writer in the harness, which recovers any segment still in progress
// (an agent that died with the log) and seals the log's tail.
func (t *embeddedTarget) Seal(ctx context.Context, log string) error {
	for _, a := range t.c.Owners {
		addr := a.Addr()
		if addr == "" || !a.Proc.Running() {
			continue
		}
		b, _ := json.Marshal(agentLogReq{Log: log})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/close", bytes.NewReader(b))
		if err != nil {
			return err
		}
		if resp, err := t.http.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	return sealInHarness(ctx, t.c.NS, log)
}

// sealInHarness takes the log over in the harness (waiting for any stale
// lock to expire), which recovers every in-progress segment, and closes
// the writer at once.
// It retries (a bookie may still be registering after a restart) until
// ctx ends.
func sealInHarness(ctx context.Context, ns *namespace.Namespace, log string) error {
	for {
		w, err := ns.OpenWriter(ctx, log, namespace.WriterOptions{Wait: true, OwnerID: "harness-seal"})
		if err == nil {
			err = w.Close(ctx)
		}
		if err == nil || !pause(ctx, 500*time.Millisecond) {
			if err != nil {
				err = fmt.Errorf("seal %s: %w", log, err)
			}
			return err
		}
	}
}

func (t *embeddedTarget) OpenReader(ctx context.Context, log string, pos history.Position) (LogReader, error) {
	return openNamespaceReader(ctx, t.c.NS, log, pos)
}

func openNamespaceReader(ctx context.Context, ns *namespace.Namespace, log string, pos history.Position) (LogReader, error) {
	var p namespace.Position
	switch pos.At {
	case history.AtStart:
		p = namespace.AtStart()
	case history.AtEnd:
		p = namespace.AtEnd()
	case history.AtDLSN:
		p = namespace.AtDLSN(pos.DLSN)
	case history.AfterDLSN:
		p = namespace.AtDLSN(pos.DLSN.Next())
	case history.AtTxID:
		p = namespace.AtTxID(pos.TxID)
	default:
		return nil, fmt.Errorf("%w: position %v", dlog.ErrInvalidArgument, pos)
	}
	return ns.OpenReader(ctx, log, p, namespace.ReaderOptions{SkipTruncated: true})
}

// hashString is FNV-1a.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
