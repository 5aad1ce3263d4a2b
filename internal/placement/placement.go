package placement

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/dlog-io/dlog/internal/quorum"
)

// Errors. Detail is wrapped around them; match with errors.Is.
var (
	// ErrNotEnoughBookies: the snapshot holds too few writable, non-excluded
	// bookies for the request under the policy's constraints. Returned as a
	// *NotEnoughBookiesError.
	ErrNotEnoughBookies = errors.New("placement: not enough bookies")
	// ErrInvalidConfig: sizes or policy settings no ledger may use, or a
	// malformed snapshot or call.
	ErrInvalidConfig = errors.New("placement: invalid configuration")
)

// NotEnoughBookiesError says what a placement needed and what it found.
type NotEnoughBookiesError struct {
	Needed     int    // bookies the request needs
	Available  int    // writable, non-excluded candidates the snapshot offered
	Constraint string // the constraint that could not be met
}

func (e *NotEnoughBookiesError) Error() string {
	return fmt.Sprintf("placement: not enough bookies: need %d, %d available (writable, not excluded, not in the ensemble): %s",
		e.Needed, e.Available, e.Constraint)
}

// Unwrap makes errors.Is(err, ErrNotEnoughBookies) hold.
func (e *NotEnoughBookiesError) Unwrap() error { return ErrNotEnoughBookies }

// Bookie is what placement knows of a bookie: a snapshot entry built by the
// ledger layer from the registry.
type Bookie struct {
	ID     string
	Region string // "" is a region name like any other
	Rack   string // scoped to its region: ("eu", "r1") and ("us", "r1") differ
	// Writable is false for read-only or draining bookies; they are never
	// chosen for new ensembles or replacements.
	Writable bool
}

// Set is a set of bookie ids. The nil Set is empty.
type Set map[string]struct{}

// NewSet returns the set of ids.
func NewSet(ids ...string) Set {
	s := make(Set, len(ids))
	for _, id := range ids {
		s[id] = struct{}{}
	}
	return s
}

// Has reports whether id is in the set.
func (s Set) Has(id string) bool {
	_, ok := s[id]
	return ok
}

// Policy chooses ensembles and replacements. Implementations hold a
// snapshot of the bookies and a seeded random source; they are not safe for
// concurrent use. Returned slices belong to the caller.
type Policy interface {
	// NewEnsemble returns e distinct writable bookies, none in exclude,
	// ordered by ensemble index, that satisfy the policy for every write
	// set. Errors: ErrInvalidConfig (sizes), ErrNotEnoughBookies.
	NewEnsemble(e, qw, qa int, exclude Set) ([]string, error)
	// ReplaceBookie returns a writable bookie to take ensemble[index]'s
	// place: never a current member nor an excluded bookie, and keeping the
	// policy's constraint for every write set containing index. Errors:
	// ErrInvalidConfig (sizes, index), ErrNotEnoughBookies.
	ReplaceBookie(ensemble []string, index, qw, qa int, exclude Set) (string, error)
	// ReorderReadSet returns the write set in the order to try reads: same
	// rack as the reader first, then same region, then other known bookies,
	// then bookies missing from the snapshot (departed); the order is
	// otherwise kept.
	ReorderReadSet(writeSet []string, localRegion, localRack string) []string
	// Validate checks the sizes, and the policy's own rules, without
	// looking at the bookies. Errors wrap ErrInvalidConfig.
	Validate(e, qw, qa int) error
}

// topology is the snapshot and random source every policy shares.
type topology struct {
	byID map[string]Bookie
	ids  []string // sorted, so a seed replays a run whatever the input order
	rng  *rand.Rand
}

func newTopology(bookies []Bookie, rng *rand.Rand) (topology, error) {
	if rng == nil {
		return topology{}, fmt.Errorf("%w: nil random source", ErrInvalidConfig)
	}
	t := topology{byID: make(map[string]Bookie, len(bookies)), rng: rng}
	for _, b := range bookies {
		if b.ID == "" {
			return topology{}, fmt.Errorf("%w: bookie with empty id", ErrInvalidConfig)
		}
		if _, dup := t.byID[b.ID]; dup {
			return topology{}, fmt.Errorf("%w: bookie %q listed twice", ErrInvalidConfig, b.ID)
		}
		t.byID[b.ID] = b
		t.ids = append(t.ids, b.ID)
	}
	slices.Sort(t.ids)
	return t, nil
}

// candidates returns the writable bookies in neither exclude nor members,
// in id order.
func (t *topology) candidates(exclude Set, members []string) []Bookie {
	var out []Bookie
	for _, id := range t.ids {
		b := t.byID[id]
		if b.Writable && !exclude.Has(id) && !slices.Contains(members, id) {
			out = append(out, b)
		}
	}
	return out
}

func validateSizes(e, qw, qa int) error {
	if err := quorum.Validate(e, qw, qa); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

func validateReplace(ensemble []string, index, qw, qa int) error {
	if err := validateSizes(len(ensemble), qw, qa); err != nil {
		return err
	}
	if index < 0 || index >= len(ensemble) {
		return fmt.Errorf("%w: index %d outside an ensemble of %d", ErrInvalidConfig, index, len(ensemble))
	}
	return nil
}

// pick returns a uniformly random element.
func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// ReorderReadSet implements Policy.ReorderReadSet for every policy.
func (t *topology) ReorderReadSet(writeSet []string, localRegion, localRack string) []string {
	class := func(id string) int {
		b, ok := t.byID[id]
		switch {
		case !ok:
			return 3
		case b.Region == localRegion && b.Rack == localRack:
			return 0
		case b.Region == localRegion:
			return 1
		}
		return 2
	}
	out := slices.Clone(writeSet)
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(class(a), class(b)) })
	return out
}

// writeSetsContaining returns the start indices of the distinct write sets
// (windows of qw consecutive members of a cyclic ensemble of e) that contain
// index.
func writeSetsContaining(e, qw, index int) []int {
	if e == qw {
		return []int{0}
	}
	starts := make([]int, 0, qw)
	for k := range qw {
		starts = append(starts, ((index-k)%e+e)%e)
	}
	return starts
}

// distinctStarts is the number of distinct write sets.
func distinctStarts(e, qw int) int {
	if e == qw {
		return 1
	}
	return e
}
