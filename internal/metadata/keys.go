package metadata

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata/kv"
)

// MaxIDLength is the longest bookie or proxy id, in bytes.
const MaxIDLength = 255

// ValidateID checks a bookie or proxy id: 1 to MaxIDLength printable ASCII
// bytes (0x21..0x7e) without '/' or '\', not starting with '.'. That admits
// host:port, [v6]:port and free-form ids while keeping every id one path
// element, so it maps to exactly one key. Errors wrap dlog.ErrInvalidName.
func ValidateID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: empty id", dlog.ErrInvalidName)
	case len(id) > MaxIDLength:
		return fmt.Errorf("%w: id of %d bytes, longer than %d", dlog.ErrInvalidName, len(id), MaxIDLength)
	case id[0] == '.':
		return fmt.Errorf("%w: id %q starts with '.'", dlog.ErrInvalidName, id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= 0x20 || c >= 0x7f || c == '/' || c == '\\' {
			return fmt.Errorf("%w: id has byte %#x at %d; allowed are printable ASCII except '/' and '\\'", dlog.ErrInvalidName, c, i)
		}
	}
	return nil
}

// validateNamePrefix checks a ListLogs prefix: empty, or what could start a
// valid name.
func validateNamePrefix(p string) error {
	if p == "" {
		return nil
	}
	if err := dlog.ValidateName(p); err != nil {
		return fmt.Errorf("prefix: %w", err)
	}
	return nil
}

// keyspace builds every key of one cluster. The layout is documented in
// doc.go; every name going in here was validated, and because valid names
// hold no '/', each (kind, names...) maps to exactly one key.
type keyspace struct {
	root string // "/dlog/<cluster>/"
}

func newKeyspace(cluster string) (keyspace, error) {
	if err := dlog.ValidateName(cluster); err != nil {
		return keyspace{}, fmt.Errorf("cluster name: %w", err)
	}
	return keyspace{root: "/dlog/" + cluster + "/"}, nil
}

// fixed-width decimal keeps byte order equal to numeric order for ids >= 0.
func num(n int64) string { return fmt.Sprintf("%019d", n) }

func parseNum(s string) (int64, bool) {
	if len(s) != 19 {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

func (k keyspace) bookies() string            { return k.root + "bookies/" }
func (k keyspace) bookie(id string) string    { return k.bookies() + id }
func (k keyspace) cookies() string            { return k.root + "cookies/" }
func (k keyspace) cookie(id string) string    { return k.cookies() + id }
func (k keyspace) proxies() string            { return k.root + "proxies/" }
func (k keyspace) proxy(id string) string     { return k.proxies() + id }
func (k keyspace) ledgers() string            { return k.root + "ledgers/" }
func (k keyspace) ledger(id int64) string     { return k.ledgers() + num(id) }
func (k keyspace) ledgerIDGen() string        { return k.root + "idgen/ledger" }
func (k keyspace) namespaces() string         { return k.root + "namespaces/" }
func (k keyspace) namespace(ns string) string { return k.namespaces() + ns }

// logs is the listing space of a namespace: exactly one key per log, and
// nothing else, so a prefix range lists logs and only logs.
func (k keyspace) logs(ns string) string     { return k.root + "logs/" + ns + "/" }
func (k keyspace) log(ns, log string) string { return k.logs(ns) + log }
func (k keyspace) logData(ns, log string) string {
	return k.root + "logdata/" + ns + "/" + log + "/"
}

// The keys below a log, relative to logData.
const (
	relInfo          = "info"
	relMaxLSSN       = "maxlssn"
	relMaxTxID       = "maxtxid"
	relTruncation    = "truncation"
	relLock          = "lock"
	relSegments      = "segments/"
	relSubscriptions = "subscriptions/"
)

func (k keyspace) logInfo(ns, log string) string    { return k.logData(ns, log) + relInfo }
func (k keyspace) maxLSSN(ns, log string) string    { return k.logData(ns, log) + relMaxLSSN }
func (k keyspace) maxTxID(ns, log string) string    { return k.logData(ns, log) + relMaxTxID }
func (k keyspace) truncation(ns, log string) string { return k.logData(ns, log) + relTruncation }
func (k keyspace) lock(ns, log string) string       { return k.logData(ns, log) + relLock }
func (k keyspace) segments(ns, log string) string   { return k.logData(ns, log) + relSegments }
func (k keyspace) segment(ns, log string, lssn int64) string {
	return k.segments(ns, log) + num(lssn)
}
func (k keyspace) subscriptions(ns, log string) string {
	return k.logData(ns, log) + relSubscriptions
}
func (k keyspace) subscription(ns, log, name string) string {
	return k.subscriptions(ns, log) + name
}

// parseLog inverts log(): it returns the namespace and log a listing key
// names, or ok=false for any other key.
func (k keyspace) parseLog(key string) (ns, log string, ok bool) {
	rest, found := strings.CutPrefix(key, k.root+"logs/")
	if !found {
		return "", "", false
	}
	ns, log, found = strings.Cut(rest, "/")
	if !found || dlog.ValidateName(ns) != nil || dlog.ValidateName(log) != nil {
		return "", "", false
	}
	return ns, log, true
}

// parseLogData inverts logData(): the namespace, log and the key relative
// to the log's data prefix.
func (k keyspace) parseLogData(key string) (ns, log, rel string, ok bool) {
	rest, found := strings.CutPrefix(key, k.root+"logdata/")
	if !found {
		return "", "", "", false
	}
	parts := strings.SplitN(rest, "/", 3)
	if len(parts) != 3 || dlog.ValidateName(parts[0]) != nil || dlog.ValidateName(parts[1]) != nil {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// prefixRange is the [start, end) of every key starting with p.
func prefixRange(p string) (string, string) { return p, kv.PrefixEnd(p) }
