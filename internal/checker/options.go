package checker

import (
	"fmt"
	"time"

	"github.com/dlog-io/dlog/internal/history"
)

// Options configure Check.
type Options struct {
	// MaxExamples is the number of examples kept per property. Default 5;
	// negative keeps none.
	MaxExamples int
	// IdempotentWrites declares that the system deduplicates retried
	// appends (G7 phase 2): a value at more than one DLSN is then a
	// violation even when the client retried it. Default false: such
	// duplicates are counted under duplicate-retried as a statistic.
	IdempotentWrites bool
	// StrictTruncation applies the literal G1 rule to acknowledged records
	// missing below the truncation point: only a truncate invoked after
	// the append completed excuses them. The default excuses them when a
	// truncate covering them did not complete before the append was
	// invoked, i.e. when it may have been linearized after the append (see
	// the package documentation for why).
	StrictTruncation bool
	// FenceClasses are the error classes (Event.Error) that mean "this
	// writer epoch is fenced / lost ownership". Default {"fenced"}.
	FenceClasses []string
	// PorcupineTimeout bounds the whole porcupine check. Default 30 s;
	// negative disables porcupine. A check that runs out of time reports
	// the verdict "unknown" (not a violation).
	PorcupineTimeout time.Duration
	// PorcupineMaxOps is the largest partition porcupine is given (its
	// memory grows with the square of a partition's size). Larger
	// partitions are skipped and reported. Default 10000.
	PorcupineMaxOps int
	// VisualizationPath, if set, is where porcupine's HTML visualization
	// of the first illegal partition is written.
	VisualizationPath string
}

// DefaultOptions returns the defaults that a zero Options also gets.
func DefaultOptions() Options {
	return Options{
		MaxExamples:      5,
		FenceClasses:     []string{history.ClassFenced},
		PorcupineTimeout: 30 * time.Second,
		PorcupineMaxOps:  10000,
	}
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.PorcupineMaxOps < 0 {
		return fmt.Errorf("checker: PorcupineMaxOps %d < 0", o.PorcupineMaxOps)
	}
	return nil
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	switch {
	case o.MaxExamples == 0:
		o.MaxExamples = d.MaxExamples
	case o.MaxExamples < 0:
		o.MaxExamples = 0
	}
	if o.FenceClasses == nil {
		o.FenceClasses = d.FenceClasses
	}
	if o.PorcupineTimeout == 0 {
		o.PorcupineTimeout = d.PorcupineTimeout
	}
	if o.PorcupineMaxOps == 0 {
		o.PorcupineMaxOps = d.PorcupineMaxOps
	}
	return o
}
