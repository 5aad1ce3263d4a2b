// Command dlog is the single dlog binary: servers (sandbox, bookie, proxy),
// client commands, admin tools and benchmarks. See `dlog help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dlog-io/dlog/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
