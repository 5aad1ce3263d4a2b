package nemesis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ErrNoGo is returned by Build when no go command is on PATH.
var ErrNoGo = errors.New("nemesis: go command not found")

// BuildConfig says how to build the dlog binary.
type BuildConfig struct {
	// ModuleDir is the root of the dlog module (where go.mod is). Default:
	// found by walking up from the working directory.
	ModuleDir string
	// Out is the path of the binary to write. Required.
	Out string
	// Tags are build tags, e.g. ["dlogbugs"] for a binary whose bug
	// switches can be turned on with DLOG_BUGS.
	Tags []string
	// Race builds with the race detector (slow; for hunting data races in
	// the servers themselves).
	Race bool
}

// Build compiles ./cmd/dlog into cfg.Out and returns its absolute path.
// It uses the go command of PATH with the caller's environment (module
// cache, GOFLAGS, GOTOOLCHAIN), so a second build is a cache hit.
func Build(ctx context.Context, cfg BuildConfig) (string, error) {
	if cfg.Out == "" {
		return "", errors.New("nemesis: build: no output path")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNoGo, err)
	}
	dir := cfg.ModuleDir
	if dir == "" {
		if dir, err = ModuleRoot(); err != nil {
			return "", err
		}
	}
	out, err := filepath.Abs(cfg.Out)
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", out}
	if len(cfg.Tags) > 0 {
		args = append(args, "-tags", strings.Join(cfg.Tags, ","))
	}
	if cfg.Race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/dlog")
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("nemesis: go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// ModuleRoot returns the directory holding the dlog go.mod, found by
// walking up from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/dlog-io/dlog\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("nemesis: not inside the dlog module (no go.mod for github.com/dlog-io/dlog above the working directory)")
		}
		dir = parent
	}
}
