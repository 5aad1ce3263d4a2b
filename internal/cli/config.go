package cli

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// Configuration comes from, highest precedence first:
//  1. command-line flags;
//  2. the YAML config file (--config, or $DLOG_CONFIG);
//  3. DLOG_* environment variables;
//  4. the flag defaults.
//
// Every setting is a flag. In the YAML file a flag is a top-level key
// (`server: 127.0.0.1:7000`) or, for one command only, a key under the
// command's path (`bookie: {dir: /data/b1}`, `bench: {write: {size: 1024}}`).
// The environment variable of flag --foo-bar is DLOG_FOO_BAR, and of a
// command's flag DLOG_<COMMAND PATH>_FOO_BAR (e.g. DLOG_BOOKIE_DIR); the
// plain form applies to every command that has the flag.

// source says where a flag's effective value came from.
type source string

const (
	sourceDefault source = "default"
	sourceFlag    source = "flag"
	sourceFile    source = "config file"
	sourceEnv     source = "environment"
)

// settings is the loaded config file: flattened "path.to.flag" → value.
type settings map[string]string

func loadSettings(path string) (settings, error) {
	if path == "" {
		return settings{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	out := settings{}
	flatten("", tree, out)
	return out, nil
}

func flatten(prefix string, v any, out settings) {
	switch t := v.(type) {
	case map[string]any:
		for k, sub := range t {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, sub, out)
		}
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			parts[i] = fmt.Sprint(e)
		}
		out[prefix] = strings.Join(parts, ",")
	case nil:
	default:
		out[prefix] = fmt.Sprint(t)
	}
}

// commandPath is the command's path below the root, e.g. ["bench","write"].
func commandPath(c *cobra.Command) []string {
	var p []string
	for x := c; x != nil && x.HasParent(); x = x.Parent() {
		p = append([]string{x.Name()}, p...)
	}
	return p
}

func envName(parts ...string) string {
	s := "DLOG_" + strings.Join(parts, "_")
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// applyConfig fills every flag of c that was not given on the command line
// from the config file or the environment and records each value's source.
func applyConfig(c *cobra.Command, file settings, sources map[string]source) error {
	path := commandPath(c)
	var firstErr error
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		if f.Changed {
			sources[f.Name] = sourceFlag
			return
		}
		sources[f.Name] = sourceDefault
		// Most specific first: command section, then top level.
		var keys []string
		for i := len(path); i >= 0; i-- {
			keys = append(keys, strings.Join(append(append([]string{}, path[:i]...), f.Name), "."))
		}
		for _, k := range keys {
			if v, ok := file[k]; ok {
				if err := f.Value.Set(v); err != nil && firstErr == nil {
					firstErr = usageError{fmt.Errorf("config file key %q: %w", k, err)}
				}
				sources[f.Name] = sourceFile
				return
			}
		}
		for i := len(path); i >= 0; i-- {
			name := envName(append(append([]string{}, path[:i]...), f.Name)...)
			if v, ok := os.LookupEnv(name); ok {
				if err := f.Value.Set(v); err != nil && firstErr == nil {
					firstErr = usageError{fmt.Errorf("environment %s: %w", name, err)}
				}
				sources[f.Name] = sourceEnv
				return
			}
		}
	})
	return firstErr
}

// configSetting is one line of `dlog config print`.
type configSetting struct {
	Command string `json:"command"`
	Flag    string `json:"flag"`
	Value   string `json:"value"`
	Source  string `json:"source"`
	Env     string `json:"env"`
}

func newConfigCmd(e *env) *cobra.Command {
	cfg := &cobra.Command{Use: "config", Short: "Inspect the effective configuration"}
	print := &cobra.Command{
		Use:   "print [COMMAND...]",
		Short: "Show every setting of a command with its value and where it came from",
		Long: `Show the effective configuration of a command (the global settings when no
command is named): each flag's value and whether it came from a flag, the
config file, a DLOG_* environment variable or the default. ENV names the
variable that set a value from the environment, and otherwise the
command's own variable for the flag.`,
		RunE: func(c *cobra.Command, args []string) error {
			target := c.Root()
			if len(args) > 0 {
				t, rest, err := c.Root().Find(args)
				if err != nil || len(rest) > 0 {
					return Usagef("unknown command %q", strings.Join(args, " "))
				}
				target = t
			}
			file, err := loadSettings(e.configPath)
			if err != nil {
				return err
			}
			// Resolve the target's flags the way running it would.
			target.InheritedFlags()
			sources := map[string]source{}
			if err := applyConfig(target, file, sources); err != nil {
				return err
			}
			var rows []configSetting
			path := commandPath(target)
			target.Flags().VisitAll(func(f *pflag.Flag) {
				if f.Name == "help" {
					return
				}
				env := envName(append(append([]string{}, path...), f.Name)...)
				if sources[f.Name] == sourceEnv {
					// The variable that set it (the command's own or a
					// less specific one), found as applyConfig did.
					for i := len(path); i >= 0; i-- {
						name := envName(append(append([]string{}, path[:i]...), f.Name)...)
						if _, ok := os.LookupEnv(name); ok {
							env = name
							break
						}
					}
				}
				rows = append(rows, configSetting{
					Command: strings.Join(path, " "),
					Flag:    f.Name,
					Value:   f.Value.String(),
					Source:  string(sources[f.Name]),
					Env:     env,
				})
			})
			sort.Slice(rows, func(i, j int) bool { return rows[i].Flag < rows[j].Flag })
			p := e.printer()
			for _, r := range rows {
				p.row(r, r.Flag, r.Value, r.Source, r.Env)
			}
			return p.flush("FLAG", "VALUE", "SOURCE", "ENV")
		},
	}
	cfg.AddCommand(print)
	return cfg
}
