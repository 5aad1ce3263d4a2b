package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/dlog-io/dlog/internal/metadata/kv"
)

// Config says how to reach etcd.
type Config struct {
	// Endpoints are client URLs of etcd members (http://host:2379). Required.
	Endpoints []string
	// DialTimeout bounds the first connection attempt; 0 means the client
	// connects in the background and calls wait for it (bounded by their
	// ctx). Default 0.
	DialTimeout time.Duration
	// KeepAliveTime and KeepAliveTimeout detect a dead connection (gRPC
	// pings): shorter finds a hung member sooner, at the cost of traffic.
	// etcd answers pings more frequent than its --grpc-keepalive-min-time
	// (default 5 s) with GOAWAY "too_many_pings" and drops the connection,
	// so KeepAliveTime must not be below that. Defaults 10 s and 3 s.
	KeepAliveTime    time.Duration
	KeepAliveTimeout time.Duration
	// Logger receives this package's messages; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns defaults for the given endpoints.
func DefaultConfig(endpoints []string) Config {
	return Config{Endpoints: endpoints, KeepAliveTime: 10 * time.Second, KeepAliveTimeout: 3 * time.Second}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if len(c.Endpoints) == 0 {
		return errors.New("etcdkv: no endpoints")
	}
	for _, e := range c.Endpoints {
		if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") && strings.Contains(e, "://") {
			return fmt.Errorf("etcdkv: endpoint %q: unsupported scheme", e)
		}
	}
	if c.DialTimeout < 0 || c.KeepAliveTime < 0 || c.KeepAliveTimeout < 0 {
		return errors.New("etcdkv: negative timeout")
	}
	return nil
}

// KV implements kv.KV over an etcd client it owns.
type KV struct {
	client *clientv3.Client
	log    *slog.Logger
	stop   context.Context // canceled by Close: ends every watch
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
}

var _ kv.KV = (*KV)(nil)

// New creates the client. Unless cfg.DialTimeout is set it does not wait
// for a connection: an unreachable cluster shows as kv.ErrUnavailable on
// the first calls.
func New(cfg Config) (*KV, error) {
	d := DefaultConfig(cfg.Endpoints)
	if cfg.KeepAliveTime == 0 {
		cfg.KeepAliveTime = d.KeepAliveTime
	}
	if cfg.KeepAliveTimeout == 0 {
		cfg.KeepAliveTimeout = d.KeepAliveTimeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    cfg.KeepAliveTime,
		DialKeepAliveTimeout: cfg.KeepAliveTimeout,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: connect %v: %w", kv.ErrUnavailable, cfg.Endpoints, err)
	}
	stop, cancel := context.WithCancel(context.Background())
	return &KV{client: c, log: cfg.Logger, stop: stop, cancel: cancel}, nil
}

// Client exposes the underlying etcd client (tests use it to compact).
func (k *KV) Client() *clientv3.Client { return k.client }

// Endpoints implements kv.KV.
func (k *KV) Endpoints() []string { return k.client.Endpoints() }

// Close implements kv.KV. Safe to call twice.
func (k *KV) Close() error {
	var err error
	k.closed.Do(func() {
		k.cancel()
		k.wg.Wait()
		err = k.client.Close()
		if errors.Is(err, context.Canceled) {
			err = nil
		}
	})
	return err
}

func (k *KV) classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if k.stop.Err() != nil {
		return fmt.Errorf("%w: %w", kv.ErrClosed, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", kv.ErrUnavailable, errors.Join(ctx.Err(), err))
	}
	return Classify(err)
}

// Classify maps an etcd client error onto the kv sentinels (see the package
// documentation).
func Classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return fmt.Errorf("%w: %w", kv.ErrUnavailable, err)
	}
	switch rpctypes.Error(err) {
	case rpctypes.ErrLeaseNotFound:
		return fmt.Errorf("%w: %w", kv.ErrLeaseNotFound, err)
	case rpctypes.ErrCompacted:
		return fmt.Errorf("%w: %w", kv.ErrCompacted, err)
	case rpctypes.ErrNoLeader, rpctypes.ErrLeaderChanged, rpctypes.ErrNotLeader, rpctypes.ErrNotCapable,
		rpctypes.ErrStopped, rpctypes.ErrTimeout, rpctypes.ErrTimeoutDueToLeaderFail,
		rpctypes.ErrTimeoutDueToConnectionLost, rpctypes.ErrTimeoutWaitAppliedIndex,
		rpctypes.ErrTooManyRequests, rpctypes.ErrUnhealthy:
		return fmt.Errorf("%w: %w", kv.ErrUnavailable, err)
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted:
			return fmt.Errorf("%w: %w", kv.ErrUnavailable, err)
		case codes.InvalidArgument:
			return fmt.Errorf("%w: %w", kv.ErrInvalid, err)
		}
	}
	return err
}

var results = [...]string{kv.Equal: "=", kv.NotEqual: "!=", kv.Greater: ">", kv.Less: "<"}

func toCmp(c kv.Cmp) clientv3.Cmp {
	var target clientv3.Cmp
	switch c.Target {
	case kv.TargetMod:
		target = clientv3.ModRevision(c.Key)
	case kv.TargetCreate:
		target = clientv3.CreateRevision(c.Key)
	case kv.TargetVersion:
		target = clientv3.Version(c.Key)
	case kv.TargetLease:
		target = clientv3.LeaseValue(c.Key)
	}
	out := clientv3.Compare(target, results[c.Result], c.Value)
	if c.End != "" {
		out = out.WithRange(c.End)
	}
	return out
}

func toOps(ops []kv.Op) []clientv3.Op {
	out := make([]clientv3.Op, 0, len(ops))
	for _, o := range ops {
		var opts []clientv3.OpOption
		switch o.Type {
		case kv.OpGet:
			if o.End != "" {
				opts = append(opts, clientv3.WithRange(o.End))
			}
			if o.Limit > 0 {
				opts = append(opts, clientv3.WithLimit(o.Limit))
			}
			if o.KeysOnly {
				opts = append(opts, clientv3.WithKeysOnly())
			}
			out = append(out, clientv3.OpGet(o.Key, opts...))
		case kv.OpPut:
			if o.Lease != 0 {
				opts = append(opts, clientv3.WithLease(clientv3.LeaseID(o.Lease)))
			}
			out = append(out, clientv3.OpPut(o.Key, string(o.Value), opts...))
		case kv.OpDelete:
			if o.End != "" {
				opts = append(opts, clientv3.WithRange(o.End))
			}
			out = append(out, clientv3.OpDelete(o.Key, opts...))
		}
	}
	return out
}

// Txn implements kv.KV.
func (k *KV) Txn(ctx context.Context, t kv.Txn) (kv.TxnResponse, error) {
	if k.stop.Err() != nil {
		return kv.TxnResponse{}, kv.ErrClosed
	}
	if err := kv.CheckTxn(t); err != nil {
		return kv.TxnResponse{}, err
	}
	cmps := make([]clientv3.Cmp, 0, len(t.If))
	for _, c := range t.If {
		cmps = append(cmps, toCmp(c))
	}
	resp, err := k.client.Txn(ctx).If(cmps...).Then(toOps(t.Then)...).Else(toOps(t.Else)...).Commit()
	if err != nil {
		return kv.TxnResponse{}, k.classify(ctx, err)
	}
	out := kv.TxnResponse{Succeeded: resp.Succeeded, Revision: resp.Header.Revision, Results: make([]kv.OpResult, len(resp.Responses))}
	for i, r := range resp.Responses {
		switch {
		case r.GetResponseRange() != nil:
			rr := r.GetResponseRange()
			out.Results[i].More = rr.More
			out.Results[i].KVs = make([]kv.KeyValue, 0, len(rr.Kvs))
			for _, e := range rr.Kvs {
				out.Results[i].KVs = append(out.Results[i].KVs, kv.KeyValue{
					Key: string(e.Key), Value: e.Value, CreateRevision: e.CreateRevision,
					ModRevision: e.ModRevision, Version: e.Version, Lease: e.Lease,
				})
			}
		case r.GetResponseDeleteRange() != nil:
			out.Results[i].Deleted = r.GetResponseDeleteRange().Deleted
		}
	}
	return out, nil
}

// Watch implements kv.KV.
func (k *KV) Watch(ctx context.Context, key, end string, fromRev int64) <-chan kv.WatchResponse {
	out := make(chan kv.WatchResponse)
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(k.stop, cancel)
	var opts []clientv3.OpOption
	if end != "" {
		opts = append(opts, clientv3.WithRange(end))
	}
	if fromRev > 0 {
		opts = append(opts, clientv3.WithRev(fromRev))
	}
	k.wg.Go(func() {
		defer close(out)
		defer stop()
		defer cancel()
		// final delivers the last response; while the KV closes it does
		// not wait for the reader (Close must not hang on an unread watch).
		final := func(err error) {
			select {
			case out <- kv.WatchResponse{Err: err}:
			case <-ctx.Done():
			case <-k.stop.Done():
				select {
				case out <- kv.WatchResponse{Err: kv.ErrClosed}:
				default:
				}
			}
		}
		if k.stop.Err() != nil {
			final(kv.ErrClosed)
			return
		}
		wch := k.client.Watch(wctx, key, opts...)
		for {
			select {
			case wr, ok := <-wch:
				switch {
				case ctx.Err() != nil:
					return
				case !ok && k.stop.Err() != nil:
					final(kv.ErrClosed)
					return
				case !ok:
					final(fmt.Errorf("%w: watch closed", kv.ErrUnavailable))
					return
				case wr.CompactRevision != 0:
					final(fmt.Errorf("%w: watch from %d, compacted at %d", kv.ErrCompacted, fromRev, wr.CompactRevision))
					return
				case wr.Err() != nil:
					final(k.classify(ctx, wr.Err()))
					return
				case len(wr.Events) == 0:
					continue
				}
				evs := make([]kv.Event, 0, len(wr.Events))
				for _, e := range wr.Events {
					ev := kv.Event{Type: kv.EventPut, KV: kv.KeyValue{
						Key: string(e.Kv.Key), Value: e.Kv.Value, CreateRevision: e.Kv.CreateRevision,
						ModRevision: e.Kv.ModRevision, Version: e.Kv.Version, Lease: e.Kv.Lease,
					}}
					if e.Type == clientv3.EventTypeDelete {
						ev.Type = kv.EventDelete
					}
					evs = append(evs, ev)
				}
				select {
				case out <- kv.WatchResponse{Events: evs}:
				case <-ctx.Done():
					return
				case <-k.stop.Done():
					final(kv.ErrClosed)
					return
				}
			case <-ctx.Done():
				return
			case <-k.stop.Done():
				final(kv.ErrClosed)
				return
			}
		}
	})
	return out
}

// Grant implements kv.KV. etcd counts TTLs in whole seconds: ttl is rounded
// up, and the server may raise it to its minimum.
func (k *KV) Grant(ctx context.Context, ttl time.Duration) (int64, time.Duration, error) {
	if ttl <= 0 {
		return 0, 0, fmt.Errorf("%w: lease TTL %v", kv.ErrInvalid, ttl)
	}
	secs := int64((ttl + time.Second - 1) / time.Second)
	resp, err := k.client.Grant(ctx, secs)
	if err != nil {
		return 0, 0, k.classify(ctx, err)
	}
	return int64(resp.ID), time.Duration(resp.TTL) * time.Second, nil
}

// KeepAliveOnce implements kv.KV.
func (k *KV) KeepAliveOnce(ctx context.Context, id int64) (time.Duration, error) {
	resp, err := k.client.KeepAliveOnce(ctx, clientv3.LeaseID(id))
	if err != nil {
		return 0, k.classify(ctx, err)
	}
	return time.Duration(resp.TTL) * time.Second, nil
}

// Revoke implements kv.KV.
func (k *KV) Revoke(ctx context.Context, id int64) error {
	_, err := k.client.Revoke(ctx, clientv3.LeaseID(id))
	return k.classify(ctx, err)
}
