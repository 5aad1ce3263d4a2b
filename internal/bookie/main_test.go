package bookie

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The crash test re-executes the test binary as a child running a
	// bookie and an adder (see crash_test.go).
	if os.Getenv(childEnv) != "" {
		os.Exit(runCrashChild())
	}
	goleak.VerifyTestMain(m)
}
