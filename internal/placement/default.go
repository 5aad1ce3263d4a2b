package placement

import "math/rand/v2"

// Default places ensembles on distinct writable bookies chosen uniformly at
// random, ignoring racks and regions.
type Default struct{ topology }

var _ Policy = (*Default)(nil)

// NewDefault returns a Default policy over the snapshot (ids must be unique
// and non-empty; the slice is not retained) drawing choices from rng.
func NewDefault(bookies []Bookie, rng *rand.Rand) (*Default, error) {
	t, err := newTopology(bookies, rng)
	if err != nil {
		return nil, err
	}
	return &Default{t}, nil
}

// Validate implements Policy.
func (p *Default) Validate(e, qw, qa int) error { return validateSizes(e, qw, qa) }

// NewEnsemble implements Policy.
func (p *Default) NewEnsemble(e, qw, qa int, exclude Set) ([]string, error) {
	if err := p.Validate(e, qw, qa); err != nil {
		return nil, err
	}
	cands := p.candidates(exclude, nil)
	if len(cands) < e {
		return nil, &NotEnoughBookiesError{Needed: e, Available: len(cands), Constraint: "distinct bookies"}
	}
	out := make([]string, e)
	for i, k := range p.rng.Perm(len(cands))[:e] {
		out[i] = cands[k].ID
	}
	return out, nil
}

// ReplaceBookie implements Policy.
func (p *Default) ReplaceBookie(ensemble []string, index, qw, qa int, exclude Set) (string, error) {
	if err := validateReplace(ensemble, index, qw, qa); err != nil {
		return "", err
	}
	cands := p.candidates(exclude, ensemble)
	if len(cands) == 0 {
		return "", &NotEnoughBookiesError{Needed: 1, Available: 0, Constraint: "a bookie outside the ensemble"}
	}
	return pick(p.rng, cands).ID, nil
}
