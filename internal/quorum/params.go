package quorum

import (
	"errors"
	"fmt"
)

// ErrInvalidParams reports an (E, Qw, Qa) triple that no ledger may use.
var ErrInvalidParams = errors.New("quorum: invalid ensemble/write/ack quorum sizes")

// MaxEnsembleSize bounds E. The tracker keeps one bit per ensemble member,
// and no sane deployment stripes a ledger over more bookies than this.
const MaxEnsembleSize = 64

// Params are a ledger's replication sizes: every entry is written to a
// write set of WriteQuorum bookies out of an ensemble of EnsembleSize, and is
// complete once AckQuorum of them have fsynced it.
type Params struct {
	EnsembleSize int // E
	WriteQuorum  int // Qw
	AckQuorum    int // Qa
}

// Validate checks MaxEnsembleSize ≥ E ≥ Qw ≥ Qa ≥ 1. The error wraps
// ErrInvalidParams and names the violated inequality.
func (p Params) Validate() error {
	var why string
	switch {
	case p.AckQuorum < 1:
		why = "ack quorum must be at least 1"
	case p.WriteQuorum < p.AckQuorum:
		why = "write quorum must be at least the ack quorum"
	case p.EnsembleSize < p.WriteQuorum:
		why = "ensemble size must be at least the write quorum"
	case p.EnsembleSize > MaxEnsembleSize:
		why = fmt.Sprintf("ensemble size must be at most %d", MaxEnsembleSize)
	default:
		return nil
	}
	return fmt.Errorf("%w: E=%d Qw=%d Qa=%d: %s", ErrInvalidParams,
		p.EnsembleSize, p.WriteQuorum, p.AckQuorum, why)
}

// Validate is Params{e, qw, qa}.Validate().
func Validate(ensembleSize, writeQuorum, ackQuorum int) error {
	return Params{ensembleSize, writeQuorum, ackQuorum}.Validate()
}

func (p Params) String() string {
	return fmt.Sprintf("E=%d/Qw=%d/Qa=%d", p.EnsembleSize, p.WriteQuorum, p.AckQuorum)
}

// WriteSet returns the ensemble indices of the entry's write set, in write
// set order: Qw consecutive members starting at entryID mod E, wrapping.
// The caller owns the slice. It panics if entryID < 0 or the sizes are not
// 1 ≤ writeQuorum ≤ ensembleSize: both are programming errors.
func WriteSet(entryID int64, ensembleSize, writeQuorum int) []int {
	return AppendWriteSet(nil, entryID, ensembleSize, writeQuorum)
}

// AppendWriteSet appends the entry's write set (see WriteSet) to dst.
func AppendWriteSet(dst []int, entryID int64, ensembleSize, writeQuorum int) []int {
	if entryID < 0 || writeQuorum < 1 || ensembleSize < writeQuorum {
		panic(fmt.Sprintf("quorum: WriteSet(entry %d, E=%d, Qw=%d) out of domain",
			entryID, ensembleSize, writeQuorum))
	}
	start := int(entryID % int64(ensembleSize))
	for k := range writeQuorum {
		dst = append(dst, (start+k)%ensembleSize)
	}
	return dst
}

// WriteSet returns the entry's write set under p (see the function WriteSet).
func (p Params) WriteSet(entryID int64) []int {
	return WriteSet(entryID, p.EnsembleSize, p.WriteQuorum)
}

// InWriteSet reports whether ensemble index belongs to the entry's write set.
func (p Params) InWriteSet(entryID int64, index int) bool {
	if index < 0 || index >= p.EnsembleSize {
		return false
	}
	start := int(entryID % int64(p.EnsembleSize))
	offset := (index - start + p.EnsembleSize) % p.EnsembleSize
	return offset < p.WriteQuorum
}

// NegativesNeeded is Qw−Qa+1: the number of members of a write set that
// must be known not to hold an entry (or to be fenced) before no ack quorum
// of that write set can hold it (or still accept it). Any Qa members of a
// write set of Qw include at least one of any Qw−Qa+1 members.
func (p Params) NegativesNeeded() int { return p.WriteQuorum - p.AckQuorum + 1 }

// distinctWriteSets is the number of distinct write sets: E when E > Qw
// (one per start index), and 1 when E == Qw (every start gives the whole
// ensemble).
func (p Params) distinctWriteSets() int {
	if p.EnsembleSize == p.WriteQuorum {
		return 1
	}
	return p.EnsembleSize
}
