package placement

import (
	"cmp"
	"math/rand/v2"
	"slices"
)

// spread splits n over groups of the given capacities as evenly as
// possible (water filling: the largest share is minimal), breaking ties at
// random. The capacities must sum to at least n.
func spread(n int, capacity []int, rng *rand.Rand) []int {
	counts := make([]int, len(capacity))
	rank := rng.Perm(len(capacity))
	for range n {
		best := -1
		for g := range capacity {
			if counts[g] == capacity[g] {
				continue
			}
			if best < 0 || counts[g] < counts[best] || (counts[g] == counts[best] && rank[g] < rank[best]) {
				best = g
			}
		}
		counts[best]++
	}
	return counts
}

// arrangeBudget bounds the depth-first search (in placements tried). The
// balanced layout settles nearly every real request first; the search is
// for small, tight ones, whose whole space (at most a few thousand nodes
// for E ≤ 7) fits the budget, so there it is exact. On large infeasible
// requests it bounds the time spent proving infeasibility (~100 ms).
const arrangeBudget = 20_000

// windowRule judges the label counts of one write set (counts[l] = members
// with label l). monotone means a violation can only get worse as members
// are added, so partly filled windows can be judged too.
type windowRule struct {
	ok       func(counts []int) bool
	monotone bool
}

// arrange lays out labels on a cyclic ensemble of sum(counts) positions,
// using label l exactly counts[l] times, so that every write set (qw
// consecutive positions) satisfies the rule. It first tries the balanced
// layout, then searches depth first, trying the label with the most copies
// left first (random among ties); ok=false means no layout exists or the
// budget ran out.
func arrange(counts []int, qw int, rule windowRule, rng *rand.Rand) (labels []int, ok bool) {
	rank := rng.Perm(len(counts))
	if seq := balanced(counts, rank); allWindowsOK(seq, qw, rule) {
		return seq, true
	}
	return search(counts, qw, rule, rank)
}

// balanced spaces every label as evenly as the counts allow: position p
// goes to the label furthest behind its ideal share counts[l]·(p+1)/n
// (Tijdeman's chairman assignment), so every stretch of the ensemble holds
// close to its proportional share of each label.
func balanced(counts []int, rank []int) []int {
	n := 0
	for _, c := range counts {
		n += c
	}
	seq := make([]int, n)
	placed := make([]int, len(counts))
	for p := range n {
		best := -1
		var bestLag int
		for l, c := range counts {
			if placed[l] == c {
				continue
			}
			lag := c*(p+1) - placed[l]*n
			if best < 0 || lag > bestLag || (lag == bestLag && rank[l] < rank[best]) {
				best, bestLag = l, lag
			}
		}
		seq[p] = best
		placed[best]++
	}
	return seq
}

func allWindowsOK(seq []int, qw int, rule windowRule) bool {
	n := len(seq)
	labels := 0
	for _, l := range seq {
		labels = max(labels, l+1)
	}
	win := make([]int, labels)
	for s := range distinctStarts(n, qw) {
		clear(win)
		for k := range qw {
			win[seq[(s+k)%n]]++
		}
		if !rule.ok(win) {
			return false
		}
	}
	return true
}

// search is arrange's depth-first search.
func search(counts []int, qw int, rule windowRule, rank []int) (labels []int, ok bool) {
	n := 0
	for _, c := range counts {
		n += c
	}
	seq := make([]int, n)
	remaining := slices.Clone(counts)
	win := make([]int, len(counts))
	budget := arrangeBudget
	starts := distinctStarts(n, qw)

	// check judges the window starting at start using positions < filled.
	check := func(start, filled int) bool {
		clear(win)
		for k := range qw {
			if pos := (start + k) % n; pos < filled {
				win[seq[pos]]++
			}
		}
		return rule.ok(win)
	}
	// placedOK checks the windows that position p completes (or, for a
	// monotone rule, touches).
	placedOK := func(p int) bool {
		for _, s := range writeSetsContaining(n, qw, p) {
			complete := s <= p && s+qw-1 <= p // no wrap, fully placed
			last := p == n-1                  // everything placed
			if complete || last || rule.monotone {
				if s >= starts {
					continue
				}
				if !check(s, p+1) {
					return false
				}
			}
		}
		return true
	}
	order := make([][]int, n) // per depth, to avoid reallocating
	var rec func(p int) bool
	rec = func(p int) bool {
		if p == n {
			return true
		}
		if budget--; budget < 0 {
			return false
		}
		o := order[p][:0]
		for l, r := range remaining {
			if r > 0 {
				o = append(o, l)
			}
		}
		slices.SortFunc(o, func(a, b int) int {
			return cmp.Or(cmp.Compare(remaining[b], remaining[a]), cmp.Compare(rank[a], rank[b]))
		})
		order[p] = o
		for _, l := range o {
			seq[p] = l
			remaining[l]--
			if placedOK(p) && rec(p+1) {
				return true
			}
			remaining[l]++
		}
		return false
	}
	if !rec(0) {
		return nil, false
	}
	return seq, true
}

// fillByLabel assigns members to positions: members[l] are consumed in
// order by the positions labelled l.
func fillByLabel(labels []int, members [][]string) []string {
	out := make([]string, len(labels))
	next := make([]int, len(members))
	for i, l := range labels {
		out[i] = members[l][next[l]]
		next[l]++
	}
	return out
}

// rackKey scopes a rack to its region.
func rackKey(b Bookie) string { return b.Region + "\x00" + b.Rack }

// groupBy groups bookies by key, groups ordered by first appearance (the
// input is in id order, so the result is deterministic); members shuffled.
func groupBy(bs []Bookie, key func(Bookie) string, rng *rand.Rand) (keys []string, groups [][]Bookie) {
	idx := map[string]int{}
	for _, b := range bs {
		k := key(b)
		i, ok := idx[k]
		if !ok {
			i = len(keys)
			idx[k] = i
			keys = append(keys, k)
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], b)
	}
	for _, g := range groups {
		rng.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
	}
	return keys, groups
}

// rackSpread chooses n bookies from bs spreading them over racks as evenly
// as possible, returned in round-robin rack order so that consecutive
// choices sit in different racks whenever possible.
func rackSpread(bs []Bookie, n int, rng *rand.Rand) []string {
	_, racks := groupBy(bs, rackKey, rng)
	capacity := make([]int, len(racks))
	for i, r := range racks {
		capacity[i] = len(r)
	}
	counts := spread(n, capacity, rng)
	out := make([]string, 0, n)
	// Racks with most picks first, so the largest rack never ends up with
	// two picks in a row at the end.
	order := byCountDesc(counts, rng)
	for round := 0; len(out) < n; round++ {
		for _, i := range order {
			if round < counts[i] {
				out = append(out, racks[i][round].ID)
			}
		}
	}
	return out
}

func byCountDesc(counts []int, rng *rand.Rand) []int {
	order := rng.Perm(len(counts))
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(counts[b], counts[a]) })
	return order
}
