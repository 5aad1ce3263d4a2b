package bookie

import (
	"sync"
	"time"
)

// addTimeouts answers TIMEOUT to a stream's adds whose deadline passes
// before their journal callback, with one timer per stream rather than one
// per add.
//
// An add is watched from just before its journal append until its callback.
// A stream's adds are appended by its receive goroutine, one at a time, and
// the journal calls back in append order, so the watched adds leave in the
// order they came: q is a FIFO whose head is the oldest. Clients use one
// timeout for most requests, so deadlines rise along q; an add whose
// deadline comes before that of the add queued last gets a timer of its own
// instead, which keeps q sorted by deadline. The timer is armed for the
// head's deadline or earlier while q is not empty; when it fires it answers
// every add at the head whose deadline passed and re-arms for the next.
type addTimeouts struct {
	mu    sync.Mutex
	q     []*pendingAdd // q[head:] are watched, oldest first
	head  int
	timer *time.Timer // created at the first push
	// armed: a run of fire is pending or in progress; it re-arms or clears
	// armed under mu.
	armed bool
}

// push watches p. Call it before p is appended to the journal.
func (t *addTimeouts) push(p *pendingAdd) {
	t.mu.Lock()
	if n := len(t.q); n > t.head && p.deadline.Before(t.q[n-1].deadline) {
		t.mu.Unlock()
		p.timer = time.AfterFunc(time.Until(p.deadline), p.timeout)
		return
	}
	if t.head > 0 && len(t.q) == cap(t.q) {
		// Reuse the room before head rather than grow.
		n := copy(t.q, t.q[t.head:])
		clear(t.q[n:])
		t.q, t.head = t.q[:n], 0
	}
	t.q = append(t.q, p)
	if !t.armed {
		t.armed = true
		if d := time.Until(p.deadline); t.timer == nil {
			t.timer = time.AfterFunc(d, t.fire)
		} else {
			t.timer.Reset(d)
		}
	}
	t.mu.Unlock()
}

// remove stops watching p: after its callback, or after its append failed.
func (t *addTimeouts) remove(p *pendingAdd) {
	if p.timer != nil {
		p.timer.Stop()
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch n := len(t.q); {
	case n > t.head && t.q[t.head] == p:
		t.q[t.head] = nil
		t.head++
	case n > t.head && t.q[n-1] == p:
		// Its append failed: it was pushed last.
		t.q[n-1] = nil
		t.q = t.q[:n-1]
	default:
		return // fire took it
	}
	if t.head == len(t.q) {
		t.q, t.head = t.q[:0], 0
		if t.armed && t.timer.Stop() {
			t.armed = false
		}
	}
}

// fire answers the adds whose deadline passed and re-arms the timer.
func (t *addTimeouts) fire() {
	now := time.Now()
	var expired []*pendingAdd
	t.mu.Lock()
	for t.head < len(t.q) && !t.q[t.head].deadline.After(now) {
		expired = append(expired, t.q[t.head])
		t.q[t.head] = nil
		t.head++
	}
	if t.head == len(t.q) {
		t.q, t.head = t.q[:0], 0
		t.armed = false
	} else {
		t.timer.Reset(t.q[t.head].deadline.Sub(now))
	}
	t.mu.Unlock()
	for _, p := range expired {
		p.timeout()
	}
}
