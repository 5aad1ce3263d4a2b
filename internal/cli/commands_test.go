package cli

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestClientCommands runs every client command against an in-process
// sandbox, in table and JSON form, and parses what they print.
func TestClientCommands(t *testing.T) {
	sb := testSandbox(t, 3)
	srv := []string{"--server", sb.Addr()}
	run := func(stdin string, args ...string) result {
		t.Helper()
		return mustDlog(t, stdin, append(args, srv...)...)
	}
	one := func(r result) map[string]any {
		t.Helper()
		objs := r.jsonLines(t)
		if len(objs) != 1 {
			t.Fatalf("want one JSON object, got %d: %s", len(objs), r)
		}
		return objs[0]
	}

	if o := one(run("", "log", "create", "orders", "-o", "json")); o["action"] != "created" || o["log"] != "orders" || o["namespace"] != "default" {
		t.Fatalf("log create: %v", o)
	}
	if r := run("", "log", "create", "other"); !strings.Contains(r.stdout, "created log other") {
		t.Fatalf("log create (table): %s", r)
	}
	if o := one(run("a\nb\nc\n", "write", "orders", "-o", "json")); o["records"] != 3.0 || o["first-dlsn"] != "1:0:0" {
		t.Fatalf("write summary: %v", o)
	}
	acks := run("d\n\xff\xfe\n\nlast", "write", "orders", "-v", "-o", "json").jsonLines(t)
	if len(acks) != 4 {
		t.Fatalf("write -v: %v", acks)
	}
	for i, a := range acks {
		if a["line"] != float64(i+1) || a["dlsn"] == "" || a["txid"] == nil {
			t.Fatalf("ack %d: %v", i, a)
		}
	}
	if acks[0]["payload"] != "d" || acks[1]["payload-base64"] != "//4=" || acks[2]["payload"] != "" || acks[3]["payload"] != "last" {
		t.Fatalf("ack payloads: %v", acks)
	}
	if r := run("x\n", "write", "orders", "-v"); !strings.Contains(r.stdout, "line 1") {
		t.Fatalf("write -v (table): %s", r)
	}

	recs := run("", "read", "orders", "-o", "json").jsonLines(t)
	if len(recs) != 8 {
		t.Fatalf("read: %d records: %v", len(recs), recs)
	}
	for i, r := range recs {
		if r["sequence-id"] != float64(i) || r["dlsn"] == nil || r["txid"] == nil {
			t.Fatalf("record %d: %v", i, r)
		}
	}
	if r := run("", "read", "orders", "--limit", "2"); r.stdout != "a\nb\n" {
		t.Fatalf("read --limit 2: %q", r.stdout)
	}
	third := recs[2]["dlsn"].(string)
	if r := run("", "read", "orders", "--from", third, "--limit", "1"); r.stdout != "c\n" {
		t.Fatalf("read --from %s: %q", third, r.stdout)
	}
	if r := run("", "read", "orders", "--from-txid", fmt.Sprint(int64(recs[7]["txid"].(float64))), "-o", "json"); len(r.jsonLines(t)) < 1 {
		t.Fatalf("read --from-txid: %s", r)
	}
	if r := run("", "read", "orders", "--from-end"); r.stdout != "" {
		t.Fatalf("read --from-end without --follow: %q", r.stdout)
	}

	info := one(run("", "log", "info", "orders", "-o", "json"))
	if info["record-count"] != 8.0 || info["segments"] != 1.0 || info["last-dlsn"] != recs[7]["dlsn"] {
		t.Fatalf("log info: %v", info)
	}
	if r := run("", "log", "info", "orders"); !strings.Contains(r.stdout, "records") || !strings.Contains(r.stdout, "8") {
		t.Fatalf("log info (table): %s", r)
	}
	logs := run("", "log", "list", "-o", "json").jsonLines(t)
	if len(logs) != 2 || logs[0]["log"] != "orders" || logs[1]["log"] != "other" {
		t.Fatalf("log list: %v", logs)
	}
	if r := run("", "log", "list", "--prefix", "oth"); r.stdout != "LOG\nother\n" {
		t.Fatalf("log list --prefix: %q", r.stdout)
	}

	segs := run("", "segments", "orders", "-o", "json").jsonLines(t)
	if len(segs) != 1 || segs[0]["lssn"] != 1.0 || segs[0]["state"] != "in-progress" {
		t.Fatalf("segments: %v", segs)
	}
	if r := run("", "segments", "orders"); !strings.HasPrefix(r.stdout, "LSSN") {
		t.Fatalf("segments (table): %s", r)
	}
	if bs := run("", "bookies", "-o", "json").jsonLines(t); len(bs) != 3 || bs[0]["id"] != "bookie-1" || bs[0]["state"] != "writable" {
		t.Fatalf("bookies: %v", bs)
	}
	if ps := run("", "proxies", "-o", "json").jsonLines(t); len(ps) != 1 || ps[0]["address"] != sb.Addr() {
		t.Fatalf("proxies: %v", ps)
	}

	ledgerID := fmt.Sprint(int64(segs[0]["ledger-id"].(float64)))
	li := one(run("", "ledger", "info", ledgerID, "-o", "json"))
	if li["ensemble-size"] != 3.0 || li["ack-quorum"] != 2.0 || li["state"] != "open" {
		t.Fatalf("ledger info: %v", li)
	}
	if custom, _ := li["custom"].(map[string]any); custom["dlog.log"] != "orders" {
		t.Fatalf("ledger info custom: %v", li)
	}
	lrecs := run("", "ledger", "read", ledgerID, "-o", "json").jsonLines(t)
	if len(lrecs) < 8 || lrecs[0]["payload"] != "a" {
		t.Fatalf("ledger read: %v", lrecs)
	}
	if raw := run("", "ledger", "read", ledgerID, "--raw", "-o", "json").jsonLines(t); len(raw) < 1 || raw[0]["codec"] == nil {
		t.Fatalf("ledger read --raw: %v", raw)
	}

	if o := one(run("", "subscription", "commit", "orders", "billing", third, "-o", "json")); o["dlsn"] != third {
		t.Fatalf("subscription commit: %v", o)
	}
	if o := one(run("", "subscription", "get", "orders", "billing", "-o", "json")); o["dlsn"] != third || o["updated"] == nil {
		t.Fatalf("subscription get: %v", o)
	}
	if r := run("", "read", "orders", "--from-subscription", "billing", "--limit", "1"); r.stdout != "d\n" {
		t.Fatalf("read --from-subscription: %q", r.stdout)
	}
	if r := runDlog(t, "", append([]string{"subscription", "get", "orders", "nobody"}, srv...)...); r.code != ExitError || !strings.Contains(r.stderr, "subscription commit") {
		t.Fatalf("unknown subscription: %s", r)
	}

	if o := one(run("", "log", "truncate", "orders", "--to", third, "-o", "json")); o["truncated-to"] != third {
		t.Fatalf("log truncate: %v", o)
	}
	if r := run("", "read", "orders", "--limit", "1"); r.stdout != "c\n" {
		t.Fatalf("read after truncate: %q", r.stdout)
	}
	if o := one(run("", "log", "set-retention", "other", "36h", "-o", "json")); o["action"] != "retention-set" || o["retention-ms"] != float64(36*3600*1000) {
		t.Fatalf("log set-retention: %v", o)
	}
	if o := one(run("", "log", "info", "other", "-o", "json")); o["retention-ms"] != float64(36*3600*1000) {
		t.Fatalf("log info after set-retention: %v", o)
	}
	if r := runDlog(t, "", append([]string{"log", "set-retention", "other", "-1h"}, srv...)...); r.code != ExitUsage {
		t.Fatalf("negative retention: %s", r)
	}
	if r := runDlog(t, "", append([]string{"log", "set-retention", "nobody", "1h"}, srv...)...); r.code != ExitError || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("retention of a missing log: %s", r)
	}
	if o := one(run("", "log", "delete", "other", "-o", "json")); o["action"] != "deleted" {
		t.Fatalf("log delete: %v", o)
	}
	if r := runDlog(t, "", append([]string{"log", "info", "other"}, srv...)...); r.code != ExitError || !strings.Contains(r.stderr, "dlog log create other") {
		t.Fatalf("info of a deleted log: %s", r)
	}
	if r := runDlog(t, "", append([]string{"log", "delete", "other"}, srv...)...); r.code != ExitError || !strings.Contains(r.stderr, "nothing to delete") || strings.Contains(r.stderr, "log create") {
		t.Fatalf("delete of a deleted log: %s", r)
	}

	// Namespace administration.
	if o := one(run("", "namespace", "create", "team-b", "--retention", "48h", "-o", "json")); o["action"] != "created" {
		t.Fatalf("namespace create: %v", o)
	}
	if r := run("", "namespace", "list"); !strings.Contains(r.stdout, "team-b") {
		t.Fatalf("namespace list: %q", r.stdout)
	}
	if o := one(run("", "namespace", "info", "team-b", "-o", "json")); o["retention-ms"] != float64(48*3600*1000) || o["created"] == nil {
		t.Fatalf("namespace info: %v", o)
	}
	if o := one(run("", "namespace", "set-retention", "team-b", "0", "-o", "json")); o["action"] != "retention-set" || o["retention-ms"] != float64(0) {
		t.Fatalf("namespace set-retention: %v", o)
	}
	if r := runDlog(t, "", append([]string{"namespace", "create", "team-b"}, srv...)...); r.code != ExitError || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("namespace create again: %s", r)
	}
	run("", "log", "create", "inside", "--namespace", "team-b")
	if r := runDlog(t, "", append([]string{"namespace", "delete", "team-b"}, srv...)...); r.code != ExitError || !strings.Contains(r.stderr, "holds logs") {
		t.Fatalf("namespace delete with a log: %s", r)
	}
	run("", "log", "delete", "inside", "--namespace", "team-b")
	if o := one(run("", "namespace", "delete", "team-b", "-o", "json")); o["action"] != "deleted" {
		t.Fatalf("namespace delete: %v", o)
	}
	if r := runDlog(t, "", append([]string{"namespace", "info", "team-b"}, srv...)...); r.code != ExitError || !strings.Contains(r.stderr, "not found") {
		t.Fatalf("info of a deleted namespace: %s", r)
	}
	if r := runDlog(t, "", append([]string{"namespace", "create", "a/b"}, srv...)...); r.code != ExitUsage {
		t.Fatalf("bad namespace name: %s", r)
	}

	// Namespaces: a sandbox serves any namespace it is asked for.
	run("", "log", "create", "orders", "--namespace", "team-a")
	run("z\n", "write", "orders", "--namespace", "team-a")
	if r := run("", "read", "orders", "--namespace", "team-a"); r.stdout != "z\n" {
		t.Fatalf("read in namespace team-a: %q", r.stdout)
	}

	// A record the service refuses: the records before it are in, the
	// error names its line and says nothing after it was written.
	big := strings.Repeat("x", 2<<20)
	r := runDlog(t, "ok-1\n"+big+"\nnever\n", append([]string{"write", "orders", "--batch-records", "1"}, srv...)...)
	if r.code != ExitError || !strings.Contains(r.stderr, "line 2") || !strings.Contains(r.stderr, "1 records acknowledged") || !strings.Contains(r.stderr, "not written") {
		t.Fatalf("write of a too-large record: %s", r)
	}

	if o := one(mustDlog(t, "", "version", "-o", "json")); o["version"] != Version {
		t.Fatalf("version: %v", o)
	}
}

// TestUsageAndErrors checks exit codes and messages of bad calls: 2 for
// bad flags, arguments and input, 1 for failures, each saying what to do.
func TestUsageAndErrors(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir()) // no default sandbox to fall back on
	t.Setenv("DLOG_SERVER", "")
	down := freeAddr(t) // nothing listens there
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"unknown command", "", []string{"no-such-command"}, ExitUsage, "unknown command"},
		{"unknown flag", "", []string{"read", "x", "--no-such-flag"}, ExitUsage, "unknown flag"},
		{"unknown subcommand", "", []string{"log", "no-such-command"}, ExitUsage, "want one of create, delete, info, list, set-retention, truncate"},
		{"unknown completion shell", "", []string{"completion", "tcsh"}, ExitUsage, "want one of bash"},
		{"bad output", "", []string{"log", "list", "-o", "yaml"}, ExitUsage, "want table or json"},
		{"missing argument", "", []string{"log", "create"}, ExitUsage, "takes LOG"},
		{"extra argument", "", []string{"segments", "a", "b"}, ExitUsage, "takes LOG"},
		{"bad log name", "", []string{"log", "create", "a/b"}, ExitUsage, "log name"},
		{"bad namespace", "", []string{"log", "list", "--namespace", "a/b", "--server", down}, ExitUsage, "--namespace"},
		{"bad DLSN", "", []string{"read", "x", "--from", "abc"}, ExitUsage, "3:1042:7"},
		{"two positions", "", []string{"read", "x", "--from-start", "--from-end"}, ExitUsage, "at most one"},
		{"negative limit", "", []string{"read", "x", "--limit", "-1"}, ExitUsage, "--limit"},
		{"bad batch", "", []string{"write", "x", "--batch-records", "0"}, ExitUsage, "--batch-records"},
		{"missing file", "", []string{"write", "x", "--file", "/no/such/file"}, ExitUsage, "--file"},
		{"bad server", "", []string{"log", "list", "--server", "nohostport"}, ExitUsage, "host:port"},
		{"truncate needs a target", "", []string{"log", "truncate", "x"}, ExitUsage, "--to"},
		{"bad ledger id", "", []string{"ledger", "info", "abc"}, ExitUsage, "ledger id"},
		{"bad subscription DLSN", "", []string{"subscription", "commit", "x", "s", "nope"}, ExitUsage, "DLSN"},
		{"bad sandbox replication", "", []string{"sandbox", "--ensemble-size", "3"}, ExitUsage, "together"},
		{"bad log level", "", []string{"sandbox", "--log-level", "loud"}, ExitUsage, "log level"},
		{"unreachable server", "", []string{"log", "list", "--server", down}, ExitError, "cannot reach a dlog proxy at " + down + ": is `dlog sandbox` running? set --server or DLOG_SERVER"},
		{"unreachable on write", "a\n", []string{"write", "x", "--server", down}, ExitError, "DLOG_SERVER"},
		{"no metadata", "", []string{"admin", "inspect"}, ExitUsage, "--metadata is required"},
		{"unreachable metadata", "", []string{"admin", "inspect", "--metadata", "http://" + down}, ExitError, "cannot reach the metadata service"},
		{"yes without repair", "", []string{"admin", "inspect", "--yes", "--metadata", "http://" + down}, ExitUsage, "--repair"},
		{"bench needs a target", "", []string{"bench", "write", "--sandbox", "--server", "127.0.0.1:1"}, ExitUsage, "--sandbox"},
		{"bench bad size", "", []string{"bench", "write", "--size", "0"}, ExitUsage, "--size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runDlog(t, tc.stdin, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("dlog %s: want exit %d and %q in stderr; got %s", strings.Join(tc.args, " "), tc.code, tc.want, r)
			}
			if !strings.HasPrefix(r.stderr, "dlog: ") {
				t.Fatalf("stderr does not start with \"dlog: \": %q", r.stderr)
			}
		})
	}
}

// TestReadPositions covers the read positions the client test does not:
// --from-start, --from-end with --follow (only records written after it
// started), --follow with --limit, and reading or writing a log that does
// not exist (exit 1, saying how to create it).
func TestReadPositions(t *testing.T) {
	sb := testSandbox(t, 1)
	srv := []string{"--server", sb.Addr()}
	run := func(stdin string, args ...string) result {
		t.Helper()
		return mustDlog(t, stdin, append(args, srv...)...)
	}
	run("", "log", "create", "pos")
	run("a\nb\nc\n", "write", "pos")
	if r := run("", "read", "pos", "--from-start", "--limit", "2"); r.stdout != "a\nb\n" {
		t.Fatalf("read --from-start --limit 2: %q", r.stdout)
	}
	if r := run("", "read", "pos", "--follow", "--limit", "3"); r.stdout != "a\nb\nc\n" {
		t.Fatalf("read --follow --limit 3: %q", r.stdout)
	}

	// A follower from the end sees only what is written after it started:
	// write until it has printed one record.
	done := make(chan result, 1)
	go func() {
		var out, errb strings.Builder
		code := Main(t.Context(), append([]string{"read", "pos", "--from-end", "--follow", "--limit", "1", "-o", "json"}, srv...),
			strings.NewReader(""), &out, &errb)
		done <- result{code: code, stdout: out.String(), stderr: errb.String()}
	}()
	var r result
	for i := 0; ; i++ {
		run(fmt.Sprintf("new-%d\n", i), "write", "pos")
		select {
		case r = <-done:
		case <-time.After(100 * time.Millisecond): // a poll period, not a synchronisation
			if i > 600 {
				t.Fatal("read --from-end --follow printed nothing after a minute of writes")
			}
			continue
		}
		break
	}
	objs := r.jsonLines(t)
	if r.code != 0 || len(objs) != 1 || !strings.HasPrefix(objs[0]["payload"].(string), "new-") || objs[0]["sequence-id"].(float64) < 3 {
		t.Fatalf("read --from-end --follow --limit 1: %s", r)
	}

	for _, args := range [][]string{{"ledger", "info", "999999"}, {"ledger", "read", "999999"}} {
		r := runDlog(t, "", append(args, srv...)...)
		if r.code != ExitError || !strings.Contains(r.stderr, "ledger 999999 not found (deleted, or never created") {
			t.Errorf("dlog %s of a missing ledger: %s", strings.Join(args, " "), r)
		}
	}
	for _, args := range [][]string{{"read", "missing"}, {"write", "missing"}, {"segments", "missing"}} {
		r := runDlog(t, "x\n", append(args, srv...)...)
		if r.code != ExitError || !strings.Contains(r.stderr, "dlog log create missing") {
			t.Errorf("dlog %s of a missing log: %s", args[0], r)
		}
	}
}
