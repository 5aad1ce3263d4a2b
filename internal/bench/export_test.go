package bench

import "time"

// Quantiles records samples in a histogram and returns its quantiles
// (for tests of the histogram).
func Quantiles(samples []time.Duration, qs ...float64) []time.Duration {
	h := &histogram{}
	for _, s := range samples {
		h.add(s)
	}
	out := make([]time.Duration, len(qs))
	for i, q := range qs {
		out[i] = h.quantile(q)
	}
	return out
}
