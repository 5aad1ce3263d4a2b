package checker

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Ownership as a register (G5, G7: one writer epoch at a time).
//
// Each log's ownership is a register holding the current writer epoch. A
// new epoch takes the log over once (it writes the register: it has then
// fenced and recovered what the old epoch wrote) and an old epoch never
// comes back. Every acknowledged append that reports its writer epoch is
// an operation on that register: "ownership is e", legal when e is the
// current epoch, or when e is new (the takeover is linearized there); it
// is illegal when e was replaced before. porcupine decides whether the
// acknowledgements admit such an order.
//
// Exact reduction: the history is linearizable iff the epochs can be
// ordered so that each epoch's operations are linearized in one block.
// A block [s, t] meets every operation [call, ret] of its epoch iff
// s <= the earliest ret and t >= the latest call of the epoch, so only the
// operation with the earliest completion and the one with the latest
// invocation of each epoch matter. The check therefore runs on at most two
// operations per epoch, whatever the number of appends.

// ownState is the register: the current epoch and the epochs replaced
// (sorted, joined by "\n", so that states compare with ==).
type ownState struct {
	cur     string
	retired string
}

func (s ownState) isRetired(e string) bool {
	for r := range strings.SplitSeq(s.retired, "\n") {
		if r == e {
			return true
		}
	}
	return false
}

func (s ownState) takeOver(e string) ownState {
	if s.cur == "" {
		return ownState{cur: e, retired: s.retired}
	}
	rs := []string{s.cur}
	if s.retired != "" {
		rs = append(rs, strings.Split(s.retired, "\n")...)
	}
	sort.Strings(rs)
	return ownState{cur: e, retired: strings.Join(rs, "\n")}
}

// ownershipModel is the sequential specification of the ownership register.
var ownershipModel = porcupine.Model{
	Init: func() any { return ownState{} },
	Step: func(state, input, _ any) (bool, any) {
		s, e := state.(ownState), input.(string)
		switch {
		case s.cur == e:
			return true, s
		case s.isRetired(e):
			return false, s
		default:
			return true, s.takeOver(e)
		}
	},
	Equal: func(a, b any) bool { return a.(ownState) == b.(ownState) },
	DescribeOperation: func(input, _ any) string {
		return fmt.Sprintf("ack by epoch %s", input.(string))
	},
	DescribeState: func(s any) string {
		st := s.(ownState)
		if st.cur == "" {
			return "no owner"
		}
		return "owner " + st.cur
	},
}

// ownershipOps returns the reduced register operations of a log: per epoch
// (acknowledged appends that report one), the append that completed first
// and the one invoked last.
func ownershipOps(l *logData) []porcupine.Operation {
	type span struct{ first, last *attempt }
	spans := map[string]*span{}
	var epochs []string
	for _, a := range l.attempts {
		if a.status != stOK || a.epoch == "" {
			continue
		}
		s := spans[a.epoch]
		if s == nil {
			s = &span{first: a, last: a}
			spans[a.epoch] = s
			epochs = append(epochs, a.epoch)
			continue
		}
		if a.compT < s.first.compT {
			s.first = a
		}
		if a.invT > s.last.invT {
			s.last = a
		}
	}
	sort.Strings(epochs)
	var ops []porcupine.Operation
	for i, e := range epochs {
		s := spans[e]
		for _, a := range []*attempt{s.first, s.last} {
			ops = append(ops, porcupine.Operation{ClientId: i, Input: e, Call: a.invT, Output: a.value, Return: a.compT})
			if s.first == s.last {
				break
			}
		}
	}
	return ops
}

// ownership runs the register check on every log; a log whose
// acknowledgements admit no single-owner order counts one violation, with
// the example of two epochs whose acknowledgements interleave in real
// time (when such a pair explains it).
func (c *checker) ownership(m *model) {
	if c.opts.PorcupineTimeout <= 0 {
		c.props[PropOwnershipLinearizable].Note = "porcupine disabled"
		return
	}
	deadline := time.Now().Add(c.opts.PorcupineTimeout)
	unknown := 0
	for _, name := range m.order {
		l := m.logs[name]
		ops := ownershipOps(l)
		if len(ops) < 3 {
			continue // one epoch, or two that cannot conflict
		}
		left := time.Until(deadline)
		if left <= 0 {
			unknown++
			continue
		}
		switch porcupine.CheckOperationsTimeout(ownershipModel, ops, left) {
		case porcupine.Illegal:
			c.add(PropOwnershipLinearizable, name, func() Example { return c.ownershipExample(l) })
		case porcupine.Unknown:
			unknown++
		}
	}
	if unknown > 0 {
		c.props[PropOwnershipLinearizable].Note = fmt.Sprintf("porcupine left %d logs unknown (timeout)", unknown)
	}
}

// ownershipExample finds epochs a != b with an ack of a completed before
// an ack of b was invoked, and an ack of b completed before a later ack
// of a was invoked (a came back after b took over).
func (c *checker) ownershipExample(l *logData) Example {
	type span struct{ first, last *attempt }
	spans := map[string]*span{}
	for _, a := range l.attempts {
		if a.status != stOK || a.epoch == "" {
			continue
		}
		s := spans[a.epoch]
		if s == nil {
			spans[a.epoch] = &span{first: a, last: a}
			continue
		}
		if a.compT < s.first.compT {
			s.first = a
		}
		if a.invT > s.last.invT {
			s.last = a
		}
	}
	for ea, a := range spans {
		for eb, b := range spans {
			for _, x := range []*attempt{b.first, b.last} {
				if ea != eb && a.first.compT < x.invT && x.compT < a.last.invT {
					return Example{
						Value: a.last.value,
						Detail: fmt.Sprintf("epoch %s was acknowledged, then epoch %s (invoked after that), then %s again "+
							"(invoked after %s's acknowledgement)", ea, eb, ea, eb),
						Events: append(append(c.attemptEvents(a.first), c.attemptEvents(x)...), c.attemptEvents(a.last)...),
					}
				}
			}
		}
	}
	return Example{Detail: "the acknowledged appends' writer epochs admit no order of single owners"}
}
