package metadata

import (
	"context"
	"fmt"
	"strings"

	"github.com/dlog-io/dlog/internal/metadata/kv"
	"github.com/dlog-io/dlog/internal/pb/metapb"
)

// register writes a lease-bound registration: created if absent,
// overwritten if held by the same lease, refused (ErrExists) if held by
// another live lease.
func (st *KVStore) register(ctx context.Context, s Session, key, what string, value []byte) error {
	ss, err := st.sessionOf(s)
	if err != nil {
		return err
	}
	abs := st.abs(key)
	for range 8 { // each retry means the key changed hands in between
		resp, err := st.txn(ctx, kv.Txn{
			If:   []kv.Cmp{{Key: abs, Target: kv.TargetLease, Result: kv.Equal, Value: ss.id}},
			Then: []kv.Op{kv.Put(abs, value, ss.id)},
			Else: []kv.Op{kv.Get(abs)},
		})
		if err != nil {
			return fmt.Errorf("register %s: %w", what, ss.leaseErr(err))
		}
		if resp.Succeeded {
			return nil
		}
		if cur := resp.Results[0].KVs; len(cur) > 0 {
			return &OpError{Op: "register " + what, Err: fmt.Errorf("%w: held by session %x", ErrExists, cur[0].Lease)}
		}
		resp, err = st.txn(ctx, kv.Txn{
			If:   []kv.Cmp{{Key: abs, Target: kv.TargetCreate, Result: kv.Equal}},
			Then: []kv.Op{kv.Put(abs, value, ss.id)},
		})
		if err != nil {
			return fmt.Errorf("register %s: %w", what, ss.leaseErr(err))
		}
		if resp.Succeeded {
			return nil
		}
	}
	return &OpError{Op: "register " + what, Err: fmt.Errorf("%w: contended", ErrBadVersion)}
}

// list reads every key under prefix (relative) at one revision.
func (st *KVStore) list(ctx context.Context, prefix string) ([]kv.KeyValue, int64, error) {
	start, end := prefixRange(st.abs(prefix))
	resp, err := st.read(ctx, kv.Range(start, end, 0))
	if err != nil {
		return nil, 0, err
	}
	return resp.Results[0].KVs, resp.Revision, nil
}

// RegisterBookie implements Store.
func (st *KVStore) RegisterBookie(ctx context.Context, s Session, b BookieInfo) error {
	if err := ValidateID(b.ID); err != nil {
		return err
	}
	if b.State != BookieWritable && b.State != BookieReadOnly {
		return badArg("bookie %s: state %d", b.ID, b.State)
	}
	if !utf8Valid(b.Address + b.Region + b.Rack + b.InstanceID) {
		return badArg("bookie %s: fields must be UTF-8", b.ID)
	}
	return st.register(ctx, s, rel.bookie(b.ID), "bookie "+b.ID, marshal(bookieToPB(b)))
}

func (st *KVStore) decodeBookie(e kv.KeyValue) (BookieInfo, error) {
	var p metapb.Bookie
	if err := unmarshal(e.Key, e.Value, &p); err != nil {
		return BookieInfo{}, err
	}
	b := bookieFromPB(&p)
	b.ID = strings.TrimPrefix(e.Key, st.ks.bookies())
	return b, nil
}

// ListBookies implements Store.
func (st *KVStore) ListBookies(ctx context.Context) ([]BookieInfo, int64, error) {
	kvs, rev, err := st.list(ctx, rel.bookies())
	if err != nil {
		return nil, 0, fmt.Errorf("list bookies: %w", err)
	}
	out := make([]BookieInfo, 0, len(kvs))
	for _, e := range kvs {
		b, err := st.decodeBookie(e)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, b)
	}
	return out, rev, nil
}

// WatchBookies implements Store.
func (st *KVStore) WatchBookies(ctx context.Context, fromRev int64) <-chan BookieEvent {
	start, end := prefixRange(st.ks.bookies())
	return watch(st, ctx, start, end, fromRev, func(e kv.Event) (BookieEvent, bool, error) {
		ev := BookieEvent{Type: eventType(e), Revision: e.KV.ModRevision}
		ev.Bookie.ID = strings.TrimPrefix(e.KV.Key, st.ks.bookies())
		if ev.Type == EventPut {
			b, err := st.decodeBookie(e.KV)
			if err != nil {
				return ev, false, err
			}
			ev.Bookie = b
		}
		return ev, true, nil
	}, func(err error) BookieEvent { return BookieEvent{Err: err} })
}

// GetCookie implements Store.
func (st *KVStore) GetCookie(ctx context.Context, bookieID string) (Cookie, Version, error) {
	if err := ValidateID(bookieID); err != nil {
		return Cookie{}, 0, err
	}
	e, ok, err := st.get(ctx, rel.cookie(bookieID))
	if err != nil {
		return Cookie{}, 0, fmt.Errorf("get cookie %s: %w", bookieID, err)
	}
	if !ok {
		return Cookie{}, 0, fmt.Errorf("cookie of bookie %s: %w", bookieID, ErrNotFound)
	}
	var p metapb.Cookie
	if err := unmarshal(e.Key, e.Value, &p); err != nil {
		return Cookie{}, 0, err
	}
	return cookieFromPB(&p), Version(e.ModRevision), nil
}

// PutCookie implements Store.
func (st *KVStore) PutCookie(ctx context.Context, c Cookie, expect Version) (Version, error) {
	if err := ValidateID(c.BookieID); err != nil {
		return 0, err
	}
	if expect < 0 {
		return 0, badArg("put cookie %s: expected version %d", c.BookieID, expect)
	}
	p := cookieToPB(c)
	if !utf8Valid(c.InstanceID + c.Address + strings.Join(c.Dirs, "")) {
		return 0, badArg("cookie %s: fields must be UTF-8", c.BookieID)
	}
	what := "cookie of bookie " + c.BookieID
	key := rel.cookie(c.BookieID)
	rev, err := st.commit(ctx, []Op{{
		desc:   "put " + what,
		checks: []check{versioned(key, expect, what)},
		writes: []kv.Op{kv.Put(key, marshal(p), 0)},
	}})
	return Version(rev), err
}

// DeleteCookie implements Store.
func (st *KVStore) DeleteCookie(ctx context.Context, bookieID string, expect Version) error {
	if err := ValidateID(bookieID); err != nil {
		return err
	}
	if expect < 0 {
		return badArg("delete cookie %s: expected version %d", bookieID, expect)
	}
	what := "cookie of bookie " + bookieID
	key := rel.cookie(bookieID)
	c := check{kind: checkPresent, key: key, what: what}
	if expect > 0 {
		c = versioned(key, expect, what)
	}
	_, err := st.commit(ctx, []Op{{desc: "delete " + what, checks: []check{c}, writes: []kv.Op{kv.Delete(key)}}})
	return err
}

// RegisterProxy implements Store.
func (st *KVStore) RegisterProxy(ctx context.Context, s Session, p ProxyInfo) error {
	if err := ValidateID(p.ID); err != nil {
		return err
	}
	if !utf8Valid(p.Address + p.HTTPAddress + p.Region) {
		return badArg("proxy %s: fields must be UTF-8", p.ID)
	}
	return st.register(ctx, s, rel.proxy(p.ID), "proxy "+p.ID, marshal(proxyToPB(p)))
}

func (st *KVStore) decodeProxy(e kv.KeyValue) (ProxyInfo, error) {
	var p metapb.Proxy
	if err := unmarshal(e.Key, e.Value, &p); err != nil {
		return ProxyInfo{}, err
	}
	out := proxyFromPB(&p)
	out.ID = strings.TrimPrefix(e.Key, st.ks.proxies())
	return out, nil
}

// ListProxies implements Store.
func (st *KVStore) ListProxies(ctx context.Context) ([]ProxyInfo, int64, error) {
	kvs, rev, err := st.list(ctx, rel.proxies())
	if err != nil {
		return nil, 0, fmt.Errorf("list proxies: %w", err)
	}
	out := make([]ProxyInfo, 0, len(kvs))
	for _, e := range kvs {
		p, err := st.decodeProxy(e)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, p)
	}
	return out, rev, nil
}

// WatchProxies implements Store.
func (st *KVStore) WatchProxies(ctx context.Context, fromRev int64) <-chan ProxyEvent {
	start, end := prefixRange(st.ks.proxies())
	return watch(st, ctx, start, end, fromRev, func(e kv.Event) (ProxyEvent, bool, error) {
		ev := ProxyEvent{Type: eventType(e), Revision: e.KV.ModRevision}
		ev.Proxy.ID = strings.TrimPrefix(e.KV.Key, st.ks.proxies())
		if ev.Type == EventPut {
			p, err := st.decodeProxy(e.KV)
			if err != nil {
				return ev, false, err
			}
			ev.Proxy = p
		}
		return ev, true, nil
	}, func(err error) ProxyEvent { return ProxyEvent{Err: err} })
}
