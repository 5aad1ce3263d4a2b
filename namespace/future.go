package namespace

import (
	"context"
	"fmt"

	"github.com/dlog-io/dlog"
)

// Future is the outcome of an asynchronous write: it resolves once, with
// the record's DLSN when the entry holding it is acknowledged (durable on
// an ack quorum of bookies), or with an error. Safe for concurrent use.
type Future struct {
	done chan struct{}
	dlsn dlog.DLSN
	err  error
}

func newFuture() *Future { return &Future{done: make(chan struct{})} }

// failedFuture is a future already resolved with err.
func failedFuture(err error) *Future {
	f := newFuture()
	f.resolve(dlog.InvalidDLSN, err)
	return f
}

// resolve completes the future; only the first call counts. Callers make
// sure it is called once (the writer resolves every pending record exactly
// once, under its lock).
func (f *Future) resolve(d dlog.DLSN, err error) {
	select {
	case <-f.done:
		return
	default:
	}
	f.dlsn, f.err = d, err
	close(f.done)
}

// Done is closed when the future is resolved.
func (f *Future) Done() <-chan struct{} { return f.done }

// Wait returns the DLSN and error once resolved. If ctx ends first it
// returns an indeterminate error wrapping ctx's: the write goes on and may
// still be acknowledged. For a record set the DLSN is its first record's;
// record i has slot DLSN.SlotID + i in the same entry.
func (f *Future) Wait(ctx context.Context) (dlog.DLSN, error) {
	select {
	case <-f.done:
		return f.dlsn, f.err
	default:
	}
	select {
	case <-f.done:
		return f.dlsn, f.err
	case <-ctx.Done():
		return dlog.InvalidDLSN, dlog.Indeterminate(fmt.Errorf("write: %w", ctx.Err()))
	}
}
