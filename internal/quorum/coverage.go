package quorum

import "fmt"

// Response is the state of one ensemble member's answer to a fence (or
// read-LAC) request sent to the whole ensemble.
type Response uint8

const (
	// Pending: no answer yet.
	Pending Response = iota + 1
	// Answered: the bookie answered validly. For a fence request this means
	// the bookie has durably recorded the fence, so it will reject the old
	// writer's adds from now on; a bookie that did not know the ledger must
	// record the fence for it too before answering (BookKeeper creates the
	// ledger on a fence read). A NoLedger/NoEntry answer from such a bookie
	// is Answered; an answer from a bookie that did NOT persist the fence is
	// not, whatever it says.
	Answered
	// Failed: the bookie will not answer (error, timeout, unreachable).
	Failed
)

func (r Response) String() string {
	switch r {
	case Pending:
		return "pending"
	case Answered:
		return "answered"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Response(%d)", uint8(r))
}

// Coverage is the verdict of the coverage rule.
type Coverage uint8

const (
	// NotCovered: some write set lacks Qw−Qa+1 answers, but the pending
	// members could still provide them. Wait.
	NotCovered Coverage = iota + 1
	// Covered: every write set has at least Qw−Qa+1 answers, so no write set
	// can still assemble Qa acks from members that have not answered. For a
	// fence, the old writer can no longer get any entry acknowledged; for
	// read-LAC, the maximum LAC among the answers is at least the LAC any
	// writer could have made durable.
	Covered
	// NeverCovered: failures leave some write set unable to reach Qw−Qa+1
	// answers even if every pending member answers. The caller must retry
	// (for recovery, later, with fresh requests) or give up; it must never
	// proceed as if covered.
	NeverCovered
)

func (c Coverage) String() string {
	switch c {
	case NotCovered:
		return "not-covered"
	case Covered:
		return "covered"
	case NeverCovered:
		return "never-covered"
	}
	return fmt.Sprintf("Coverage(%d)", uint8(c))
}

// Coverage applies the coverage rule to per-member response states, indexed
// by ensemble index (len(states) must be E). A write set is covered when at
// least Qw−Qa+1 of its members answered; the ensemble is covered when every
// write set is: then every set of Qa members of every write set contains a
// member that answered.
//
// NeverCovered wins over NotCovered: once some write set has more than Qa−1
// failed members, waiting cannot help. It panics if len(states) != E or a
// state is invalid (programming errors).
func (p Params) Coverage(states []Response) Coverage {
	if len(states) != p.EnsembleSize {
		panic(fmt.Sprintf("quorum: Coverage got %d states for %v", len(states), p))
	}
	for i, s := range states {
		if s < Pending || s > Failed {
			panic(fmt.Sprintf("quorum: Coverage: invalid state %v at index %d", s, i))
		}
	}
	need := p.NegativesNeeded()
	verdict := Covered
	for start := range p.distinctWriteSets() {
		answered, pending := 0, 0
		for k := range p.WriteQuorum {
			switch states[(start+k)%p.EnsembleSize] {
			case Answered:
				answered++
			case Pending:
				pending++
			}
		}
		switch {
		case answered+pending < need:
			return NeverCovered
		case answered < need:
			verdict = NotCovered
		}
	}
	return verdict
}
