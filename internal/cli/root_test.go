package cli

import (
	"encoding/json"
	"fmt"
	"os"

	"bytes"
	"github.com/spf13/cobra"
	"strings"
	"testing"
)

func TestExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(t.Context(), []string{"version"}, nil, &out, &errb); code != ExitOK || !strings.HasPrefix(out.String(), "dlog ") {
		t.Fatalf("version: code %d, out %q", code, out.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main(t.Context(), []string{"version", "--no-such-flag"}, nil, &out, &errb); code != ExitUsage {
		t.Fatalf("bad flag: code %d; want %d (stderr %q)", code, ExitUsage, errb.String())
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/dlog.yaml"
	if err := os.WriteFile(file, []byte("output: json\nconfig-test:\n  beta: from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DLOG_CONFIG_TEST_BETA", "from-env")
	t.Setenv("DLOG_CONFIG_TEST_GAMMA", "from-env")

	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"--config", file, "config", "print", "config-test"}, nil, &out, &errb)
	if code != ExitOK {
		t.Fatalf("config print: code %d, stderr %q", code, errb.String())
	}
	got := map[string]configSetting{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var s configSetting
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		got[s.Flag] = s
	}
	want := map[string][2]string{
		"alpha": {"a-default", "default"},
		"beta":  {"from-file", "config file"}, // file beats env
		"gamma": {"from-env", "environment"},
	}
	for flag, w := range want {
		if g := got[flag]; g.Value != w[0] || g.Source != w[1] {
			t.Errorf("%s = %q from %q; want %q from %q", flag, g.Value, g.Source, w[0], w[1])
		}
	}
	if got["beta"].Env != "DLOG_CONFIG_TEST_BETA" {
		t.Errorf("env name %q", got["beta"].Env)
	}

	// A flag beats everything.
	out.Reset()
	code = Main(t.Context(), []string{"--config", file, "config-test", "--beta", "from-flag"}, nil, &out, &errb)
	if code != ExitOK || strings.TrimSpace(out.String()) != "a-default from-flag from-env" {
		t.Fatalf("config-test: code %d out %q", code, out.String())
	}
}

func init() {
	// A hidden command whose flags exercise the precedence rules.
	commands = append(commands, func(e *env) *cobra.Command {
		var a, b, g string
		c := &cobra.Command{Use: "config-test", Hidden: true, RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(e.stdout, a, b, g)
			return err
		}}
		c.Flags().StringVar(&a, "alpha", "a-default", "")
		c.Flags().StringVar(&b, "beta", "b-default", "")
		c.Flags().StringVar(&g, "gamma", "g-default", "")
		return c
	})
}
