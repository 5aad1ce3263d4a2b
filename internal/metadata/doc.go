// Package metadata is dlog's metadata store: the bookie and proxy
// registries, ledger metadata and ids, namespaces, logs, segments, writer
// ownership and subscriptions, kept in etcd (the role ZooKeeper plays for
// DistributedLog and BookKeeper).
//
// # Usage
//
//	st, err := metadata.Open(ctx, "http://10.0.0.1:2379,http://10.0.0.2:2379", metadata.Options{Cluster: "prod"})
//	// or "embedded:/var/lib/dlog/etcd" (a single-member etcd in-process),
//	// or "memory:" (tests)
//	defer st.Close()
//
//	s, _ := st.NewSession(ctx, 10*time.Second)        // a lease, kept alive
//	o, err := st.AcquireOwnership(ctx, s, "ns", "log", metadata.OwnerInfo{ID: "proxy-1"}, false)
//	state, _ := st.GetLogState(ctx, "ns", "log")
//	rev, err := st.Commit(ctx,                          // one etcd transaction
//		metadata.CreateSegment("ns", "log", seg),
//		metadata.SetMaxLSSN("ns", "log", seg.LSSN, state.MaxLSSNVersion),
//		metadata.SetMaxTxID("ns", "log", txid, state.MaxTxIDVersion),
//		metadata.CheckOwner("ns", "log", o))
//	// errors.Is(err, metadata.ErrBadVersion): a newer writer moved on;
//	// nothing was written. <-o.Lost(): stop writing.
//
// # Structure: one typed store over a key-value seam
//
// The typed Store (KVStore) is written once, over kv.KV: a handful of etcd
// v3 primitives (a transaction with compares on ModRevision,
// CreateRevision, Version and Lease over a key or a range; ranges; watches
// from a revision; leases). Two backends implement kv.KV: kv/etcdkv (the
// etcd client) and kv/memkv (an in-memory MVCC map with one global
// revision, a bounded watch history and lease expiry on real timers). The
// seam sits at the key-value level, not at the Store level, so the metadata
// logic — key layout, CAS rules, multi-key commits, ownership, sessions,
// watch decoding and bounding — exists once and cannot drift between
// backends; a backend only has to get etcd's semantics right, which
// kv/kvtest checks, and metadatatest runs the whole typed contract on both.
// A Store-level seam would have needed the metadata logic written twice.
//
// # etcd layout
//
// Every key of a cluster is under /dlog/<cluster>/ (Options.Cluster,
// default "default"). Names are checked in one place: namespace, log and
// subscription names with dlog.ValidateName, bookie and proxy ids with
// ValidateID; neither admits '/', so every name is one path element and
// maps to exactly one key. Numbers in keys are 19-digit zero-padded
// decimals, so byte order is numeric order.
//
//	bookies/<id>                      Bookie      lease-bound registration
//	cookies/<id>                      Cookie      bookie identity
//	proxies/<id>                      Proxy       lease-bound registration
//	ledgers/<%019d id>                Ledger      ledger metadata
//	idgen/ledger                      (empty)     ledger id counter = the key's Version (never delete it)
//	namespaces/<ns>                   Namespace
//	logs/<ns>/<log>                   (empty)     listing entry: one key per log, nothing else
//	logdata/<ns>/<log>/info           Log         settings
//	logdata/<ns>/<log>/maxlssn        decimal     highest segment sequence number (0: none)
//	logdata/<ns>/<log>/maxtxid        decimal     highest transaction id (-1: none)
//	logdata/<ns>/<log>/truncation     DLSN        truncation point (zero: none)
//	logdata/<ns>/<log>/lock           Owner       writer lock, lease-bound
//	logdata/<ns>/<log>/segments/<%019d lssn>    Segment
//	logdata/<ns>/<log>/subscriptions/<name>     Subscription
//
// Values are the messages of proto/dlog/metadata/v1/metadata.proto
// (package internal/pb/metapb), serialized deterministically; the two
// counters are decimal ASCII; times are Unix milliseconds.
//
// Why two key spaces per log: a log's listing entry lives in logs/<ns>/ and
// its children in logdata/<ns>/<log>/, so listing the logs of a namespace
// (a prefix range over logs/<ns>/<prefix>) returns log names and nothing
// else, and the terminating '/' after <log> keeps "a"'s subtree from
// containing "ab"'s keys. CreateLog and DeleteLog write both spaces in one
// transaction; a watch on logdata/<ns>/<log>/ sees every change of the log,
// and the delete of its info key says the log is gone.
//
// # Versions, CAS and Commit
//
// A Version is the key's ModRevision. Every update is a compare-and-swap
// on it; version 0 means "must not exist". A write's new version is the
// revision it returned, the same for every key of one Commit. Commit turns
// its ops into one etcd transaction: If = every op's expectations, Then =
// every put and delete, Else = a read of every compared key, from which the
// first failing op is named in an *OpError. CheckOwner compares the lock
// key's CreateRevision with the ownership's Token and its Lease with the
// session, so a stale writer's commit fails with ErrBadVersion and writes
// nothing. Where a single expectation cannot be expressed as a compare
// (DeleteNamespace needs "no log left"), a range compare over the prefix
// does it.
//
// # Sessions and ownership
//
// A Session is an etcd lease renewed every TTL/3 with single keepalives
// (one code path for both backends). A renewal sent at time t that succeeds
// proves the lease lives until at least t+TTL, so Done closes when no
// renewal succeeded within TTL of the last good one — never after the
// server could have expired it (clock rates aside) — or at once when the
// server says the lease is gone. Registrations and the lock key are bound
// to the lease. An Ownership watches its lock key and closes Lost on its
// deletion or replacement, when its session ends, on Release and on
// Store.Close. The lock is advisory: a paused owner may act after losing it;
// G5 safety comes from CheckOwner in every commit and from bookie fencing.
//
// # Errors
//
// Sentinels are in store.go. ErrUnavailable means the service was not
// reached in time (ctx deadline or Options.RequestTimeout) or etcd
// answered "request timed out", "leader changed", "no leader": retryable,
// and for a write indeterminate — during an etcd leader change a put can
// fail with "request timed out" although it was applied, and the etcd
// client does not retry writes. Callers retry writes as CAS: the retry then
// fails with ErrBadVersion or ErrExists if the first attempt landed, and a
// re-read says which. Reads may simply be retried.
//
// # Watches
//
// A watch channel holds Options.WatchBufferEvents events and one more slot
// for a final error. A consumer that lets it fill is cut off with
// ErrWatchLagged (as is a watch from a compacted revision); the store
// never blocks on a consumer and never drops an event without saying so.
// Watches do not end by themselves when etcd is unreachable: the etcd
// client reconnects and resumes at the next revision.
//
// # Concurrency and goroutines
//
// Store methods are safe for concurrent use. Long-lived goroutines, all
// owned by the KVStore and stopped (then waited for) by Close:
//
//   - one per watch channel (typed decoding and bounding), ended by the
//     watch's ctx or Close;
//   - one per Session (keepalive), ended by Session.Close, lease loss or
//     Close (which abandons the lease: it expires after its TTL);
//   - one per Ownership (lock watch), ended by Release, loss or Close.
//
// The backends own their own: kv/etcdkv one per watch, kv/memkv one per
// watch plus one per server (lease expiry).
package metadata
