package metadata

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata/kv"
	"github.com/dlog-io/dlog/internal/pb/metapb"
)

// DefaultListLimit is the page size of ListLogs when limit <= 0.
const DefaultListLimit = 1000

// ---- namespaces ----

// CreateNamespace implements Store.
func (st *KVStore) CreateNamespace(ctx context.Context, ns string, info NamespaceInfo) error {
	if err := dlog.ValidateName(ns); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	if info.Created.IsZero() {
		info.Created = time.Now()
	}
	what := "namespace " + ns
	_, err := st.commit(ctx, []Op{{
		desc:   "create " + what,
		checks: []check{{kind: checkAbsent, key: rel.namespace(ns), what: what}},
		writes: []kv.Op{kv.Put(rel.namespace(ns), marshal(namespaceToPB(info)), 0)},
	}})
	return err
}

// GetNamespace implements Store.
func (st *KVStore) GetNamespace(ctx context.Context, ns string) (NamespaceInfo, Version, error) {
	if err := dlog.ValidateName(ns); err != nil {
		return NamespaceInfo{}, 0, fmt.Errorf("namespace: %w", err)
	}
	e, ok, err := st.get(ctx, rel.namespace(ns))
	if err != nil {
		return NamespaceInfo{}, 0, fmt.Errorf("get namespace %s: %w", ns, err)
	}
	if !ok {
		return NamespaceInfo{}, 0, fmt.Errorf("namespace %s: %w", ns, ErrNotFound)
	}
	var p metapb.Namespace
	if err := unmarshal(e.Key, e.Value, &p); err != nil {
		return NamespaceInfo{}, 0, err
	}
	return namespaceFromPB(&p), Version(e.ModRevision), nil
}

// DeleteNamespace implements Store. The emptiness check is a range compare
// in the deleting transaction, so a concurrent CreateLog (which checks the
// namespace exists in its own transaction) either lands first and makes
// this fail, or fails itself.
func (st *KVStore) DeleteNamespace(ctx context.Context, ns string) error {
	if err := dlog.ValidateName(ns); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	what := "namespace " + ns
	start, end := prefixRange(rel.logs(ns))
	_, err := st.commit(ctx, []Op{{
		desc: "delete " + what,
		checks: []check{
			{kind: checkPresent, key: rel.namespace(ns), what: what},
			{kind: checkEmpty, key: start, end: end, what: what},
		},
		writes: []kv.Op{kv.Delete(rel.namespace(ns))},
	}})
	return err
}

// ListNamespaces implements Store.
func (st *KVStore) ListNamespaces(ctx context.Context) ([]string, error) {
	start, end := prefixRange(st.ks.namespaces())
	resp, err := st.read(ctx, kv.Op{Type: kv.OpGet, Key: start, End: end, KeysOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	out := make([]string, 0, len(resp.Results[0].KVs))
	for _, e := range resp.Results[0].KVs {
		out = append(out, strings.TrimPrefix(e.Key, start))
	}
	return out, nil
}

// ---- logs ----

// CreateLog implements Store.
func (st *KVStore) CreateLog(ctx context.Context, ns, log string, info LogInfo) error {
	if err := checkLogNames(ns, log); err != nil {
		return err
	}
	if info.Created.IsZero() {
		info.Created = time.Now()
	}
	what := "log " + ns + "/" + log
	_, err := st.commit(ctx, []Op{{
		desc: "create " + what,
		checks: []check{
			{kind: checkPresent, key: rel.namespace(ns), what: "namespace " + ns},
			{kind: checkAbsent, key: rel.log(ns, log), what: what},
		},
		writes: []kv.Op{
			kv.Put(rel.log(ns, log), nil, 0),
			kv.Put(rel.logInfo(ns, log), marshal(logInfoToPB(info)), 0),
			kv.Put(rel.maxLSSN(ns, log), encodeInt(0), 0),
			kv.Put(rel.maxTxID(ns, log), encodeInt(-1), 0),
			kv.Put(rel.truncation(ns, log), marshal(dlsnToPB(dlog.DLSN{})), 0),
		},
	}})
	return err
}

// GetLogState implements Store: one read transaction, so every field is
// from the same revision.
func (st *KVStore) GetLogState(ctx context.Context, ns, log string) (LogState, error) {
	if err := checkLogNames(ns, log); err != nil {
		return LogState{}, err
	}
	segStart, segEnd := prefixRange(st.ks.segments(ns, log))
	resp, err := st.read(ctx,
		kv.Get(st.ks.log(ns, log)),
		kv.Get(st.ks.logInfo(ns, log)),
		kv.Get(st.ks.maxLSSN(ns, log)),
		kv.Get(st.ks.maxTxID(ns, log)),
		kv.Get(st.ks.truncation(ns, log)),
		kv.Range(segStart, segEnd, 0),
	)
	if err != nil {
		return LogState{}, fmt.Errorf("get log %s/%s: %w", ns, log, err)
	}
	r := resp.Results
	if len(r[0].KVs) == 0 {
		return LogState{}, fmt.Errorf("log %s/%s: %w", ns, log, ErrNotFound)
	}
	one := func(i int) (kv.KeyValue, error) {
		if len(r[i].KVs) == 0 {
			return kv.KeyValue{}, fmt.Errorf("%w: log %s/%s lacks a key", ErrCorrupt, ns, log)
		}
		return r[i].KVs[0], nil
	}
	state := LogState{Revision: resp.Revision}
	e, err := one(1)
	if err != nil {
		return LogState{}, err
	}
	var info metapb.Log
	if err := unmarshal(e.Key, e.Value, &info); err != nil {
		return LogState{}, err
	}
	state.Info, state.InfoVersion = logInfoFromPB(&info), Version(e.ModRevision)
	if e, err = one(2); err != nil {
		return LogState{}, err
	}
	if state.MaxLSSN, err = decodeInt(e.Key, e.Value); err != nil {
		return LogState{}, err
	}
	state.MaxLSSNVersion = Version(e.ModRevision)
	if e, err = one(3); err != nil {
		return LogState{}, err
	}
	if state.MaxTxID, err = decodeInt(e.Key, e.Value); err != nil {
		return LogState{}, err
	}
	state.MaxTxIDVersion = Version(e.ModRevision)
	if e, err = one(4); err != nil {
		return LogState{}, err
	}
	var trunc metapb.DLSN
	if err := unmarshal(e.Key, e.Value, &trunc); err != nil {
		return LogState{}, err
	}
	state.Truncation, state.TruncationVersion = dlsnFromPB(&trunc), Version(e.ModRevision)
	state.Segments = make([]Segment, 0, len(r[5].KVs))
	for _, e := range r[5].KVs {
		s, err := decodeSegment(e)
		if err != nil {
			return LogState{}, err
		}
		state.Segments = append(state.Segments, s)
	}
	return state, nil
}

func decodeSegment(e kv.KeyValue) (Segment, error) {
	var p metapb.Segment
	if err := unmarshal(e.Key, e.Value, &p); err != nil {
		return Segment{}, err
	}
	s := segmentFromPB(&p)
	s.Version = Version(e.ModRevision)
	return s, nil
}

// LogExists implements Store.
func (st *KVStore) LogExists(ctx context.Context, ns, log string) (bool, error) {
	if err := checkLogNames(ns, log); err != nil {
		return false, err
	}
	_, ok, err := st.get(ctx, rel.log(ns, log))
	if err != nil {
		return false, fmt.Errorf("log %s/%s exists: %w", ns, log, err)
	}
	return ok, nil
}

// DeleteLog implements Store.
func (st *KVStore) DeleteLog(ctx context.Context, ns, log string) error {
	if err := checkLogNames(ns, log); err != nil {
		return err
	}
	start, end := prefixRange(rel.logData(ns, log))
	_, err := st.commit(ctx, []Op{{
		desc:   "delete log " + ns + "/" + log,
		checks: []check{logPresent(ns, log)},
		writes: []kv.Op{kv.Delete(rel.log(ns, log)), kv.DeleteRange(start, end)},
	}})
	return err
}

// ListLogs implements Store.
func (st *KVStore) ListLogs(ctx context.Context, ns, prefix, after string, limit int) ([]string, bool, error) {
	if err := dlog.ValidateName(ns); err != nil {
		return nil, false, fmt.Errorf("namespace: %w", err)
	}
	if err := validateNamePrefix(prefix); err != nil {
		return nil, false, err
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	base := st.ks.logs(ns)
	start, end := prefixRange(base + prefix)
	if a := base + after + "\x00"; after != "" && a > start {
		start = a
	}
	if start >= end {
		return nil, false, nil
	}
	resp, err := st.read(ctx,
		kv.Get(st.ks.namespace(ns)),
		kv.Op{Type: kv.OpGet, Key: start, End: end, Limit: int64(limit), KeysOnly: true},
	)
	if err != nil {
		return nil, false, fmt.Errorf("list logs of %s: %w", ns, err)
	}
	if len(resp.Results[0].KVs) == 0 {
		return nil, false, fmt.Errorf("namespace %s: %w", ns, ErrNotFound)
	}
	out := make([]string, 0, len(resp.Results[1].KVs))
	for _, e := range resp.Results[1].KVs {
		out = append(out, strings.TrimPrefix(e.Key, base))
	}
	return out, resp.Results[1].More, nil
}

// WatchLog implements Store. It watches the log's data prefix, which holds
// every key of the log except its listing entry.
func (st *KVStore) WatchLog(ctx context.Context, ns, log string, fromRev int64) <-chan LogEvent {
	fail := func(err error) LogEvent { return LogEvent{Err: err} }
	if err := checkLogNames(ns, log); err != nil {
		ch := make(chan LogEvent, 1)
		ch <- fail(err)
		close(ch)
		return ch
	}
	base := st.ks.logData(ns, log)
	start, end := prefixRange(base)
	return watch(st, ctx, start, end, fromRev, func(e kv.Event) (LogEvent, bool, error) {
		return decodeLogEvent(e, strings.TrimPrefix(e.KV.Key, base))
	}, fail)
}

func decodeLogEvent(e kv.Event, rel string) (LogEvent, bool, error) {
	ev := LogEvent{Type: eventType(e), Revision: e.KV.ModRevision}
	put := ev.Type == EventPut
	if put {
		ev.Version = Version(e.KV.ModRevision)
	}
	var err error
	switch {
	case rel == relInfo:
		ev.Kind = LogKeyInfo
		if put {
			var p metapb.Log
			err = unmarshal(e.KV.Key, e.KV.Value, &p)
			ev.Info = logInfoFromPB(&p)
		}
	case rel == relMaxLSSN:
		ev.Kind = LogKeyMaxLSSN
		if put {
			ev.Value, err = decodeInt(e.KV.Key, e.KV.Value)
		}
	case rel == relMaxTxID:
		ev.Kind = LogKeyMaxTxID
		if put {
			ev.Value, err = decodeInt(e.KV.Key, e.KV.Value)
		}
	case rel == relTruncation:
		ev.Kind = LogKeyTruncation
		if put {
			var p metapb.DLSN
			err = unmarshal(e.KV.Key, e.KV.Value, &p)
			ev.Truncation = dlsnFromPB(&p)
		}
	case rel == relLock:
		ev.Kind = LogKeyOwner
		if put {
			var p metapb.Owner
			err = unmarshal(e.KV.Key, e.KV.Value, &p)
			ev.Owner = ownerFromPB(&p)
		}
	case strings.HasPrefix(rel, relSegments):
		ev.Kind = LogKeySegment
		lssn, ok := parseNum(strings.TrimPrefix(rel, relSegments))
		if !ok {
			return ev, false, fmt.Errorf("%w: unexpected key %q", ErrCorrupt, e.KV.Key)
		}
		ev.Segment.LSSN = lssn
		if put {
			ev.Segment, err = decodeSegment(e.KV)
		}
	case strings.HasPrefix(rel, relSubscriptions):
		ev.Kind = LogKeySubscription
		ev.SubscriptionName = strings.TrimPrefix(rel, relSubscriptions)
		if put {
			var p metapb.Subscription
			err = unmarshal(e.KV.Key, e.KV.Value, &p)
			ev.Subscription = subscriptionFromPB(&p, ev.Version)
		}
	default:
		return ev, false, nil // a key of a later layout version
	}
	return ev, err == nil, err
}

// ---- subscriptions ----

func checkSubNames(ns, log, name string) error {
	if err := checkLogNames(ns, log); err != nil {
		return err
	}
	if err := dlog.ValidateName(name); err != nil {
		return fmt.Errorf("subscription: %w", err)
	}
	return nil
}

// GetSubscription implements Store.
func (st *KVStore) GetSubscription(ctx context.Context, ns, log, name string) (Subscription, error) {
	if err := checkSubNames(ns, log, name); err != nil {
		return Subscription{}, err
	}
	e, ok, err := st.get(ctx, rel.subscription(ns, log, name))
	if err != nil {
		return Subscription{}, fmt.Errorf("get subscription %s of %s/%s: %w", name, ns, log, err)
	}
	if !ok {
		return Subscription{}, fmt.Errorf("subscription %s of %s/%s: %w", name, ns, log, ErrNotFound)
	}
	var p metapb.Subscription
	if err := unmarshal(e.Key, e.Value, &p); err != nil {
		return Subscription{}, err
	}
	return subscriptionFromPB(&p, Version(e.ModRevision)), nil
}

// CommitSubscription implements Store: read, check the direction, CAS;
// repeated while concurrent commits move the position under it.
func (st *KVStore) CommitSubscription(ctx context.Context, ns, log, name string, pos dlog.DLSN, reset bool) error {
	if err := checkSubNames(ns, log, name); err != nil {
		return err
	}
	for {
		cur, err := st.GetSubscription(ctx, ns, log, name)
		switch {
		case errors.Is(err, ErrNotFound):
			cur = Subscription{}
		case err != nil:
			return err
		case !reset && pos.Compare(cur.Position) < 0:
			return fmt.Errorf("subscription %s of %s/%s at %v, asked %v: %w", name, ns, log, cur.Position, pos, ErrBackwards)
		}
		_, err = st.commitOne(ctx, SetSubscription(ns, log, name, pos, cur.Version))
		if err == nil || !isCheckFailure(err) {
			return err
		}
		if errors.Is(err, ErrNotFound) && !errors.Is(err, ErrBadVersion) {
			return err // the log is gone
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
		}
	}
}

// ListSubscriptions implements Store.
func (st *KVStore) ListSubscriptions(ctx context.Context, ns, log string) (map[string]Subscription, error) {
	if err := checkLogNames(ns, log); err != nil {
		return nil, err
	}
	base := st.ks.subscriptions(ns, log)
	start, end := prefixRange(base)
	resp, err := st.read(ctx, kv.Get(st.ks.log(ns, log)), kv.Range(start, end, 0))
	if err != nil {
		return nil, fmt.Errorf("list subscriptions of %s/%s: %w", ns, log, err)
	}
	if len(resp.Results[0].KVs) == 0 {
		return nil, fmt.Errorf("log %s/%s: %w", ns, log, ErrNotFound)
	}
	out := make(map[string]Subscription, len(resp.Results[1].KVs))
	for _, e := range resp.Results[1].KVs {
		var p metapb.Subscription
		if err := unmarshal(e.Key, e.Value, &p); err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(e.Key, base)] = subscriptionFromPB(&p, Version(e.ModRevision))
	}
	return out, nil
}

// DeleteSubscription implements Store.
func (st *KVStore) DeleteSubscription(ctx context.Context, ns, log, name string) error {
	if err := checkSubNames(ns, log, name); err != nil {
		return err
	}
	what := fmt.Sprintf("subscription %s of %s/%s", name, ns, log)
	key := rel.subscription(ns, log, name)
	_, err := st.commit(ctx, []Op{{
		desc:   "delete " + what,
		checks: []check{{kind: checkPresent, key: key, what: what}},
		writes: []kv.Op{kv.Delete(key)},
	}})
	return err
}
