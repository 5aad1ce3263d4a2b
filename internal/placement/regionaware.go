package placement

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// RegionAware places ensembles so that every possible ack quorum — any Qa
// members of any write set — spans at least MinRegions regions: an
// acknowledged entry is then on disks in MinRegions regions, which is how a
// ledger gets synchronous cross-region replication with the ordinary ack
// rule. E is spread over the regions as evenly as possible, and over racks
// as evenly as possible inside each region. Unlike RackAware it never
// relaxes its rule: when the rule cannot be met it fails with
// ErrNotEnoughBookies.
type RegionAware struct {
	topology
	minRegions int
}

var _ Policy = (*RegionAware)(nil)

// NewRegionAware returns a RegionAware policy over the snapshot (ids must
// be unique and non-empty; the slice is not retained) drawing from rng.
// minRegions must be at least 1.
func NewRegionAware(bookies []Bookie, rng *rand.Rand, minRegions int) (*RegionAware, error) {
	if minRegions < 1 {
		return nil, fmt.Errorf("%w: min regions %d must be at least 1", ErrInvalidConfig, minRegions)
	}
	t, err := newTopology(bookies, rng)
	if err != nil {
		return nil, err
	}
	return &RegionAware{topology: t, minRegions: minRegions}, nil
}

// MinRegions returns the number of regions every ack quorum spans.
func (p *RegionAware) MinRegions() int { return p.minRegions }

// Validate implements Policy. Beyond E ≥ Qw ≥ Qa ≥ 1 it applies
// BookKeeper's region-aware rules: Qa ≥ minRegions, and
// Qa > Qw − Qw/minRegions (integer division). The second keeps the
// guarantee in degraded mode: with a write set split as evenly as possible
// over only minRegions regions, the largest minRegions−1 of them hold
// Qw − ⌊Qw/minRegions⌋ members, and Qa must exceed that so that no ack
// quorum fits inside them.
func (p *RegionAware) Validate(e, qw, qa int) error {
	if err := validateSizes(e, qw, qa); err != nil {
		return err
	}
	m := p.minRegions
	if qa < m {
		return fmt.Errorf("%w: ack quorum %d is below min regions %d (constraint Qa ≥ minRegions)",
			ErrInvalidConfig, qa, m)
	}
	if qa <= qw-qw/m {
		return fmt.Errorf("%w: ack quorum %d must exceed Qw − Qw/minRegions = %d − %d/%d = %d (constraint Qa > Qw − Qw/minRegions), or an ack quorum could sit in fewer than %d regions",
			ErrInvalidConfig, qa, qw, qw, m, qw-qw/m, m)
	}
	return nil
}

// regionRule is the ack-quorum rule on one write set's region counts: the
// minRegions−1 largest regions together hold at most Qa−1 members, so any
// Qa members reach minRegions regions. It is monotone.
func regionRule(qa, minRegions int) windowRule {
	return windowRule{monotone: true, ok: func(counts []int) bool {
		return sumLargest(counts, minRegions-1) <= qa-1
	}}
}

// sumLargest sums the k largest values.
func sumLargest(counts []int, k int) int {
	if k <= 0 {
		return 0
	}
	sorted := slices.Clone(counts)
	slices.Sort(sorted)
	sum := 0
	for i := len(sorted) - 1; i >= 0 && i >= len(sorted)-k; i-- {
		sum += sorted[i]
	}
	return sum
}

// AckQuorumsSpanRegions reports whether every set of qa members of every
// write set (qw consecutive members of the cyclic ensemble) lies in at
// least minRegions distinct regions, with regionOf giving each member's
// region. It is the invariant RegionAware guarantees; callers can use it to
// audit an ensemble read back from metadata.
func AckQuorumsSpanRegions(ensemble []string, qw, qa, minRegions int, regionOf func(string) string) bool {
	e := len(ensemble)
	if qw < 1 || qw > e || qa < 1 || qa > qw {
		return false
	}
	for s := range distinctStarts(e, qw) {
		counts := map[string]int{}
		for k := range qw {
			counts[regionOf(ensemble[(s+k)%e])]++
		}
		vals := make([]int, 0, len(counts))
		for _, c := range counts {
			vals = append(vals, c)
		}
		if sumLargest(vals, minRegions-1) > qa-1 {
			return false
		}
	}
	return true
}

// NewEnsemble implements Policy.
func (p *RegionAware) NewEnsemble(e, qw, qa int, exclude Set) ([]string, error) {
	if err := p.Validate(e, qw, qa); err != nil {
		return nil, err
	}
	cands := p.candidates(exclude, nil)
	if len(cands) < e {
		return nil, &NotEnoughBookiesError{Needed: e, Available: len(cands), Constraint: "distinct bookies"}
	}
	regions, byRegion := groupBy(cands, func(b Bookie) string { return b.Region }, p.rng)
	if len(regions) < p.minRegions {
		return nil, &NotEnoughBookiesError{Needed: e, Available: len(cands),
			Constraint: fmt.Sprintf("bookies in %d regions, found %d", p.minRegions, len(regions))}
	}
	capacity := make([]int, len(regions))
	for i, r := range byRegion {
		capacity[i] = len(r)
	}
	counts := spread(e, capacity, p.rng)
	// Averaged over the E write sets, the largest minRegions−1 regions
	// hold qw/e of their members per write set; if that already exceeds
	// Qa−1, some write set must too, and no layout helps.
	var labels []int
	ok := sumLargest(counts, p.minRegions-1)*qw <= e*(qa-1)
	if ok {
		labels, ok = arrange(counts, qw, regionRule(qa, p.minRegions), p.rng)
	}
	if !ok {
		return nil, &NotEnoughBookiesError{Needed: e, Available: len(cands),
			Constraint: fmt.Sprintf("every ack quorum (any %d of each write set of %d) in %d regions; %d regions, at most %v bookies each",
				qa, qw, p.minRegions, len(regions), capacity)}
	}
	members := make([][]string, len(regions))
	for i, r := range byRegion {
		members[i] = rackSpread(r, counts[i], p.rng)
	}
	out := fillByLabel(labels, members)
	if !p.spans(out, qw, qa) {
		// Unreachable unless arrange is wrong: never hand out an ensemble
		// that breaks the guarantee.
		return nil, fmt.Errorf("placement: internal error: ensemble %v breaks the region rule", out)
	}
	return out, nil
}

// spans checks the rule on ensemble, counting every member missing from
// the snapshot as sitting in the worst region (the largest one of the
// write set): its real region is unknown.
func (p *RegionAware) spans(ensemble []string, qw, qa int) bool {
	for s := range distinctStarts(len(ensemble), qw) {
		if !p.writeSetSpans(ensemble, s, qw, qa) {
			return false
		}
	}
	return true
}

func (p *RegionAware) writeSetSpans(ensemble []string, start, qw, qa int) bool {
	counts := map[string]int{}
	unknown := 0
	for k := range qw {
		id := ensemble[(start+k)%len(ensemble)]
		if b, ok := p.byID[id]; ok {
			counts[b.Region]++
		} else {
			unknown++
		}
	}
	vals := make([]int, 0, len(counts))
	for _, c := range counts {
		vals = append(vals, c)
	}
	worst := sumLargest(vals, p.minRegions-1)
	if p.minRegions > 1 {
		worst += unknown
	}
	return worst <= qa-1
}

// ReplaceBookie implements Policy. Among the candidates that keep every
// write set containing index within the region rule it prefers the
// replaced bookie's region (keeping the spread even), then racks that the
// neighbouring write sets do not use yet; ties are broken at random.
func (p *RegionAware) ReplaceBookie(ensemble []string, index, qw, qa int, exclude Set) (string, error) {
	if err := p.Validate(len(ensemble), qw, qa); err != nil {
		return "", err
	}
	if err := validateReplace(ensemble, index, qw, qa); err != nil {
		return "", err
	}
	cands := p.candidates(exclude, ensemble)
	if len(cands) == 0 {
		return "", &NotEnoughBookiesError{Needed: 1, Available: 0, Constraint: "a bookie outside the ensemble"}
	}
	old, oldKnown := p.byID[ensemble[index]]
	// Racks already used by the write sets around index.
	nearRacks := map[string]bool{}
	for _, s := range writeSetsContaining(len(ensemble), qw, index) {
		for k := range qw {
			if i := (s + k) % len(ensemble); i != index {
				if b, ok := p.byID[ensemble[i]]; ok {
					nearRacks[rackKey(b)] = true
				}
			}
		}
	}
	trial := slices.Clone(ensemble)
	var best []string
	bestScore := -1
	for _, c := range cands {
		trial[index] = c.ID
		valid := true
		for _, s := range writeSetsContaining(len(trial), qw, index) {
			if !p.writeSetSpans(trial, s, qw, qa) {
				valid = false
				break
			}
		}
		if !valid {
			continue
		}
		score := 0
		if oldKnown && c.Region == old.Region {
			score += 2
		}
		if !nearRacks[rackKey(c)] {
			score++
		}
		switch {
		case score > bestScore:
			best, bestScore = []string{c.ID}, score
		case score == bestScore:
			best = append(best, c.ID)
		}
	}
	if len(best) == 0 {
		return "", &NotEnoughBookiesError{Needed: 1, Available: len(cands),
			Constraint: fmt.Sprintf("a bookie keeping every ack quorum of the write sets containing index %d in %d regions",
				index, p.minRegions)}
	}
	return pick(p.rng, best), nil
}
