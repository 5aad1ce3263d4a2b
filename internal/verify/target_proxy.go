package verify

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/client"
	"github.com/dlog-io/dlog/internal/history"
)

// proxyTarget writes, truncates and reads through the public client
// package and the dlog proxies: the service tier is the owner. The client
// routes (ownership cache, consistent hashing, redirects) and, with
// idempotence, retries indeterminate writes under a producer id and
// sequence, which the proxies deduplicate.
type proxyTarget struct {
	c          *Cluster
	cli        *client.Client
	idempotent bool
	mu         struct {
		sync.Mutex
		pinned map[string]*client.Client // per proxy: for nemesis takeovers
	}
}

func newProxyTarget(ctx context.Context, c *Cluster, opTimeout time.Duration, idempotent bool) (*proxyTarget, error) {
	cfg := client.DefaultConfig(c.proxyAddrs()...)
	cfg.Namespace = namespaceName
	cfg.Idempotence = idempotent
	cfg.AttemptTimeout = min(opTimeout, 3*time.Second)
	cfg.Blackout = 2 * time.Second
	cfg.DiscoveryInterval = 5 * time.Second
	cli, err := client.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t := &proxyTarget{c: c, cli: cli, idempotent: idempotent}
	t.mu.pinned = make(map[string]*client.Client)
	return t, nil
}

// proxyAddrs returns the proxies' advertised (front) addresses.
func (c *Cluster) proxyAddrs() []string {
	var out []string
	for _, o := range c.Owners {
		if o.Front != nil {
			out = append(out, o.Front.Addr())
		}
	}
	return out
}

func (t *proxyTarget) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.mu.pinned {
		p.Close()
	}
	t.cli.Close()
}

func (t *proxyTarget) Write(ctx context.Context, log, value string, txid int64, pad int) (WriteResult, error) {
	res, err := t.cli.Write(ctx, log, dlog.Record{TxID: txid, Payload: Payload(value, pad)})
	if err != nil {
		return WriteResult{}, err
	}
	owner := t.ownerName(res.Owner)
	return WriteResult{DLSN: res.DLSN, Epoch: proxyEpoch(owner, res.DLSN.LSSN), Owner: owner}, nil
}

// proxyEpoch names the writer epoch of a proxy that acknowledged a write
// in segment lssn: every takeover, also a proxy's re-acquisition of a log
// it owned before, starts a new segment, so the proxy with the segment
// number is one ownership (a roll within an ownership starts another
// epoch of the same proxy, which the checker's rules allow: no append of
// the earlier segment is invoked after one of the later segment was
// acknowledged). owner is the proxy's id, which the
// segment's metadata records as its writer (drainLog names the segment's
// epoch the same way); "" when the proxy did not report itself.
func proxyEpoch(owner string, lssn int64) string {
	if owner == "" {
		return ""
	}
	return owner + "@" + strconv.FormatInt(lssn, 10)
}

// ownerName returns the id of the proxy whose advertised address is addr
// (the harness starts proxy-i with --id proxy-i), or addr itself when no
// proxy has it.
func (t *proxyTarget) ownerName(addr string) string {
	if addr == "" {
		return ""
	}
	for _, o := range t.c.Owners {
		if o.Front != nil && o.Front.Addr() == addr {
			return o.Name
		}
	}
	return addr
}

func (t *proxyTarget) Truncate(ctx context.Context, log string, d dlog.DLSN) (WriteResult, error) {
	_, err := t.cli.Truncate(ctx, log, d)
	return WriteResult{}, err
}

// Seal makes the owning proxy release the log (it completes its segment),
// then takes it over in the harness to recover anything left in progress.
func (t *proxyTarget) Seal(ctx context.Context, log string) error {
	if err := t.cli.Release(ctx, log); err != nil {
		return fmt.Errorf("release %s: %w", log, err)
	}
	return sealInHarness(ctx, t.c.NS, log)
}

func (t *proxyTarget) OpenReader(ctx context.Context, log string, pos history.Position) (LogReader, error) {
	var p client.Position
	switch pos.At {
	case history.AtStart:
		p = client.AtStart()
	case history.AtEnd:
		p = client.AtEnd()
	case history.AtDLSN:
		p = client.AtDLSN(pos.DLSN)
	case history.AfterDLSN:
		p = client.AtDLSN(pos.DLSN.Next())
	case history.AtTxID:
		p = client.AtTxID(pos.TxID)
	default:
		return nil, fmt.Errorf("%w: position %v", dlog.ErrInvalidArgument, pos)
	}
	return t.cli.OpenReader(ctx, log, p, client.ReadOptions{Follow: true, SkipTruncated: true})
}

// pinned returns a client that talks to proxy o only and follows no
// redirect: a heartbeat through it makes o take the log over (or says who
// owns it).
func (t *proxyTarget) pinned(ctx context.Context, o *Owner) (*client.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.mu.pinned[o.Name]; ok {
		return p, nil
	}
	cfg := client.DefaultConfig(o.Front.Addr())
	cfg.Namespace = namespaceName
	cfg.DiscoveryInterval = -1
	cfg.MaxRedirects = 0
	cfg.MaxAttempts = 1
	p, err := client.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	t.mu.pinned[o.Name] = p
	return p, nil
}

// acquire makes proxy o take log over.
func (t *proxyTarget) acquire(ctx context.Context, o *Owner, log string) error {
	p, err := t.pinned(ctx, o)
	if err != nil {
		return err
	}
	_, err = p.Heartbeat(ctx, log)
	return err
}
