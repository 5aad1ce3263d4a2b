package ledger

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// latencySamples is how many recent read latencies the adaptive
	// speculative timeout looks at.
	latencySamples = 256
	// latencyRecompute: the p99 is recomputed every this many samples
	// (sorting 256 durations per read would cost more than it saves).
	latencyRecompute = 32
)

// latencyWindow keeps recent successful read latencies and derives the
// speculative read timeout from them: their p99, clamped to [floor,
// ceiling]. Before enough samples arrived, or when not adaptive, the timeout
// is the ceiling (Config.SpeculativeReadTimeout). Safe for concurrent use.
type latencyWindow struct {
	ceiling, floor time.Duration
	adaptive       bool
	current        atomic.Int64 // nanoseconds

	mu      sync.Mutex
	samples [latencySamples]time.Duration
	n       int // samples recorded so far (saturates at latencySamples*2)
	next    int // ring position
	since   int // samples since the last recompute
}

func newLatencyWindow(ceiling, floor time.Duration, adaptive bool) *latencyWindow {
	w := &latencyWindow{ceiling: ceiling, floor: floor, adaptive: adaptive}
	w.current.Store(int64(ceiling))
	return w
}

// timeout returns the current speculative timeout; 0 means speculation is
// off.
func (w *latencyWindow) timeout() time.Duration { return time.Duration(w.current.Load()) }

// observe records one successful read latency.
func (w *latencyWindow) observe(d time.Duration) {
	if !w.adaptive || w.ceiling <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.samples[w.next] = d
	w.next = (w.next + 1) % latencySamples
	w.n = min(w.n+1, 2*latencySamples)
	w.since++
	if w.since < latencyRecompute || w.n < latencyRecompute {
		return
	}
	w.since = 0
	count := min(w.n, latencySamples)
	sorted := slices.Clone(w.samples[:count])
	slices.Sort(sorted)
	p99 := sorted[(count*99)/100]
	w.current.Store(int64(min(max(p99, w.floor), w.ceiling)))
}
