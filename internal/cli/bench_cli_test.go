package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBenchCommands runs every `dlog bench` mode against a running
// sandbox with -o json and parses the one object each prints, then the
// table form of one mode.
func TestBenchCommands(t *testing.T) {
	sb := testSandbox(t, 3)
	srv := []string{"--server", sb.Addr()}
	for _, tc := range []struct {
		mode       string
		args       []string
		write, e2e bool
	}{
		{"write", []string{"--records", "400", "--concurrency", "4", "--batch", "10", "--size", "64"}, true, false},
		{"read", []string{"--records", "400", "--log", "bench-read"}, false, false},
		{"tail", []string{"--records", "100", "--rate", "2000", "--readers", "2"}, false, true},
		{"e2e", []string{"--records", "300", "--concurrency", "4", "--log", "bench-e2e"}, true, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			r := mustDlog(t, "", append(append([]string{"bench", tc.mode, "-o", "json"}, tc.args...), srv...)...)
			objs := r.jsonLines(t)
			if len(objs) != 1 {
				t.Fatalf("want one JSON object: %s", r)
			}
			o := objs[0]
			if o["mode"] != tc.mode || o["errors"] != 0.0 || o["records"].(float64) < 100 || o["server"] != sb.Addr() {
				t.Fatalf("bench %s: %v", tc.mode, o)
			}
			if o["records-per-second"].(float64) <= 0 || o["mb-per-second"].(float64) <= 0 || o["elapsed-seconds"].(float64) <= 0 {
				t.Fatalf("bench %s throughput: %v", tc.mode, o)
			}
			for key, want := range map[string]bool{"write-latency-ms": tc.write, "e2e-latency-ms": tc.e2e} {
				l, ok := o[key].(map[string]any)
				if ok != want {
					t.Fatalf("bench %s: %s present %v, want %v: %v", tc.mode, key, ok, want, o)
				}
				if !ok {
					continue
				}
				prev := 0.0
				for _, q := range []string{"p50", "p90", "p99", "p999", "max"} {
					v, _ := l[q].(float64)
					if v <= 0 || v < prev {
						t.Fatalf("bench %s %s: %s = %v after %v: %v", tc.mode, key, q, v, prev, l)
					}
					prev = v
				}
				if l["count"].(float64) < 100 {
					t.Fatalf("bench %s %s count: %v", tc.mode, key, l)
				}
			}
		})
	}

	// The table: throughput, then latency percentiles; no progress bar
	// when stdout is not a terminal.
	r := mustDlog(t, "", append([]string{"bench", "write", "--records", "200"}, srv...)...)
	for _, h := range []string{"RECORDS/S", "MB/S", "P50", "P90", "P99", "P99.9", "MAX", "write (ack)"} {
		if !strings.Contains(r.stdout, h) {
			t.Fatalf("bench table lacks %q:\n%s", h, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "\r") {
		t.Fatalf("progress bar drawn on a non-terminal:\n%q", r.stdout)
	}

	// --sandbox: the bench starts its own sandbox and says so.
	sbr := mustDlog(t, "", "bench", "write", "--sandbox", "--records", "100", "-o", "json")
	if o := sbr.jsonLines(t); len(o) != 1 || o[0]["sandbox"] != true || o[0]["records"] != 100.0 || !strings.Contains(sbr.stderr, "sandbox with 3 bookies") {
		t.Fatalf("bench --sandbox: %s", sbr)
	}

	// A duration alone bounds a read of the default record count, here
	// taken from the config file (a setting not given as a flag counts
	// as given).
	cfg := filepath.Join(t.TempDir(), "dlog.yaml")
	if err := os.WriteFile(cfg, []byte("bench:\n  read:\n    records: 150\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := mustDlog(t, "", append([]string{"--config", cfg, "bench", "read", "--duration", "2m", "--log", "bench-read-2", "-o", "json"}, srv...)...).jsonLines(t)
	if len(o) != 1 || o[0]["records"] != 150.0 {
		t.Fatalf("bench read --duration with records from the config file: %v", o)
	}
}
