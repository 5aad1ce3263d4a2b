// Package cli implements the dlog command line: cobra commands that turn
// flags into component Configs and run them. Only cmd/dlog's main calls
// os.Exit; Main returns the exit code (0 ok, 1 error, 2 usage).
package cli
