package placement

import (
	"math/rand/v2"
	"slices"
)

// RackAware spreads every write set over at least two racks when the
// snapshot allows it. "When possible" is meant literally: if the writable,
// non-excluded bookies sit in a single rack, or too many of them share one
// rack for any layout to give every write set two racks, the policy still
// succeeds with the most even spread it can find instead of failing (like
// BookKeeper's rack-aware policy without enforceMinNumRacksPerWriteQuorum).
// A write quorum of 1 cannot span two racks and is placed like Default.
// Racks are scoped to regions.
type RackAware struct{ topology }

var _ Policy = (*RackAware)(nil)

// NewRackAware returns a RackAware policy over the snapshot (ids must be
// unique and non-empty; the slice is not retained) drawing from rng.
func NewRackAware(bookies []Bookie, rng *rand.Rand) (*RackAware, error) {
	t, err := newTopology(bookies, rng)
	if err != nil {
		return nil, err
	}
	return &RackAware{t}, nil
}

// Validate implements Policy.
func (p *RackAware) Validate(e, qw, qa int) error { return validateSizes(e, qw, qa) }

// twoRacks is the rack rule: a write set must not sit in a single rack.
var twoRacks = windowRule{ok: func(counts []int) bool {
	nonZero := 0
	for _, c := range counts {
		if c > 0 {
			nonZero++
		}
	}
	return nonZero != 1
}}

// rackLayoutPossible reports whether some cyclic layout of the rack counts
// keeps every write set of qw off a single rack: that is, no run of qw
// members of one rack. A rack with c members needs ⌈c/(qw−1)⌉ runs, each
// followed by a member of another rack.
func rackLayoutPossible(counts []int, qw int) bool {
	if qw < 2 {
		return false
	}
	n, most := 0, 0
	for _, c := range counts {
		n += c
		most = max(most, c)
	}
	runs := (most + qw - 2) / (qw - 1)
	return most < n && runs <= n-most
}

// NewEnsemble implements Policy.
func (p *RackAware) NewEnsemble(e, qw, qa int, exclude Set) ([]string, error) {
	if err := p.Validate(e, qw, qa); err != nil {
		return nil, err
	}
	cands := p.candidates(exclude, nil)
	if len(cands) < e {
		return nil, &NotEnoughBookiesError{Needed: e, Available: len(cands), Constraint: "distinct bookies"}
	}
	_, racks := groupBy(cands, rackKey, p.rng)
	capacity := make([]int, len(racks))
	for i, r := range racks {
		capacity[i] = len(r)
	}
	// The most even spread is the best chance: a layout keeping every
	// write set off a single rack exists exactly when no rack holds too
	// large a share.
	counts := spread(e, capacity, p.rng)
	var labels []int
	ok := false
	if rackLayoutPossible(counts, qw) {
		labels, ok = arrange(counts, qw, twoRacks, p.rng)
	}
	if !ok {
		// Best effort: interleave racks round robin, largest first.
		labels = labels[:0]
		order := byCountDesc(counts, p.rng)
		for round := 0; len(labels) < e; round++ {
			for _, i := range order {
				if round < counts[i] {
					labels = append(labels, i)
				}
			}
		}
	}
	members := make([][]string, len(racks))
	for i, r := range racks {
		for _, b := range r {
			members[i] = append(members[i], b.ID)
		}
	}
	return fillByLabel(labels, members), nil
}

// ReplaceBookie implements Policy. It picks at random among the
// candidates that keep the most write sets containing index on two racks
// (all of them, whenever any candidate can).
func (p *RackAware) ReplaceBookie(ensemble []string, index, qw, qa int, exclude Set) (string, error) {
	if err := validateReplace(ensemble, index, qw, qa); err != nil {
		return "", err
	}
	cands := p.candidates(exclude, ensemble)
	if len(cands) == 0 {
		return "", &NotEnoughBookiesError{Needed: 1, Available: 0, Constraint: "a bookie outside the ensemble"}
	}
	trial := slices.Clone(ensemble)
	var best []string
	bestScore := -1
	for _, c := range cands {
		trial[index] = c.ID
		score := 0
		for _, s := range writeSetsContaining(len(trial), qw, index) {
			if p.spansTwoRacks(trial, s, qw) {
				score++
			}
		}
		switch {
		case score > bestScore:
			best, bestScore = []string{c.ID}, score
		case score == bestScore:
			best = append(best, c.ID)
		}
	}
	return pick(p.rng, best), nil
}

// spansTwoRacks reports whether the write set starting at start holds two
// racks. A member missing from the snapshot counts as a rack of its own.
func (p *RackAware) spansTwoRacks(ensemble []string, start, qw int) bool {
	var first string
	for k := range qw {
		id := ensemble[(start+k)%len(ensemble)]
		r := "\x01" + id
		if b, ok := p.byID[id]; ok {
			r = rackKey(b)
		}
		if k == 0 {
			first = r
		} else if r != first {
			return true
		}
	}
	return false
}
