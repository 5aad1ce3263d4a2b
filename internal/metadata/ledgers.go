package metadata

import (
	"context"
	"fmt"
	"strings"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata/kv"
	"github.com/dlog-io/dlog/internal/pb/metapb"
)

// NewLedgerID implements Store. The counter is the Version of the idgen
// key: one transaction puts it and reads it back, so concurrent callers
// never retry and never get the same id (etcd increments a key's version by
// exactly one per put, atomically).
func (st *KVStore) NewLedgerID(ctx context.Context) (int64, error) {
	key := st.abs(rel.ledgerIDGen())
	resp, err := st.txn(ctx, kv.Txn{Then: []kv.Op{kv.Put(key, nil, 0), {Type: kv.OpGet, Key: key, KeysOnly: true}}})
	if err != nil {
		return 0, fmt.Errorf("new ledger id: %w", err)
	}
	kvs := resp.Results[1].KVs
	if len(kvs) != 1 || kvs[0].Version < 1 {
		return 0, fmt.Errorf("%w: ledger id counter unreadable", ErrCorrupt)
	}
	return kvs[0].Version, nil
}

// CreateLedger implements Store.
func (st *KVStore) CreateLedger(ctx context.Context, id int64, m LedgerMetadata) (Version, error) {
	return st.commitOne(ctx, CreateLedgerOp(id, m))
}

// UpdateLedger implements Store.
func (st *KVStore) UpdateLedger(ctx context.Context, id int64, m LedgerMetadata, expect Version) (Version, error) {
	return st.commitOne(ctx, UpdateLedgerOp(id, m, expect))
}

// DeleteLedger implements Store.
func (st *KVStore) DeleteLedger(ctx context.Context, id int64, expect Version) error {
	_, err := st.commitOne(ctx, DeleteLedgerOp(id, expect))
	return err
}

func (st *KVStore) commitOne(ctx context.Context, op Op) (Version, error) {
	if op.err != nil {
		return 0, op.err
	}
	rev, err := st.commit(ctx, []Op{op})
	return Version(rev), err
}

func decodeLedger(e kv.KeyValue) (LedgerMetadata, error) {
	var p metapb.Ledger
	if err := unmarshal(e.Key, e.Value, &p); err != nil {
		return LedgerMetadata{}, err
	}
	return ledgerFromPB(&p), nil
}

// GetLedger implements Store.
func (st *KVStore) GetLedger(ctx context.Context, id int64) (LedgerMetadata, Version, error) {
	if id < 1 {
		return LedgerMetadata{}, 0, badArg("ledger id %d < 1", id)
	}
	e, ok, err := st.get(ctx, rel.ledger(id))
	if err != nil {
		return LedgerMetadata{}, 0, fmt.Errorf("get ledger %d: %w", id, err)
	}
	if !ok {
		return LedgerMetadata{}, 0, fmt.Errorf("ledger %d: %w", id, ErrNotFound)
	}
	m, err := decodeLedger(e)
	return m, Version(e.ModRevision), err
}

// ListLedgers implements Store.
func (st *KVStore) ListLedgers(ctx context.Context, afterID int64, limit int) ([]int64, error) {
	if afterID < 0 {
		afterID = 0
	}
	if limit <= 0 {
		return nil, badArg("list ledgers: limit %d", limit)
	}
	_, end := prefixRange(st.ks.ledgers())
	resp, err := st.read(ctx, kv.Op{Type: kv.OpGet, Key: st.ks.ledger(afterID + 1), End: end, Limit: int64(limit), KeysOnly: true})
	if err != nil {
		return nil, fmt.Errorf("list ledgers: %w", err)
	}
	out := make([]int64, 0, len(resp.Results[0].KVs))
	for _, e := range resp.Results[0].KVs {
		id, ok := parseNum(strings.TrimPrefix(e.Key, st.ks.ledgers()))
		if !ok {
			return nil, fmt.Errorf("%w: unexpected key %q", ErrCorrupt, e.Key)
		}
		out = append(out, id)
	}
	return out, nil
}

// WatchLedger implements Store.
func (st *KVStore) WatchLedger(ctx context.Context, id int64, fromRev int64) <-chan LedgerEvent {
	fail := func(err error) LedgerEvent { return LedgerEvent{Err: err} }
	if id < 1 {
		ch := make(chan LedgerEvent, 1)
		ch <- fail(fmt.Errorf("%w: ledger id %d", dlog.ErrInvalidArgument, id))
		close(ch)
		return ch
	}
	return watch(st, ctx, st.ks.ledger(id), "", fromRev, func(e kv.Event) (LedgerEvent, bool, error) {
		ev := LedgerEvent{Type: eventType(e), Revision: e.KV.ModRevision}
		if ev.Type == EventPut {
			m, err := decodeLedger(e.KV)
			if err != nil {
				return ev, false, err
			}
			ev.Ledger, ev.Version = m, Version(e.KV.ModRevision)
		}
		return ev, true, nil
	}, fail)
}
