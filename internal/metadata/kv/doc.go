// Package kv is the key-value seam under the metadata store: the few
// primitives of etcd's v3 API that the typed store needs (multi-op
// transactions with compares, ranges, watches from a revision, leases),
// with the exact semantics every backend must reproduce.
//
// There are two backends: kv/etcdkv (a real etcd cluster through
// go.etcd.io/etcd/client/v3) and kv/memkv (an in-memory MVCC map for tests
// and the in-process sandbox). The typed metadata.Store is written once on
// top of this interface, so both backends share every line of metadata
// logic and one conformance suite checks both.
//
// # Semantics (etcd's, which memkv copies)
//
//   - One global revision counts every successful write transaction; all
//     writes of a transaction carry the same revision. A read-only
//     transaction does not advance it.
//   - A key has a CreateRevision (revision of the put that created it,
//     reset when deleted), ModRevision (last write), Version (puts since
//     creation, from 1) and Lease (0 = none). A missing key has all four 0.
//   - A Txn evaluates every Cmp of If at one revision; if all hold it runs
//     Then, otherwise Else. Ops run in order and a Get sees the writes of
//     earlier ops of the same Txn. A Put naming a lease that does not exist
//     fails the whole Txn with ErrLeaseNotFound; nothing is written. Two
//     writes to overlapping keys in one branch are rejected (ErrInvalid).
//   - A Watch delivers every event with revision >= fromRev (0 = from the
//     next revision on), in revision order; a response holds whole
//     revisions, one or several. A fromRev at or below the compacted
//     revision yields ErrCompacted.
//   - A lease expires when not kept alive for its TTL; expiry and Revoke
//     delete every key attached to it in one revision.
package kv
