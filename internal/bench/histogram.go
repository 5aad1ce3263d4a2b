package bench

import (
	"math/bits"
	"time"
)

// subBucketBits sets the histogram's precision: each power of two is cut
// into 2^subBucketBits buckets, so a recorded value is off by less than
// 1/2^subBucketBits (under 1%) of itself.
const subBucketBits = 7

const (
	subBuckets = 1 << subBucketBits
	// numBuckets covers every non-negative int64 nanosecond count.
	numBuckets = (64-subBucketBits)*subBuckets + subBuckets
)

// histogram counts durations in log-linear buckets: exact below
// 2^subBucketBits ns, then subBuckets buckets per power of two. Adding is
// O(1) and allocation-free; a histogram is used by one goroutine and
// merged into another afterwards.
type histogram struct {
	counts [numBuckets]int64
	n      int64
	max    time.Duration
}

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	n := bits.Len64(v) // >= subBucketBits+1
	shift := n - subBucketBits - 1
	sub := int(v>>shift) & (subBuckets - 1)
	return (n-subBucketBits)*subBuckets + sub
}

// bucketValue is a representative value (the middle) of bucket b.
func bucketValue(b int) uint64 {
	if b < subBuckets {
		return uint64(b)
	}
	n := b/subBuckets + subBucketBits
	shift := n - subBucketBits - 1
	low := uint64(subBuckets+b%subBuckets) << shift
	return low + (uint64(1)<<shift)/2
}

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1): the smallest bucket
// whose cumulative count reaches q of all values, capped at the maximum.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	rank = min(max(rank, 1), h.n)
	var seen int64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketValue(b)), h.max)
		}
	}
	return h.max
}

// Latency summarises a latency distribution.
type Latency struct {
	Count                    int64
	P50, P90, P99, P999, Max time.Duration
}

func (h *histogram) latency() *Latency {
	if h.n == 0 {
		return nil
	}
	return &Latency{Count: h.n, P50: h.quantile(0.50), P90: h.quantile(0.90), P99: h.quantile(0.99),
		P999: h.quantile(0.999), Max: h.max}
}
