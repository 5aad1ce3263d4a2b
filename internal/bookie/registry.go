package bookie

import (
	"context"
	"errors"
	"time"

	"github.com/dlog-io/dlog/internal/metadata"
)

// runRegistrar keeps the bookie registered in metadata under a session
// lease: it registers, re-registers when the state changes (read-only and
// back, free space), starts a new session when the lease is lost, and
// closes the session (removing the registration) when the bookie stops.
// Failures are retried with a capped backoff.
func (b *Bookie) runRegistrar() {
	md := b.cfg.Metadata
	var sess metadata.Session
	defer func() {
		b.registered.Store(false)
		if sess != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := sess.Close(ctx); err != nil {
				b.log.Warn("deregister: closing the metadata session failed; the registration expires with its lease", "err", err)
			}
			cancel()
		}
	}()
	backoff := 100 * time.Millisecond
	retry := func() bool {
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(2*backoff, 5*time.Second)
		select {
		case <-t.C:
			return true
		case <-b.stopc:
			return false
		}
	}
	for {
		if sess == nil {
			s, err := md.NewSession(b.runCtx, b.cfg.SessionTTL)
			if err != nil {
				if b.runCtx.Err() != nil {
					return
				}
				b.log.Warn("metadata session failed; retrying", "err", err)
				if !retry() {
					return
				}
				continue
			}
			sess = s
		}
		err := md.RegisterBookie(b.runCtx, sess, b.registration())
		switch {
		case err == nil:
			if !b.registered.Swap(true) {
				b.log.Info("registered in metadata", "ttl", sess.TTL())
			}
			backoff = 100 * time.Millisecond
		case b.runCtx.Err() != nil:
			return
		case errors.Is(err, metadata.ErrSessionExpired):
			b.registered.Store(false)
			sess = nil
			continue
		default:
			// ErrExists: the lease of a previous incarnation still holds
			// the id; it expires within its TTL.
			b.registered.Store(false)
			b.log.Warn("registration failed; retrying", "err", err)
			if !retry() {
				return
			}
			continue
		}
		select {
		case <-b.stopc:
			return
		case <-sess.Done():
			b.registered.Store(false)
			b.log.Warn("metadata session lost; registering again")
			sess = nil
		case <-b.stateChanged:
		}
	}
}

// registration is what the bookie registers.
func (b *Bookie) registration() metadata.BookieInfo {
	info := b.Info()
	state := metadata.BookieWritable
	if info.ReadOnlyReason != "" {
		state = metadata.BookieReadOnly
	}
	return metadata.BookieInfo{
		ID: b.id, Address: b.addr, Region: b.cfg.Region, Rack: b.cfg.Rack, State: state,
		InstanceID: b.cookie.InstanceID, FreeBytes: info.FreeBytes, TotalBytes: info.TotalBytes,
	}
}
