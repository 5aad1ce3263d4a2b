package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// quickstartStep is one fenced shell block of the README's quickstart.
type quickstartStep struct {
	// mode is the block's marker (<!-- quickstart: MODE -->): "run" (run
	// it, it must succeed and print the text block after it, if any),
	// "background" (start it and wait until it is ready), "follow" (start
	// it; it must eventually print expect), "skip".
	mode   string
	expect []string
	script string
	output *string
}

// parseQuickstart reads the shell blocks of the "## Quickstart" section.
func parseQuickstart(readme string) ([]quickstartStep, error) {
	start := strings.Index(readme, "\n## Quickstart")
	if start < 0 {
		return nil, fmt.Errorf("no \"## Quickstart\" section")
	}
	section := readme[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	marker := regexp.MustCompile(`^<!-- quickstart: ([a-z]+)(?:; expect: (.*?))? -->$`)
	lines := strings.Split(section, "\n")
	var steps []quickstartStep
	mode, expect := "", []string(nil)
	lastRun := -1 // index of the run step a text block belongs to
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if m := marker.FindStringSubmatch(line); m != nil {
			mode, expect = m[1], strings.Fields(m[2])
			continue
		}
		if !strings.HasPrefix(line, "```") {
			if strings.TrimSpace(line) != "" {
				lastRun = -1 // prose between a command and a text block
			}
			continue
		}
		lang := strings.TrimPrefix(line, "```")
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		text := strings.Join(body, "\n") + "\n"
		switch lang {
		case "sh":
			if mode == "" {
				return nil, fmt.Errorf("shell block %q has no <!-- quickstart: MODE --> marker", text)
			}
			steps = append(steps, quickstartStep{mode: mode, expect: expect, script: text})
			lastRun = -1
			if mode == "run" {
				lastRun = len(steps) - 1
			}
			mode, expect = "", nil
		case "text":
			if lastRun < 0 {
				return nil, fmt.Errorf("output block %q follows no run block", text)
			}
			steps[lastRun].output = &text
			lastRun = -1
		default:
			return nil, fmt.Errorf("quickstart block of language %q: want sh or text", lang)
		}
	}
	return steps, nil
}

// normalizeOutput hides what changes from run to run: txids are
// timestamps.
func normalizeOutput(s string) string {
	return regexp.MustCompile(`"txid":\d+`).ReplaceAllString(s, `"txid":N`)
}

func readReadme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadmeFirstCommands: the README opens with how to start dlog and how
// to run the tests, exactly as CI runs them.
func TestReadmeFirstCommands(t *testing.T) {
	readme := readReadme(t)
	lines := strings.Split(readme, "\n")
	head := strings.Join(lines[:min(40, len(lines))], "\n")
	if !strings.Contains(head, "go test") {
		t.Fatal("'go test' is not in the README's first 40 lines")
	}
	open := strings.Index(readme, "```sh\n")
	if open < 0 {
		t.Fatal("no shell block in the README")
	}
	block := readme[open+len("```sh\n"):]
	block = block[:strings.Index(block, "```")]
	cmds := strings.Split(strings.TrimSpace(block), "\n")
	if len(cmds) != 2 || !strings.HasPrefix(cmds[0], "go run ./cmd/dlog sandbox ") ||
		!strings.HasPrefix(cmds[1], "go vet ./... && go test -race -short ./... ") {
		t.Fatalf("the README's first block is not the two first commands:\n%s", block)
	}
	if _, err := os.Stat(filepath.Join(moduleRoot(t), "cmd", "dlog", "main.go")); err != nil {
		t.Fatalf("go run ./cmd/dlog: %v", err)
	}
}

// TestReadmeQuickstart runs the README's quickstart as written, with the
// built binary as `dlog`, against the sandbox its first block starts.
func TestReadmeQuickstart(t *testing.T) {
	steps, err := parseQuickstart(readReadme(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	home, listen := t.TempDir(), freeAddr(t)
	env := []string{
		"PATH=" + filepath.Dir(dlogBin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		// Every default pointed at this test's own directory and ports.
		"HOME=" + home, "XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"DLOG_SANDBOX_LISTEN=" + listen, "DLOG_SANDBOX_HTTP=127.0.0.1:0", "DLOG_SERVER=" + listen,
		"DLOG_CONFIG=",
	}
	var background []*child
	type follower struct {
		c      *child
		expect []string
	}
	var followers []follower
	ran := 0
	for _, st := range steps {
		script := strings.TrimSpace(st.script)
		switch st.mode {
		case "skip":
		case "background":
			c := startProcess(t, nil, env, "/bin/sh", "-c", "exec "+script)
			for {
				line, ok := c.line(ctx)
				if !ok {
					t.Fatalf("%q exited before it was ready: %v\n%s", script, c.err, c.stderr.String())
				}
				if strings.Contains(line, "Ctrl-C") {
					break
				}
			}
			background = append(background, c)
		case "follow":
			followers = append(followers, follower{startProcess(t, nil, env, "/bin/sh", "-c", "exec "+script), st.expect})
		case "run":
			cmd := exec.CommandContext(ctx, "/bin/sh", "-e", "-c", st.script)
			cmd.Env = append(os.Environ(), env...)
			out, err := cmd.Output()
			if err != nil {
				stderr := ""
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("quickstart block failed: %v\n%s\nstdout:\n%s\nstderr:\n%s", err, st.script, out, stderr)
			}
			if st.output != nil && normalizeOutput(string(out)) != normalizeOutput(*st.output) {
				t.Fatalf("quickstart block\n%s\nprinted:\n%s\nthe README says:\n%s", st.script, out, *st.output)
			}
			ran++
		default:
			t.Fatalf("unknown quickstart marker %q", st.mode)
		}
	}
	if len(background) != 1 || ran < 3 || len(followers) != 1 {
		t.Fatalf("the quickstart should start a sandbox, run commands and follow a log: %d background, %d run, %d follow",
			len(background), ran, len(followers))
	}
	for _, f := range followers {
		var got []string
		for len(got) < len(f.expect) {
			line, ok := f.c.line(ctx)
			if !ok {
				t.Fatalf("follower ended after %v: %v\n%s", got, f.c.err, f.c.stderr.String())
			}
			got = append(got, line)
		}
		if strings.Join(got, " ") != strings.Join(f.expect, " ") {
			t.Fatalf("follower printed %v; the README says %v", got, f.expect)
		}
		f.c.Stop()
		if code := f.c.exitCode(); code != 0 {
			t.Fatalf("follower exit %d after Ctrl-C\n%s", code, f.c.stderr.String())
		}
	}
	for _, b := range background {
		b.Stop()
		if code := b.exitCode(); code != 0 {
			t.Fatalf("sandbox exit %d after Ctrl-C\n%s", code, b.stderr.String())
		}
	}
	// The sandbox kept its data where the README says.
	if _, err := os.Stat(filepath.Join(home, "data", "dlog", "sandbox", "sandbox.json")); err != nil {
		t.Fatalf("sandbox data not in $XDG_DATA_HOME/dlog/sandbox: %v", err)
	}
}
