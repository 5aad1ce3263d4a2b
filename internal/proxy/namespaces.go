package proxy

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/namespace"
)

// nsEntry is one namespace the proxy opened (or is opening: ready).
type nsEntry struct {
	ready chan struct{}
	ns    *namespace.Namespace
	err   error
}

type namespaces struct {
	mu     sync.Mutex
	byName map[string]*nsEntry
	closed bool
}

// namespace returns the open namespace called name ("" = the default),
// opening it on first use. Unless Config.CreateNamespaces, a namespace
// that does not exist (other than the default) is dlog.ErrNamespaceNotFound.
func (s *Server) namespace(ctx context.Context, name string) (*namespace.Namespace, error) {
	if name == "" {
		name = s.cfg.DefaultNamespace
	}
	if err := dlog.ValidateName(name); err != nil {
		return nil, fmt.Errorf("namespace: %w", err)
	}
	s.nss.mu.Lock()
	if s.nss.closed {
		s.nss.mu.Unlock()
		return nil, fmt.Errorf("proxy %s: %w", s.id, dlog.ErrClosed)
	}
	e := s.nss.byName[name]
	if e == nil {
		if len(s.nss.byName) >= s.cfg.MaxNamespaces {
			s.nss.mu.Unlock()
			return nil, fmt.Errorf("%w: proxy %s has %d namespaces open, its limit", dlog.ErrOverCapacity, s.id, len(s.nss.byName))
		}
		e = &nsEntry{ready: make(chan struct{})}
		s.nss.byName[name] = e
		s.nss.mu.Unlock()
		e.ns, e.err = s.openNamespace(ctx, name)
		if e.err != nil {
			s.nss.mu.Lock()
			delete(s.nss.byName, name)
			s.nss.mu.Unlock()
		}
		close(e.ready)
		return e.ns, e.err
	}
	s.nss.mu.Unlock()
	select {
	case <-e.ready:
		return e.ns, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Server) openNamespace(ctx context.Context, name string) (*namespace.Namespace, error) {
	if name != s.cfg.DefaultNamespace && !s.cfg.CreateNamespaces {
		_, _, err := s.store.GetNamespace(ctx, name)
		switch {
		case errors.Is(err, metadata.ErrNotFound):
			return nil, fmt.Errorf("namespace %s: %w", name, dlog.ErrNamespaceNotFound)
		case err != nil:
			return nil, fmt.Errorf("namespace %s: %w", name, err)
		}
	}
	cfg := s.cfg.Namespace
	cfg.MetadataURL = ""
	cfg.Store = s.store
	cfg.Namespace = name
	cfg.OwnerID = s.id
	cfg.Ledgers = s.ledgers
	cfg.SessionTTL = s.cfg.SessionTTL
	cfg.Logger = s.log
	cfg.Registerer = s.reg
	cfg.MaxRecordBytes = s.cfg.MaxRecordBytes
	// The proxy bounds pending writes itself (CODE_OVER_CAPACITY); the
	// writer's own bound sits above it so that it never refuses first.
	cfg.MaxPendingRecords = 2*s.cfg.MaxPendingRecordsPerLog + s.cfg.MaxBulkRecords
	cfg.MaxPendingBytes = 2*s.cfg.MaxPendingBytesPerLog + int64(s.cfg.MaxMessageBytes)
	// An entry must hold the largest record with its header and tag.
	entry := cfg.MaxEntryBytes
	if entry == 0 {
		entry = namespace.DefaultConfig("").MaxEntryBytes
	}
	if need := cfg.MaxRecordBytes + 256; entry < need {
		cfg.MaxEntryBytes = need
	}
	n, err := namespace.Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", name, err)
	}
	return n, nil
}

// closeNamespaces closes every namespace (after the streams: a namespace
// aborts writers still open).
func (s *Server) closeNamespaces() error {
	s.nss.mu.Lock()
	s.nss.closed = true
	all := make([]*nsEntry, 0, len(s.nss.byName))
	for _, e := range s.nss.byName {
		all = append(all, e)
	}
	s.nss.byName = nil
	s.nss.mu.Unlock()
	var errs []error
	for _, e := range all {
		<-e.ready
		if e.ns != nil {
			errs = append(errs, e.ns.Close())
		}
	}
	return errors.Join(errs...)
}

// logKey validates a request's log reference.
func (s *Server) logKey(ref *dlogpb.LogRef) (logKey, error) {
	ns := ref.GetNamespace()
	if ns == "" {
		ns = s.cfg.DefaultNamespace
	}
	if err := dlog.ValidateName(ns); err != nil {
		return logKey{}, fmt.Errorf("namespace: %w", err)
	}
	if err := dlog.ValidateName(ref.GetLog()); err != nil {
		return logKey{}, fmt.Errorf("log: %w", err)
	}
	return logKey{ns: ns, log: ref.GetLog()}, nil
}
