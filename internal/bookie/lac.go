package bookie

import (
	"sync"
	"sync/atomic"
)

// lacWatchers wakes long polls when a ledger's LAC may have risen. A long
// poll joins its ledger's watch, then loops: take the watch's current
// channel, read the LAC, and wait on the channel if the LAC is not high
// enough. Whoever raises a LAC does so in the store first and calls notify
// after, which closes the channel and installs a fresh one; so a raise
// between "take the channel" and "read the LAC" is seen by the read, and one
// after it closes the channel the poll waits on. notify costs one atomic
// load when nobody waits.
type lacWatchers struct {
	waiters atomic.Int64 // joined watches; notify's fast path
	mu      struct {
		sync.Mutex
		m map[int64]*lacWatch
	}
}

type lacWatch struct {
	ch chan struct{} // closed by notify; guarded by lacWatchers.mu
	n  int           // joined polls; guarded by lacWatchers.mu
}

func (ws *lacWatchers) join(ledgerID int64) *lacWatch {
	ws.waiters.Add(1)
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.mu.m == nil {
		ws.mu.m = make(map[int64]*lacWatch)
	}
	w := ws.mu.m[ledgerID]
	if w == nil {
		w = &lacWatch{ch: make(chan struct{})}
		ws.mu.m[ledgerID] = w
	}
	w.n++
	return w
}

func (ws *lacWatchers) leave(ledgerID int64, w *lacWatch) {
	ws.mu.Lock()
	w.n--
	if w.n == 0 && ws.mu.m[ledgerID] == w {
		delete(ws.mu.m, ledgerID)
	}
	ws.mu.Unlock()
	ws.waiters.Add(-1)
}

// changed returns the channel notify closes next for w's ledger.
func (ws *lacWatchers) changed(w *lacWatch) <-chan struct{} {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return w.ch
}

// notify wakes every poll of ledgerID. Call it after the change is visible
// in the store.
func (ws *lacWatchers) notify(ledgerID int64) {
	if ws.waiters.Load() == 0 {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w := ws.mu.m[ledgerID]; w != nil {
		close(w.ch)
		w.ch = make(chan struct{})
	}
}
