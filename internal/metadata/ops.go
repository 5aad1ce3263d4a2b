package metadata

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata/kv"
)

// MaxCommitOps bounds the ops of one Commit (etcd refuses transactions of
// more than 128 compares or writes; an op has at most two of each).
const MaxCommitOps = 64

// OpError says which op of a Commit (or which step of a Store method) did
// not hold. It wraps the sentinel: ErrBadVersion, ErrExists, ErrNotFound,
// ErrNotEmpty.
type OpError struct {
	Op  string // e.g. "create segment 3 of ns/log"
	Err error
}

func (e *OpError) Error() string { return "metadata: " + e.Op + ": " + e.Err.Error() }
func (e *OpError) Unwrap() error { return e.Err }

// checkKind is what a check expects of a key.
type checkKind int

const (
	checkAbsent  checkKind = iota + 1 // the key does not exist (ErrExists)
	checkPresent                      // the key exists (ErrNotFound)
	checkVersion                      // ModRevision == version (ErrBadVersion)
	checkEmpty                        // no key in [key, end) (ErrNotEmpty)
	checkOwner                        // CreateRevision == version and Lease == lease (ErrBadVersion)
)

// check is one expectation of an Op. Keys are relative to the cluster root
// until Commit adds it.
type check struct {
	kind    checkKind
	key     string
	end     string // checkEmpty only
	version int64
	lease   int64
	what    string // "log ns/a", "segment 3 of ns/a"
}

func (c check) cmps(root string) []kv.Cmp {
	k := root + c.key
	switch c.kind {
	case checkAbsent:
		return []kv.Cmp{{Key: k, Target: kv.TargetCreate, Result: kv.Equal}}
	case checkPresent:
		return []kv.Cmp{{Key: k, Target: kv.TargetCreate, Result: kv.Greater}}
	case checkVersion:
		return []kv.Cmp{{Key: k, Target: kv.TargetMod, Result: kv.Equal, Value: c.version}}
	case checkEmpty:
		return []kv.Cmp{{Key: k, End: root + c.end, Target: kv.TargetCreate, Result: kv.Equal}}
	case checkOwner:
		return []kv.Cmp{
			{Key: k, Target: kv.TargetCreate, Result: kv.Equal, Value: c.version},
			{Key: k, Target: kv.TargetLease, Result: kv.Equal, Value: c.lease},
		}
	}
	panic("metadata: unknown check kind")
}

// probe reads what explain needs to know. Caller prefixes the root.
func (c check) probe(root string) kv.Op {
	if c.kind == checkEmpty {
		return kv.Op{Type: kv.OpGet, Key: root + c.key, End: root + c.end, Limit: 1, KeysOnly: true}
	}
	return kv.Op{Type: kv.OpGet, Key: root + c.key, KeysOnly: true}
}

// explain returns nil if the check holds for the probed keys, else the
// error saying why not.
func (c check) explain(found []kv.KeyValue) error {
	var cur kv.KeyValue
	if len(found) > 0 {
		cur = found[0]
	}
	switch c.kind {
	case checkAbsent:
		if cur.CreateRevision != 0 {
			return fmt.Errorf("%s: %w", c.what, ErrExists)
		}
	case checkPresent:
		if cur.CreateRevision == 0 {
			return fmt.Errorf("%s: %w", c.what, ErrNotFound)
		}
	case checkVersion:
		switch {
		case cur.ModRevision == c.version:
		case cur.ModRevision == 0:
			return fmt.Errorf("%s: %w: expected version %d, key is gone (%w)", c.what, ErrBadVersion, c.version, ErrNotFound)
		case c.version == 0:
			return fmt.Errorf("%s: %w", c.what, ErrExists)
		default:
			return fmt.Errorf("%s: %w: expected version %d, found %d", c.what, ErrBadVersion, c.version, cur.ModRevision)
		}
	case checkEmpty:
		if len(found) > 0 {
			return fmt.Errorf("%s: %w", c.what, ErrNotEmpty)
		}
	case checkOwner:
		if cur.CreateRevision != c.version || cur.Lease != c.lease {
			return fmt.Errorf("%s: %w: ownership %d is no longer held", c.what, ErrBadVersion, c.version)
		}
	}
	return nil
}

// rel builds keys relative to the cluster root; Commit adds the root.
var rel = keyspace{}

func opErr(err error) Op { return Op{err: err} }

func badArg(format string, args ...any) error {
	return fmt.Errorf("%w: %s", dlog.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

func checkLogNames(ns, log string) error {
	if err := dlog.ValidateName(ns); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	if err := dlog.ValidateName(log); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	return nil
}

func logPresent(ns, log string) check {
	return check{kind: checkPresent, key: rel.log(ns, log), what: "log " + ns + "/" + log}
}

// versioned is the check of a key that must be at version expect (0: must
// not exist).
func versioned(key string, expect Version, what string) check {
	if expect == 0 {
		return check{kind: checkAbsent, key: key, what: what}
	}
	return check{kind: checkVersion, key: key, version: int64(expect), what: what}
}

// CreateSegment creates segments/<s.LSSN> of an existing log; it fails with
// ErrExists if that segment exists and ErrNotFound if the log does not.
func CreateSegment(ns, log string, s Segment) Op {
	if err := checkLogNames(ns, log); err != nil {
		return opErr(err)
	}
	if err := validateSegment(s); err != nil {
		return opErr(err)
	}
	what := fmt.Sprintf("segment %d of %s/%s", s.LSSN, ns, log)
	key := rel.segment(ns, log, s.LSSN)
	return Op{
		desc:   "create " + what,
		checks: []check{logPresent(ns, log), {kind: checkAbsent, key: key, what: what}},
		writes: []kv.Op{kv.Put(key, marshal(segmentToPB(s)), 0)},
	}
}

// UpdateSegment replaces segments/<s.LSSN> if it is at version expect (> 0).
func UpdateSegment(ns, log string, s Segment, expect Version) Op {
	if err := checkLogNames(ns, log); err != nil {
		return opErr(err)
	}
	if err := validateSegment(s); err != nil {
		return opErr(err)
	}
	if expect <= 0 {
		return opErr(badArg("update segment %d: expected version %d; use CreateSegment to create", s.LSSN, expect))
	}
	what := fmt.Sprintf("segment %d of %s/%s", s.LSSN, ns, log)
	key := rel.segment(ns, log, s.LSSN)
	return Op{
		desc:   "update " + what,
		checks: []check{versioned(key, expect, what)},
		writes: []kv.Op{kv.Put(key, marshal(segmentToPB(s)), 0)},
	}
}

// DeleteSegment deletes segments/<lssn> if it is at version expect (0: any
// version, but it must exist).
func DeleteSegment(ns, log string, lssn int64, expect Version) Op {
	if err := checkLogNames(ns, log); err != nil {
		return opErr(err)
	}
	if lssn < 1 || expect < 0 {
		return opErr(badArg("delete segment %d at version %d", lssn, expect))
	}
	what := fmt.Sprintf("segment %d of %s/%s", lssn, ns, log)
	key := rel.segment(ns, log, lssn)
	c := check{kind: checkPresent, key: key, what: what}
	if expect > 0 {
		c = versioned(key, expect, what)
	}
	return Op{desc: "delete " + what, checks: []check{c}, writes: []kv.Op{kv.Delete(key)}}
}

// setLogKey is the op writing one of the per-log keys that CreateLog
// creates, so expect must be a real version (> 0).
func setLogKey(ns, log, key, name string, value []byte, expect Version) Op {
	if err := checkLogNames(ns, log); err != nil {
		return opErr(err)
	}
	if expect <= 0 {
		return opErr(badArg("set %s of %s/%s: expected version %d must be > 0", name, ns, log, expect))
	}
	what := fmt.Sprintf("%s of %s/%s", name, ns, log)
	return Op{
		desc:   "set " + what,
		checks: []check{versioned(key, expect, what)},
		writes: []kv.Op{kv.Put(key, value, 0)},
	}
}

// SetMaxLSSN sets the log's max segment sequence number if its key is at
// version expect (from GetLogState). The caller makes it increase.
func SetMaxLSSN(ns, log string, lssn int64, expect Version) Op {
	if lssn < 0 {
		return opErr(badArg("max lssn %d < 0", lssn))
	}
	return setLogKey(ns, log, rel.maxLSSN(ns, log), "max lssn", encodeInt(lssn), expect)
}

// SetMaxTxID sets the log's max transaction id if its key is at version
// expect.
func SetMaxTxID(ns, log string, txid int64, expect Version) Op {
	return setLogKey(ns, log, rel.maxTxID(ns, log), "max txid", encodeInt(txid), expect)
}

// SetTruncation sets the log's truncation point if its key is at version
// expect. The caller makes it move forward only (it read the current point
// together with expect).
func SetTruncation(ns, log string, d dlog.DLSN, expect Version) Op {
	return setLogKey(ns, log, rel.truncation(ns, log), "truncation point", marshal(dlsnToPB(d)), expect)
}

// UpdateLogInfo replaces the log's settings if they are at version expect.
func UpdateLogInfo(ns, log string, info LogInfo, expect Version) Op {
	return setLogKey(ns, log, rel.logInfo(ns, log), "info", marshal(logInfoToPB(info)), expect)
}

// UpdateNamespaceInfo replaces a namespace's settings if they are at
// version expect (> 0, from GetNamespace).
func UpdateNamespaceInfo(ns string, info NamespaceInfo, expect Version) Op {
	if err := dlog.ValidateName(ns); err != nil {
		return opErr(fmt.Errorf("namespace: %w", err))
	}
	if expect <= 0 {
		return opErr(badArg("set info of namespace %s: expected version %d must be > 0", ns, expect))
	}
	what := "namespace " + ns
	return Op{
		desc:   "set info of " + what,
		checks: []check{versioned(rel.namespace(ns), expect, what)},
		writes: []kv.Op{kv.Put(rel.namespace(ns), marshal(namespaceToPB(info)), 0)},
	}
}

// ChangeNamespace reads namespace ns, applies change to its settings and
// writes them back with UpdateNamespaceInfo, again from a fresh read while
// someone else changed them meanwhile. ErrNotFound if ns does not exist.
func ChangeNamespace(ctx context.Context, st Store, ns string, change func(*NamespaceInfo)) error {
	for {
		info, v, err := st.GetNamespace(ctx, ns)
		if err != nil {
			return err
		}
		change(&info)
		_, err = st.Commit(ctx, UpdateNamespaceInfo(ns, info, v))
		if !errors.Is(err, ErrBadVersion) || errors.Is(err, ErrNotFound) {
			return err
		}
	}
}

// SetSubscription stores a subscription's position if it is at version
// expect (0: it must not exist yet, and the log must). Unlike
// CommitSubscription it does not check the direction: the caller read the
// current position along with expect.
func SetSubscription(ns, log, name string, pos dlog.DLSN, expect Version) Op {
	if err := checkLogNames(ns, log); err != nil {
		return opErr(err)
	}
	if err := dlog.ValidateName(name); err != nil {
		return opErr(fmt.Errorf("subscription: %w", err))
	}
	what := fmt.Sprintf("subscription %s of %s/%s", name, ns, log)
	key := rel.subscription(ns, log, name)
	checks := []check{versioned(key, expect, what)}
	if expect == 0 {
		checks = append([]check{logPresent(ns, log)}, checks...)
	}
	return Op{
		desc:   "set " + what,
		checks: checks,
		writes: []kv.Op{kv.Put(key, marshal(subscriptionToPB(pos, time.Now())), 0)},
	}
}

// CheckOwner writes nothing; it makes the Commit fail with ErrBadVersion
// unless o still holds the log's lock (same acquisition, same lease).
func CheckOwner(ns, log string, o Ownership) Op {
	if err := checkLogNames(ns, log); err != nil {
		return opErr(err)
	}
	if o == nil || o.Token() <= 0 {
		return opErr(badArg("check owner of %s/%s: no ownership", ns, log))
	}
	return Op{
		desc: "check owner of " + ns + "/" + log,
		checks: []check{{kind: checkOwner, key: rel.lock(ns, log), version: int64(o.Token()), lease: o.SessionID(),
			what: "lock of " + ns + "/" + log}},
	}
}

// CreateLedgerOp creates ledger metadata (ErrExists if present).
func CreateLedgerOp(id int64, m LedgerMetadata) Op {
	if id < 1 {
		return opErr(badArg("ledger id %d < 1", id))
	}
	if err := validateLedger(m); err != nil {
		return opErr(err)
	}
	what := fmt.Sprintf("ledger %d", id)
	return Op{
		desc:   "create " + what,
		checks: []check{{kind: checkAbsent, key: rel.ledger(id), what: what}},
		writes: []kv.Op{kv.Put(rel.ledger(id), marshal(ledgerToPB(m)), 0)},
	}
}

// UpdateLedgerOp replaces ledger metadata at version expect (> 0).
func UpdateLedgerOp(id int64, m LedgerMetadata, expect Version) Op {
	if id < 1 || expect <= 0 {
		return opErr(badArg("update ledger %d at version %d", id, expect))
	}
	if err := validateLedger(m); err != nil {
		return opErr(err)
	}
	what := fmt.Sprintf("ledger %d", id)
	return Op{
		desc:   "update " + what,
		checks: []check{versioned(rel.ledger(id), expect, what)},
		writes: []kv.Op{kv.Put(rel.ledger(id), marshal(ledgerToPB(m)), 0)},
	}
}

// DeleteLedgerOp deletes ledger metadata at version expect (0: any version;
// it must exist).
func DeleteLedgerOp(id int64, expect Version) Op {
	if id < 1 || expect < 0 {
		return opErr(badArg("delete ledger %d at version %d", id, expect))
	}
	what := fmt.Sprintf("ledger %d", id)
	c := check{kind: checkPresent, key: rel.ledger(id), what: what}
	if expect > 0 {
		c = versioned(rel.ledger(id), expect, what)
	}
	return Op{desc: "delete " + what, checks: []check{c}, writes: []kv.Op{kv.Delete(rel.ledger(id))}}
}

// Commit implements Store.
func (st *KVStore) Commit(ctx context.Context, ops ...Op) (int64, error) {
	if len(ops) > MaxCommitOps {
		return 0, badArg("commit of %d ops, at most %d", len(ops), MaxCommitOps)
	}
	for _, op := range ops {
		if op.err != nil {
			return 0, op.err
		}
		if op.desc == "" {
			return 0, badArg("commit: zero Op (build ops with the metadata builders)")
		}
	}
	return st.commit(ctx, ops)
}

// commit runs ops as one transaction. On a failed check it returns the
// first failing op's *OpError.
func (st *KVStore) commit(ctx context.Context, ops []Op) (int64, error) {
	root := st.ks.root
	var t kv.Txn
	var probes []check
	for _, op := range ops {
		for _, c := range op.checks {
			t.If = append(t.If, c.cmps(root)...)
			t.Else = append(t.Else, c.probe(root))
			probes = append(probes, c)
		}
		for _, w := range op.writes {
			w.Key = root + w.Key
			if w.End != "" {
				w.End = root + w.End
			}
			t.Then = append(t.Then, w)
		}
	}
	if err := kv.CheckTxn(t); err != nil {
		return 0, fmt.Errorf("%w: %w", dlog.ErrInvalidArgument, err)
	}
	resp, err := st.txn(ctx, t)
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		return resp.Revision, nil
	}
	i := 0
	for _, op := range ops {
		for _, c := range op.checks {
			if err := c.explain(resp.Results[i].KVs); err != nil {
				if c.kind == checkOwner {
					err = fmt.Errorf("%w: %w", ErrOwnershipLost, err)
				}
				return 0, &OpError{Op: op.desc, Err: err}
			}
			i++
		}
	}
	// Unreachable with a correct backend: the Else branch read the keys at
	// the revision at which a compare failed.
	return 0, &OpError{Op: describe(ops), Err: ErrBadVersion}
}

func describe(ops []Op) string {
	ds := make([]string, len(ops))
	for i, op := range ops {
		ds[i] = op.desc
	}
	return strings.Join(ds, ", ")
}

// isCheckFailure reports whether err is a failed expectation (as opposed to
// a transport or argument error).
func isCheckFailure(err error) bool {
	var oe *OpError
	return errors.As(err, &oe)
}
