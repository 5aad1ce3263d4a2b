package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigPrintWrite checks `dlog config print write` against the four
// sources of a real command's flags: a flag beats the config file, which
// beats the environment (the command's own variable before the plain
// one), which beats the default.
func TestConfigPrintWrite(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "dlog.yaml")
	fileServer, flagServer := freeAddr(t), freeAddr(t) // nothing listens there
	yaml := "server: " + fileServer + "\nwrite:\n  namespace: from-file\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DLOG_CONFIG", "")
	t.Setenv("DLOG_SERVER", "10.0.0.2:7000")    // loses to the file
	t.Setenv("DLOG_NAMESPACE", "from-env")      // loses to the file's write section
	t.Setenv("DLOG_BATCH_BYTES", "111")         // loses to the command's own variable
	t.Setenv("DLOG_WRITE_BATCH_BYTES", "222")   // wins
	t.Setenv("DLOG_WRITE_BATCH_RECORDS", "333") // loses to the flag
	got := map[string][2]string{}
	for _, o := range mustDlog(t, "", "--config", cfg, "-o", "json", "config", "print", "write").jsonLines(t) {
		if o["command"] != "write" {
			t.Fatalf("config print write: %v", o)
		}
		got[o["flag"].(string)] = [2]string{o["value"].(string), o["source"].(string)}
	}
	envOf := map[string]string{}
	for _, o := range mustDlog(t, "", "--config", cfg, "-o", "json", "config", "print", "write").jsonLines(t) {
		envOf[o["flag"].(string)] = o["env"].(string)
	}
	t.Setenv("DLOG_TIMEOUT", "1m")
	for _, o := range mustDlog(t, "", "--config", cfg, "-o", "json", "config", "print", "write").jsonLines(t) {
		if o["flag"] == "timeout" && (o["value"] != "1m0s" || o["env"] != "DLOG_TIMEOUT") {
			t.Errorf("config print write: timeout from the plain variable: %v", o)
		}
	}
	if envOf["batch-bytes"] != "DLOG_WRITE_BATCH_BYTES" || envOf["timeout"] != "DLOG_WRITE_TIMEOUT" {
		t.Errorf("config print write: env names %v", envOf)
	}
	want := map[string][2]string{
		"server":        {fileServer, "config file"},
		"namespace":     {"from-file", "config file"},
		"batch-bytes":   {"222", "environment"},
		"batch-records": {"333", "environment"},
		"timeout":       {"30s", "default"},
		"output":        {"json", "flag"},
	}
	for flag, w := range want {
		if got[flag] != w {
			t.Errorf("config print write: %s = %v; want %v", flag, got[flag], w)
		}
	}

	// Running the command: the file's server, unless a flag says otherwise.
	if r := runDlog(t, "a\n", "--config", cfg, "write", "x"); r.code != ExitError || !strings.Contains(r.stderr, fileServer) {
		t.Fatalf("write with the server from the file: %s", r)
	}
	if r := runDlog(t, "a\n", "--config", cfg, "write", "x", "--server", flagServer); r.code != ExitError || !strings.Contains(r.stderr, flagServer) {
		t.Fatalf("write with --server: %s", r)
	}

	// The table form names the command-specific variable of each flag.
	tr := mustDlog(t, "", "--config", cfg, "config", "print", "write")
	if !strings.HasPrefix(tr.stdout, "FLAG") || !strings.Contains(tr.stdout, "DLOG_WRITE_BATCH_BYTES") {
		t.Fatalf("config print (table):\n%s", tr.stdout)
	}
	// No command: the global settings.
	if g := mustDlog(t, "", "config", "print", "-o", "json").jsonLines(t); len(g) != 2 {
		t.Fatalf("config print: %v", g)
	}
	// Errors: an unknown command is a usage error; a missing config file
	// is one too, naming the file.
	if r := runDlog(t, "", "config", "print", "no-such-command"); r.code != ExitUsage || !strings.Contains(r.stderr, "unknown command") {
		t.Fatalf("config print of an unknown command: %s", r)
	}
	if r := runDlog(t, "", "--config", "/no/such/dlog.yaml", "version"); r.code != ExitUsage || !strings.Contains(r.stderr, "/no/such/dlog.yaml") {
		t.Fatalf("missing config file: %s", r)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("write:\n  batch-records: lots\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runDlog(t, "", "--config", bad, "write", "x"); r.code != ExitUsage || !strings.Contains(r.stderr, "write.batch-records") {
		t.Fatalf("bad config value: %s", r)
	}
}

// TestCompletion generates the completion script of every shell cobra
// supports; an unknown shell is a usage error.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		r := mustDlog(t, "", "completion", sh)
		if len(r.stdout) < 200 || !strings.Contains(r.stdout, "dlog") {
			t.Fatalf("completion %s: %d bytes:\n%.300s", sh, len(r.stdout), r.stdout)
		}
	}
	// Completion of a command's arguments and flags works through
	// cobra's hidden __complete command, which the scripts call.
	r := mustDlog(t, "", "__complete", "read", "x", "--from")
	if !strings.Contains(r.stdout, "--from-start") || !strings.Contains(r.stdout, "--from-txid") {
		t.Fatalf("__complete read --from:\n%s", r.stdout)
	}
	if r := runDlog(t, "", "completion", "no-such-shell"); r.code != ExitUsage {
		t.Fatalf("completion of an unknown shell: %s", r)
	}
}
