package checker

import (
	"fmt"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/dlog-io/dlog"
)

// appendInput is a porcupine operation's input: the appended value and the
// floor, the highest DLSN acknowledged in the log's earlier partitions.
type appendInput struct {
	value string
	floor dlog.DLSN
}

// appendModel is the sequential specification of DLSN assignment: each
// append returns a position strictly greater than every position returned
// before it. The state is the last position returned (the zero DLSN
// before the first append, which is below every valid DLSN).
var appendModel = porcupine.Model{
	Init: func() any { return dlog.DLSN{} },
	Step: func(state, input, output any) (bool, any) {
		last := maxDLSN(state.(dlog.DLSN), input.(appendInput).floor)
		out := output.(dlog.DLSN)
		if last.Less(out) {
			return true, out
		}
		return false, state
	},
	Equal: func(a, b any) bool { return a.(dlog.DLSN) == b.(dlog.DLSN) },
	Hash: func(s any) uint64 {
		d := s.(dlog.DLSN)
		return uint64(d.LSSN)*0x9e3779b97f4a7c15 ^ uint64(d.EntryID)*0xbf58476d1ce4e5b9 ^ uint64(d.SlotID)
	},
	DescribeOperation: func(input, output any) string {
		in := input.(appendInput)
		return fmt.Sprintf("append(%s) -> %s", in.value, output.(dlog.DLSN))
	},
	DescribeState: func(s any) string {
		d := s.(dlog.DLSN)
		if !d.IsValid() {
			return "empty"
		}
		return "last " + d.String()
	},
}

// minPartitionOps is the size below which partitions are merged with the
// next one: a porcupine call has a fixed cost.
const minPartitionOps = 64

// partitions cuts a log's acknowledged appends into porcupine partitions.
// A cut is made only at a quiescent point: every operation before it
// completed strictly before every operation after it was invoked. Then
// any linearization is one of the earlier part followed by one of the
// later part, and the state between them is the highest DLSN of the
// earlier part (the state is the last DLSN returned, which only grows).
// So each partition is checked on its own with that DLSN as the floor of
// its operations: the log is linearizable iff every partition is.
func partitions(acked []*attempt, procs map[string]int) [][]porcupine.Operation {
	ops := append([]*attempt(nil), acked...)
	sort.SliceStable(ops, func(i, j int) bool { return ops[i].invT < ops[j].invT })
	var out [][]porcupine.Operation
	var cur []porcupine.Operation
	var floor, curMax dlog.DLSN
	maxComp := int64(-1 << 63)
	for _, a := range ops {
		if len(cur) >= minPartitionOps && maxComp < a.invT {
			out = append(out, cur)
			cur = nil
			floor = maxDLSN(floor, curMax)
		}
		id, ok := procs[a.process]
		if !ok {
			id = len(procs)
			procs[a.process] = id
		}
		cur = append(cur, porcupine.Operation{
			ClientId: id, Input: appendInput{value: a.value, floor: floor}, Call: a.invT,
			Output: a.dlsn, Return: a.compT,
		})
		curMax = maxDLSN(curMax, a.dlsn)
		maxComp = max(maxComp, a.compT)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// linearizability runs porcupine on every log's acknowledged appends
// within the time budget, and writes the visualization of the first
// illegal partition. Indeterminate appends are left out (they have no
// completion time); appendOrder covers the resolved ones.
func (c *checker) linearizability(m *model) Linearizability {
	res := Linearizability{Enabled: c.opts.PorcupineTimeout > 0}
	if !res.Enabled {
		return res
	}
	deadline := time.Now().Add(c.opts.PorcupineTimeout)
	for _, name := range m.order {
		l := m.logs[name]
		var acked []*attempt
		for _, a := range l.attempts {
			if a.status == stOK {
				acked = append(acked, a)
			}
		}
		ll := LinLog{Log: name, Ops: len(acked), Verdict: VerdictEmpty}
		parts := partitions(acked, map[string]int{})
		ll.Partitions = len(parts)
		for _, p := range parts {
			if len(p) > c.opts.PorcupineMaxOps {
				ll.Skipped++
				continue
			}
			left := time.Until(deadline)
			if left <= 0 {
				ll.Unknown++
				continue
			}
			switch porcupine.CheckOperationsTimeout(appendModel, p, left) {
			case porcupine.Illegal:
				ll.Illegal++
				if c.opts.VisualizationPath != "" && res.Visualization == "" && res.VisualizationError == "" {
					c.visualize(&res, name, p, time.Until(deadline))
				}
			case porcupine.Unknown:
				ll.Unknown++
			}
		}
		switch {
		case ll.Illegal > 0:
			ll.Verdict = VerdictIllegal
		case ll.Unknown > 0:
			ll.Verdict = VerdictUnknown
		case ll.Skipped > 0:
			ll.Verdict = VerdictSkipped
		case ll.Ops > 0:
			ll.Verdict = VerdictOK
		}
		res.Logs = append(res.Logs, ll)
	}
	return res
}

func (c *checker) visualize(res *Linearizability, log string, p []porcupine.Operation, left time.Duration) {
	if left <= 0 {
		res.VisualizationError = "no time left"
		return
	}
	_, info := porcupine.CheckOperationsVerbose(appendModel, p, left)
	if err := porcupine.VisualizePath(appendModel, info, c.opts.VisualizationPath); err != nil {
		res.VisualizationError = err.Error()
		return
	}
	res.Visualization, res.VisualizationLog = c.opts.VisualizationPath, log
}
