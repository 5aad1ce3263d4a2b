package checker

import (
	"fmt"
	"os"

	"github.com/dlog-io/dlog/internal/history"
)

// CheckFiles loads a history (JSONL, see package history) and, if
// drainPath is not empty, the drain file, and checks them. An error means
// the files could not be read or are malformed; violations are in the
// Report.
func CheckFiles(historyPath, drainPath string, opts Options) (Report, error) {
	f, err := os.Open(historyPath)
	if err != nil {
		return Report{}, fmt.Errorf("checker: %w", err)
	}
	defer f.Close()
	h, err := history.Load(f)
	if err != nil {
		return Report{}, fmt.Errorf("checker: %s: %w", historyPath, err)
	}
	var drains history.Drains
	if drainPath != "" {
		df, err := os.Open(drainPath)
		if err != nil {
			return Report{}, fmt.Errorf("checker: %w", err)
		}
		defer df.Close()
		drains, err = history.LoadDrains(df)
		if err != nil {
			return Report{}, fmt.Errorf("checker: %s: %w", drainPath, err)
		}
	}
	if err := opts.Validate(); err != nil {
		return Report{}, err
	}
	return Check(h, drains, opts), nil
}

// Check checks a validated history against its final drains. drains may be
// nil: the checker then falls back to rules that need no drain (Jepsen's
// read-based loss rule) and skips the drain-based ones. A non-nil drains
// must hold a drain for every log the history acknowledged appends to.
func Check(h *history.History, drains history.Drains, opts Options) Report {
	opts = opts.withDefaults()
	c := &checker{h: h, opts: opts, props: map[string]*Property{}}
	for _, p := range propertyOrder {
		c.props[p.name] = &Property{Name: p.name, Guarantee: p.guarantee, Violation: true}
	}
	c.props[PropDuplicateRetried].Violation = opts.IdempotentWrites
	m := build(h, drains, opts)
	rep := Report{Events: len(h.Events)}
	for _, name := range m.order {
		l := m.logs[name]
		counts := Counts{Log: name}
		c.drainComplete(l, drains != nil, &counts)
		c.placements(l, &counts)
		c.appendOrder(l)
		c.readers(l, &counts)
		c.seals(l)
		c.fencing(l)
		c.sequence(l)
		if l.firstOKAfter >= 0 {
			d := l.firstOKAfter - m.lastHeal
			counts.FirstOKAfterHeal = &d
		}
		rep.Stats.Logs = append(rep.Stats.Logs, counts)
		rep.Stats.Total.add(counts)
	}
	if m.lastHeal >= 0 {
		t := m.lastHeal
		rep.Stats.LastHeal = &t
	}
	rep.Linearizability = c.linearizability(m)
	c.ownership(m)
	lin := c.props[PropAppendLinearizable]
	for _, l := range rep.Linearizability.Logs {
		if l.Verdict == VerdictIllegal {
			lin.Count++
		}
	}
	lin.Note = linNote(rep.Linearizability)
	rep.Valid = true
	for _, p := range propertyOrder {
		prop := *c.props[p.name]
		rep.Properties = append(rep.Properties, prop)
		if prop.Failed() {
			rep.Valid = false
		}
	}
	return rep
}

func linNote(l Linearizability) string {
	if !l.Enabled {
		return "porcupine disabled"
	}
	var unknown, skipped int
	for _, g := range l.Logs {
		unknown += g.Unknown
		skipped += g.Skipped
	}
	if unknown+skipped == 0 {
		return ""
	}
	return fmt.Sprintf("porcupine left %d partitions unknown (timeout) and skipped %d (too large)", unknown, skipped)
}

type checker struct {
	h     *history.History
	opts  Options
	props map[string]*Property
}

// add counts one violation of property name in log and keeps the example
// that ex builds if there is room; ex is only called then.
func (c *checker) add(name, log string, ex func() Example) {
	p := c.props[name]
	p.Count++
	if len(p.Examples) < c.opts.MaxExamples {
		e := ex()
		e.Log = log
		p.Examples = append(p.Examples, e)
	}
}

// evs returns the events at the given indexes (negative ones skipped).
func (c *checker) evs(idx ...int) []EventRef {
	var out []EventRef
	for _, i := range idx {
		if i >= 0 && i < len(c.h.Events) {
			out = append(out, EventRef{Line: i + 1, Event: c.h.Events[i]})
		}
	}
	return out
}

// attemptEvents returns the invoke and completion of an attempt.
func (c *checker) attemptEvents(a *attempt) []EventRef { return c.evs(a.inv, a.comp) }

func (c *checker) drainComplete(l *logData, haveDrains bool, counts *Counts) {
	if l.drain != nil {
		counts.DrainRecords = len(l.drain.Records)
		if l.drain.Error != "" {
			c.add(PropDrainIncomplete, l.name, func() Example {
				return Example{Detail: "the drain did not reach the end of the log: " + l.drain.Error}
			})
		}
		return
	}
	if !haveDrains {
		return
	}
	for _, a := range l.attempts {
		if a.status == stOK {
			c.add(PropDrainIncomplete, l.name, func() Example {
				return Example{Detail: "no drain for a log with acknowledged appends", Value: a.value, Events: c.attemptEvents(a)}
			})
			return
		}
	}
}
