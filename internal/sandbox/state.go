package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// stateFile is the name of the file, in the sandbox directory, that keeps
// the addresses chosen on first start.
const stateFile = "sandbox.json"

// stateVersion is the format version of stateFile.
const stateVersion = 1

// State is what a sandbox directory records about itself: the addresses
// the sandbox picked when it created each component, so that a restart
// brings them back where they were (bookie cookies name their address,
// and tools keep working with the same --metadata URL).
type State struct {
	Version int `json:"version"`
	// MetadataURL is the embedded etcd's client URL.
	MetadataURL string `json:"metadata-url"`
	// Bookies lists every bookie ever created in the directory, in index
	// order (bookie-1 first).
	Bookies []BookieState `json:"bookies"`
	// ProxyAddr and HTTPAddr are where the last run served (for tools
	// that look a sandbox up by its directory; they are not reused).
	ProxyAddr string `json:"proxy-addr,omitempty"`
	HTTPAddr  string `json:"http-addr,omitempty"`
}

// BookieState is one bookie of a sandbox directory.
type BookieState struct {
	ID     string `json:"id"`
	Listen string `json:"listen"`
}

// ReadState returns the state recorded in a sandbox directory; found is
// false when the directory holds none (a new sandbox).
func ReadState(dir string) (st State, found bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("sandbox: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, false, fmt.Errorf("sandbox: %s: %w", filepath.Join(dir, stateFile), err)
	}
	if st.Version != stateVersion {
		return State{}, false, fmt.Errorf("sandbox: %s: format version %d, want %d", filepath.Join(dir, stateFile), st.Version, stateVersion)
	}
	return st, true, nil
}

// writeState replaces the state file atomically (write, fsync, rename,
// fsync the directory), so a crash leaves the old or the new state.
func writeState(dir string, st State) error {
	st.Version = stateVersion
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	tmp := filepath.Join(dir, stateFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("sandbox: state: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("sandbox: state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sandbox: state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sandbox: state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("sandbox: state: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sandbox: state: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sandbox: state: sync %s: %w", dir, err)
	}
	return nil
}

// DefaultDir is the sandbox directory used when none is given:
// $XDG_DATA_HOME/dlog/sandbox, or ~/.local/share/dlog/sandbox when
// XDG_DATA_HOME is unset; ./dlog-sandbox when there is no home directory.
func DefaultDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "dlog", "sandbox")
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".local", "share", "dlog", "sandbox")
	}
	return "dlog-sandbox"
}
