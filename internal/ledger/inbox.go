package ledger

import "sync"

// inbox hands results from bookie callbacks (which must never block) to the
// one goroutine running a recovery or a WaitLAC call. Push never blocks; the
// queue's length is bounded by the requests its owner has outstanding, since
// each request completes exactly once. After the owner returns, late results
// are pushed to an inbox nobody reads and are collected with it.
type inbox[T any] struct {
	mu     sync.Mutex
	items  []T
	notify chan struct{} // capacity 1: "items is not empty"
}

func newInbox[T any]() *inbox[T] {
	return &inbox[T]{notify: make(chan struct{}, 1)}
}

func (b *inbox[T]) push(v T) {
	b.mu.Lock()
	b.items = append(b.items, v)
	b.mu.Unlock()
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// ready is readable when items may be waiting; call take after it fires.
func (b *inbox[T]) ready() <-chan struct{} { return b.notify }

// take returns and removes everything queued.
func (b *inbox[T]) take() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.items
	b.items = nil
	return out
}
