package metadata

import (
	"context"
	"errors"
	"fmt"

	"github.com/dlog-io/dlog/internal/metadata/kv"
)

// watch runs one backend watch of [key, end) (absolute keys) and turns its
// events into typed ones on a bounded channel; see "Watch channels" in
// store.go for the contract.
//
// The channel has WatchBufferEvents+1 slots: the goroutine only sends an
// event while at most WatchBufferEvents are queued, so the last slot is
// always free for the final error event and no send ever blocks. convert
// returns ok=false for keys of the range that are not of interest; an error
// from it ends the watch (ErrCorrupt). fail builds the final event.
func watch[E any](st *KVStore, ctx context.Context, key, end string, fromRev int64,
	convert func(kv.Event) (E, bool, error), fail func(error) E) <-chan E {
	limit := st.opts.WatchBufferEvents
	out := make(chan E, limit+1)
	if fromRev < 0 {
		out <- fail(badArg("watch from revision %d", fromRev))
		close(out)
		return out
	}
	if st.stop.Err() != nil {
		out <- fail(ErrClosed)
		close(out)
		return out
	}
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(st.stop, cancel)
	in := st.kv.Watch(wctx, key, end, fromRev)
	st.wg.Go(func() {
		defer close(out)
		defer stop()
		defer cancel()
		final := func(err error) { out <- fail(err) }
		for {
			var resp kv.WatchResponse
			var ok bool
			select {
			case resp, ok = <-in:
			case <-wctx.Done():
			}
			switch {
			case st.stop.Err() != nil:
				final(ErrClosed)
				return
			case ctx.Err() != nil:
				return
			case !ok:
				final(fmt.Errorf("%w: watch ended", ErrUnavailable))
				return
			case errors.Is(resp.Err, kv.ErrCompacted):
				st.log.Warn("metadata watch start compacted", "key", key, "from-revision", fromRev)
				final(fmt.Errorf("%w: %w", ErrWatchLagged, resp.Err))
				return
			case resp.Err != nil:
				final(resp.Err)
				return
			}
			for _, ev := range resp.Events {
				e, ok, err := convert(ev)
				if err != nil {
					final(err)
					return
				}
				if !ok {
					continue
				}
				if len(out) >= limit {
					st.log.Warn("metadata watch consumer lagged", "key", key, "buffer", limit, "revision", ev.KV.ModRevision)
					final(fmt.Errorf("%w: %d events unread", ErrWatchLagged, len(out)))
					return
				}
				out <- e
			}
		}
	})
	return out
}

func eventType(e kv.Event) EventType {
	if e.Type == kv.EventDelete {
		return EventDelete
	}
	return EventPut
}
