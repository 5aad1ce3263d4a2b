package checker

import (
	"fmt"
	"sort"
)

// appendOrder checks G3: if append a was acknowledged before append b was
// invoked, DLSN(a) < DLSN(b). a ranges over acknowledged appends; b over
// acknowledged appends and resolved indeterminate ones (a value appended
// once, observed at exactly one DLSN that is neither conflicting nor past
// a sealed end). One sweep over completions and invocations sorted by
// time: O(n log n).
func (c *checker) appendOrder(l *logData) {
	var comps []*attempt
	var bs []*attempt
	resolved := map[*attempt]bool{}
	for _, a := range l.attempts {
		switch a.status {
		case stOK:
			comps = append(comps, a)
			bs = append(bs, a)
		case stInfo, stPending:
			atts := l.byValue[a.value]
			vi := l.vals[a.value]
			if vi == nil || len(vi.dlsns) != 1 || l.conflicts[vi.dlsns[0]] || l.pastSeal(vi.dlsns[0]) {
				continue
			}
			placeable := 0
			for _, x := range atts {
				if x.mayHaveEffect() {
					placeable++
				}
			}
			if placeable == 1 {
				resolved[a] = true
				bs = append(bs, a)
			}
		}
	}
	sort.SliceStable(comps, func(i, j int) bool { return comps[i].compT < comps[j].compT })
	// bs is in invoke order already (attempts are).
	var best *attempt
	j := 0
	for _, b := range bs {
		for j < len(comps) && comps[j].compT < b.invT {
			if best == nil || best.dlsn.Less(comps[j].dlsn) {
				best = comps[j]
			}
			j++
		}
		if best == nil {
			continue
		}
		bd := b.dlsn
		if resolved[b] {
			bd = l.vals[b.value].dlsns[0]
		}
		if bd.Less(best.dlsn) || bd == best.dlsn {
			a := best
			how := "acknowledged"
			if resolved[b] {
				how = "indeterminate, observed"
			}
			c.add(PropAppendOrder, l.name, func() Example {
				return Example{
					Value: b.value, DLSN: bd.String(),
					Detail: fmt.Sprintf("%q was acknowledged at %s before %q was invoked, but %q was %s at %s",
						a.value, a.dlsn, b.value, b.value, how, bd),
					Events: append(c.attemptEvents(a), c.attemptEvents(b)...),
				}
			})
		}
	}
}
