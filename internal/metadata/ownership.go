package metadata

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dlog-io/dlog/internal/metadata/kv"
	"github.com/dlog-io/dlog/internal/pb/metapb"
)

// The writer lock of a log is one key, logdata/<ns>/<log>/lock, holding an
// Owner message and bound to the owner's lease. Whoever creates it owns the
// log; its CreateRevision is the ownership's Token. Waiters watch the key
// and race to create it again once it is deleted (no FIFO order: the
// single-writer guarantee does not need one, and etcd's own mutex recipe
// needs a key per waiter).

type ownership struct {
	st    *KVStore
	s     *session
	ns    string
	log   string
	key   string // absolute
	owner OwnerInfo
	token Version

	lost     chan struct{}
	lostOnce sync.Once
	stopc    chan struct{} // Release: the watcher ends
	stopOnce sync.Once
	loopDone chan struct{}
}

// AcquireOwnership implements Store.
func (st *KVStore) AcquireOwnership(ctx context.Context, s Session, ns, log string, owner OwnerInfo, wait bool) (Ownership, error) {
	if err := checkLogNames(ns, log); err != nil {
		return nil, err
	}
	if owner.ID == "" || !utf8Valid(owner.ID+owner.Address) {
		return nil, badArg("owner of %s/%s: empty or non-UTF-8 id", ns, log)
	}
	ss, err := st.sessionOf(s)
	if err != nil {
		return nil, err
	}
	if owner.Acquired.IsZero() {
		owner.Acquired = time.Now()
	}
	key := st.abs(rel.lock(ns, log))
	logKey := st.abs(rel.log(ns, log))
	value := marshal(ownerToPB(owner))
	for {
		if ss.expired() {
			return nil, fmt.Errorf("acquire %s/%s: session %x: %w", ns, log, ss.id, ErrSessionExpired)
		}
		resp, err := st.txn(ctx, kv.Txn{
			If: []kv.Cmp{
				{Key: logKey, Target: kv.TargetCreate, Result: kv.Greater},
				{Key: key, Target: kv.TargetCreate, Result: kv.Equal},
			},
			Then: []kv.Op{kv.Put(key, value, ss.id), kv.Get(key)},
			Else: []kv.Op{kv.Get(logKey), kv.Get(key)},
		})
		if err != nil {
			return nil, fmt.Errorf("acquire %s/%s: %w", ns, log, ss.leaseErr(err))
		}
		if resp.Succeeded {
			cur := resp.Results[1].KVs[0]
			return st.startOwnership(ss, ns, log, key, owner, Version(cur.CreateRevision), resp.Revision), nil
		}
		if len(resp.Results[0].KVs) == 0 {
			return nil, fmt.Errorf("acquire: log %s/%s: %w", ns, log, ErrNotFound)
		}
		cur := resp.Results[1].KVs[0]
		var holder metapb.Owner
		if err := unmarshal(cur.Key, cur.Value, &holder); err != nil {
			return nil, err
		}
		if cur.Lease == ss.id && holder.GetId() == owner.ID {
			// Re-entry by the same session and owner id.
			return st.startOwnership(ss, ns, log, key, ownerFromPB(&holder), Version(cur.CreateRevision), resp.Revision), nil
		}
		if cur.Lease == ss.id && !st.held(key) {
			// The key is bound to our own session but no Ownership of this
			// store holds it: an earlier acquisition's transaction was
			// applied although its caller saw an error (a deadline hit
			// after etcd committed), or a release's delete failed. Nobody
			// can act on it, and it would block the log for the life of
			// the session. Delete it (if unchanged) and try again: the new
			// lock gets a new CreateRevision, so no token of the orphan can
			// ever pass a CheckOwner.
			_, err := st.txn(ctx, kv.Txn{
				If:   []kv.Cmp{{Key: key, Target: kv.TargetMod, Result: kv.Equal, Value: cur.ModRevision}},
				Then: []kv.Op{kv.Delete(key)},
			})
			if err != nil {
				return nil, fmt.Errorf("acquire %s/%s: remove orphaned lock: %w", ns, log, ss.leaseErr(err))
			}
			st.log.Warn("removed orphaned writer lock", "namespace", ns, "log", log, "owner-id", holder.GetId())
			continue
		}
		if !wait {
			return nil, &OwnedError{Log: ns + "/" + log, OwnerID: holder.GetId(), Owner: holder.GetAddress()}
		}
		if err := st.waitDeleted(ctx, ss, key, resp.Revision+1); err != nil {
			return nil, fmt.Errorf("acquire %s/%s: %w", ns, log, err)
		}
	}
}

// waitDeleted returns once key is deleted at or after fromRev (or the watch
// broke: the caller re-reads either way), or fails when ctx ends or the
// session does.
func (st *KVStore) waitDeleted(ctx context.Context, ss *session, key string, fromRev int64) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(st.stop, cancel)
	defer stop()
	ch := st.kv.Watch(wctx, key, "", fromRev)
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for the lock: %w", ErrUnavailable, ctx.Err())
		case <-st.stop.Done():
			return ErrClosed
		case <-ss.done:
			return fmt.Errorf("session %x: %w", ss.id, ErrSessionExpired)
		case resp, ok := <-ch:
			if !ok || resp.Err != nil {
				return nil
			}
			for _, e := range resp.Events {
				if e.Type == kv.EventDelete {
					return nil
				}
			}
		}
	}
}

func (st *KVStore) startOwnership(ss *session, ns, log, key string, owner OwnerInfo, token Version, rev int64) *ownership {
	o := &ownership{
		st: st, s: ss, ns: ns, log: log, key: key, owner: owner, token: token,
		lost: make(chan struct{}), stopc: make(chan struct{}), loopDone: make(chan struct{}),
	}
	st.holders.Lock()
	if st.holders.m == nil {
		st.holders.m = make(map[string]int)
	}
	st.holders.m[key]++
	st.holders.Unlock()
	st.wg.Go(func() {
		defer close(o.loopDone)
		o.watchLock(rev + 1)
	})
	return o
}

func (o *ownership) Owner() OwnerInfo      { return o.owner }
func (o *ownership) Token() Version        { return o.token }
func (o *ownership) SessionID() int64      { return o.s.id }
func (o *ownership) Lost() <-chan struct{} { return o.lost }

// held reports whether some live Ownership of this store holds key.
func (st *KVStore) held(key string) bool {
	st.holders.Lock()
	defer st.holders.Unlock()
	return st.holders.m[key] > 0
}

func (o *ownership) lose(reason string) {
	o.lostOnce.Do(func() {
		o.st.holders.Lock()
		if o.st.holders.m[o.key]--; o.st.holders.m[o.key] <= 0 {
			delete(o.st.holders.m, o.key)
		}
		o.st.holders.Unlock()
		close(o.lost)
		if reason != "" {
			o.st.log.Warn("log ownership lost", "namespace", o.ns, "log", o.log, "owner-id", o.owner.ID,
				"token", int64(o.token), "reason", reason)
		}
	})
}

// watchLock closes Lost when the lock key is deleted or re-created (a put
// with another CreateRevision), when the session ends, or when the store
// closes. After a broken watch it re-reads the key before watching again.
func (o *ownership) watchLock(fromRev int64) {
	backoff := 10 * time.Millisecond
	for {
		ctx, cancel := context.WithCancel(o.st.stop)
		ch := o.st.kv.Watch(ctx, o.key, "", fromRev)
		broken := false
		for !broken {
			select {
			case <-o.stopc:
				cancel()
				return
			case <-o.st.stop.Done():
				cancel()
				o.lose("store closed")
				return
			case <-o.s.done:
				cancel()
				o.lose("session ended")
				return
			case resp, ok := <-ch:
				if !ok || resp.Err != nil {
					broken = true
					break
				}
				for _, e := range resp.Events {
					if e.Type == kv.EventDelete || e.KV.CreateRevision != int64(o.token) {
						cancel()
						o.lose("lock key deleted or replaced")
						return
					}
					fromRev = e.KV.ModRevision + 1
				}
			}
		}
		cancel()
		// Re-read: the watch may have missed changes (compaction).
		for {
			resp, err := o.st.read(o.st.stop, kv.Get(o.key))
			if err == nil {
				cur := resp.Results[0].KVs
				if len(cur) == 0 || cur[0].CreateRevision != int64(o.token) {
					o.lose("lock key deleted or replaced")
					return
				}
				fromRev = resp.Revision + 1
				break
			}
			select {
			case <-o.stopc:
				return
			case <-o.st.stop.Done():
				o.lose("store closed")
				return
			case <-o.s.done:
				o.lose("session ended")
				return
			case <-time.After(backoff):
				backoff = min(2*backoff, time.Second)
			}
		}
	}
}

// Release implements Ownership.
func (o *ownership) Release(ctx context.Context) error {
	first := false
	o.stopOnce.Do(func() {
		first = true
		close(o.stopc)
	})
	<-o.loopDone
	defer o.lose("")
	if !first {
		return nil
	}
	_, err := o.st.txn(ctx, kv.Txn{
		If:   []kv.Cmp{{Key: o.key, Target: kv.TargetCreate, Result: kv.Equal, Value: int64(o.token)}},
		Then: []kv.Op{kv.Delete(o.key)},
	})
	if err != nil && !errors.Is(err, ErrClosed) {
		return fmt.Errorf("release %s/%s: %w", o.ns, o.log, err)
	}
	return nil
}

// GetOwner implements Store.
func (st *KVStore) GetOwner(ctx context.Context, ns, log string) (OwnerInfo, bool, error) {
	if err := checkLogNames(ns, log); err != nil {
		return OwnerInfo{}, false, err
	}
	e, ok, err := st.get(ctx, rel.lock(ns, log))
	if err != nil || !ok {
		if err != nil {
			err = fmt.Errorf("get owner of %s/%s: %w", ns, log, err)
		}
		return OwnerInfo{}, false, err
	}
	var p metapb.Owner
	if err := unmarshal(e.Key, e.Value, &p); err != nil {
		return OwnerInfo{}, false, err
	}
	return ownerFromPB(&p), true, nil
}
