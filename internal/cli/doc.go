// Package cli implements the dlog command line: cobra commands that turn
// flags into component Configs and run them. Only cmd/dlog's main calls
// os.Exit; Main returns the exit code (0 ok, 1 error, 2 usage).
//
// # Output
//
// Every command that prints takes -o table (the default: aligned columns
// under a header row, or one sentence) or -o json: one JSON object per
// line on stdout and nothing else there, keys lower-case with dashes
// ("first-dlsn", "sequence-id"). Messages for people (progress,
// confirmations, "stopping") go to stderr. Errors are one line on stderr,
// "dlog: " and what went wrong and what to do next; usage errors (made
// with Usagef, flag parse errors, unknown commands, including an unknown
// command of a group such as `dlog log nosuch`) exit 2, every other error
// exits 1.
//
// # Configuration
//
// Every setting is a flag; a flag not given on the command line is taken
// from the YAML file of --config ($DLOG_CONFIG), then from the environment
// (DLOG_<COMMAND PATH>_<FLAG>, then DLOG_<FLAG>), then its default (see
// config.go for the file's layout). `dlog config print COMMAND` shows each
// effective value and its source.
//
// docs/cli.md is the user's guide to the commands; its links and the
// flags it names are checked by docs_test.go.
package cli
