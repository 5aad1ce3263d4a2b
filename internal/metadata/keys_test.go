package metadata

import (
	"errors"
	"strings"
	"testing"

	"github.com/dlog-io/dlog"
)

func TestKeyLayout(t *testing.T) {
	ks, err := newKeyspace("prod")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, got, want string
	}{
		{"bookie", ks.bookie("10.0.0.1:3181"), "/dlog/prod/bookies/10.0.0.1:3181"},
		{"cookie", ks.cookie("b"), "/dlog/prod/cookies/b"},
		{"proxy", ks.proxy("p"), "/dlog/prod/proxies/p"},
		{"ledger", ks.ledger(42), "/dlog/prod/ledgers/0000000000000000042"},
		{"idgen", ks.ledgerIDGen(), "/dlog/prod/idgen/ledger"},
		{"namespace", ks.namespace("ns"), "/dlog/prod/namespaces/ns"},
		{"log listing", ks.log("ns", "l"), "/dlog/prod/logs/ns/l"},
		{"log info", ks.logInfo("ns", "l"), "/dlog/prod/logdata/ns/l/info"},
		{"max lssn", ks.maxLSSN("ns", "l"), "/dlog/prod/logdata/ns/l/maxlssn"},
		{"max txid", ks.maxTxID("ns", "l"), "/dlog/prod/logdata/ns/l/maxtxid"},
		{"truncation", ks.truncation("ns", "l"), "/dlog/prod/logdata/ns/l/truncation"},
		{"lock", ks.lock("ns", "l"), "/dlog/prod/logdata/ns/l/lock"},
		{"segment", ks.segment("ns", "l", 3), "/dlog/prod/logdata/ns/l/segments/0000000000000000003"},
		{"subscription", ks.subscription("ns", "l", "s"), "/dlog/prod/logdata/ns/l/subscriptions/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("key = %q, want %q", tt.got, tt.want)
			}
		})
	}
	if _, err := newKeyspace("a/b"); !errors.Is(err, dlog.ErrInvalidName) {
		t.Fatalf("cluster a/b: %v", err)
	}
}

func TestNumOrder(t *testing.T) {
	ids := []int64{0, 1, 9, 10, 99, 100, 1 << 40, 1<<63 - 1}
	for i := 1; i < len(ids); i++ {
		if num(ids[i-1]) >= num(ids[i]) {
			t.Fatalf("num(%d) >= num(%d)", ids[i-1], ids[i])
		}
		if n, ok := parseNum(num(ids[i])); !ok || n != ids[i] {
			t.Fatalf("parseNum(num(%d)) = %d, %v", ids[i], n, ok)
		}
	}
}

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"127.0.0.1:3181", true},
		{"[::1]:3181", true},
		{"bookie-1", true},
		{"host.example.com:3181", true},
		{"", false},
		{".hidden", false},
		{"a/b", false},
		{`a\b`, false},
		{"a b", false},
		{"a\tb", false},
		{"a\x7fb", false},
		{"ü", false},
		{strings.Repeat("x", MaxIDLength), true},
		{strings.Repeat("x", MaxIDLength+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := ValidateID(tt.id)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
			if err != nil && !errors.Is(err, dlog.ErrInvalidName) {
				t.Fatalf("error %v does not wrap ErrInvalidName", err)
			}
		})
	}
}

// logKeys lists every key a log can have (with a sample segment and
// subscription).
func logKeys(ks keyspace, ns, log string) []string {
	return []string{
		ks.log(ns, log), ks.logInfo(ns, log), ks.maxLSSN(ns, log), ks.maxTxID(ns, log),
		ks.truncation(ns, log), ks.lock(ns, log), ks.segment(ns, log, 1), ks.subscription(ns, log, "s"),
	}
}

// FuzzLogKeys checks the name -> key mapping: every key stays under the
// cluster root, the mapping is injective and invertible, and no key of one
// log lies in another log's subtree or listing range.
func FuzzLogKeys(f *testing.F) {
	f.Add("ns", "a", "ns", "ab")
	f.Add("ns", "a", "ns", "a.b")
	f.Add("n", "s-a", "n-s", "a")
	f.Add("a", "b", "a.b", "c")
	f.Add("ns", "a", "ns", "a")
	f.Add("x", "segments", "x", "info")
	ks, err := newKeyspace("c1")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ns1, log1, ns2, log2 string) {
		if checkLogNames(ns1, log1) != nil || checkLogNames(ns2, log2) != nil {
			return
		}
		for _, k := range append(logKeys(ks, ns1, log1), ks.namespace(ns1)) {
			if !strings.HasPrefix(k, ks.root) {
				t.Fatalf("key %q outside the cluster root", k)
			}
		}
		if ns, log, ok := ks.parseLog(ks.log(ns1, log1)); !ok || ns != ns1 || log != log1 {
			t.Fatalf("parseLog(%q) = %q, %q, %v", ks.log(ns1, log1), ns, log, ok)
		}
		for _, k := range logKeys(ks, ns1, log1)[1:] {
			ns, log, _, ok := ks.parseLogData(k)
			if !ok || ns != ns1 || log != log1 {
				t.Fatalf("parseLogData(%q) = %q, %q, %v", k, ns, log, ok)
			}
			if !strings.HasPrefix(k, ks.logData(ns1, log1)) {
				t.Fatalf("key %q outside its log's subtree", k)
			}
		}
		// A listing range holds listing keys only.
		for _, k := range logKeys(ks, ns1, log1)[1:] {
			if strings.HasPrefix(k, ks.logs(ns2)) {
				t.Fatalf("data key %q inside the listing of %q", k, ns2)
			}
		}
		if strings.HasPrefix(ks.log(ns1, log1), ks.logs(ns2)) != (ns1 == ns2) {
			t.Fatalf("listing key %q vs listing of namespace %q", ks.log(ns1, log1), ns2)
		}
		if ns1 == ns2 && log1 == log2 {
			return
		}
		if ks.log(ns1, log1) == ks.log(ns2, log2) {
			t.Fatalf("%s/%s and %s/%s share a listing key", ns1, log1, ns2, log2)
		}
		d1, d2 := ks.logData(ns1, log1), ks.logData(ns2, log2)
		if strings.HasPrefix(d1, d2) || strings.HasPrefix(d2, d1) {
			t.Fatalf("subtrees %q and %q nest", d1, d2)
		}
		for _, k := range logKeys(ks, ns1, log1) {
			if strings.HasPrefix(k, d2) {
				t.Fatalf("key %q of %s/%s lies in the subtree of %s/%s", k, ns1, log1, ns2, log2)
			}
		}
	})
}

// FuzzValidateID: a valid id is one path element, so ids map to distinct
// keys and can be read back from them.
func FuzzValidateID(f *testing.F) {
	f.Add("127.0.0.1:3181", "127.0.0.1:31810")
	f.Add("a", "a/b")
	ks, _ := newKeyspace("c")
	f.Fuzz(func(t *testing.T, a, b string) {
		if ValidateID(a) != nil {
			return
		}
		if strings.ContainsAny(a, "/\\ ") {
			t.Fatalf("valid id %q has a separator", a)
		}
		if got := strings.TrimPrefix(ks.bookie(a), ks.bookies()); got != a {
			t.Fatalf("bookie key of %q reads back as %q", a, got)
		}
		if ValidateID(b) == nil && a != b && ks.bookie(a) == ks.bookie(b) {
			t.Fatalf("ids %q and %q share a key", a, b)
		}
	})
}
