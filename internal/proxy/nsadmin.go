package proxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/internal/metadata"
)

// Namespace administration: metadata changes any proxy can make. A
// namespace's stored retention is the default of its logs; the collector
// of every proxy that opened the namespace reads it on each pass.

// nsErr maps a metadata error about namespace ns to the service's.
func nsErr(ns string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, metadata.ErrNotFound):
		return fmt.Errorf("namespace %s: %w", ns, dlog.ErrNamespaceNotFound)
	case errors.Is(err, metadata.ErrExists):
		return fmt.Errorf("namespace %s: %w", ns, dlog.ErrNamespaceExists)
	case errors.Is(err, metadata.ErrNotEmpty):
		return fmt.Errorf("namespace %s holds logs: %w", ns, dlog.ErrNamespaceNotEmpty)
	}
	return fmt.Errorf("namespace %s: %w", ns, err)
}

func checkNamespace(ns string) error {
	if err := dlog.ValidateName(ns); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	return nil
}

// retentionOf checks a request's namespace and retention.
func retentionOf(ns string, ms int64) (time.Duration, error) {
	if err := checkNamespace(ns); err != nil {
		return 0, err
	}
	if ms < 0 {
		return 0, fmt.Errorf("%w: negative retention", dlog.ErrInvalidArgument)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// ListNamespaces implements the RPC.
func (s adminService) ListNamespaces(ctx context.Context, _ *connect.Request[dlogpb.ListNamespacesRequest]) (*connect.Response[dlogpb.ListNamespacesResponse], error) {
	names, err := s.store.ListNamespaces(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&dlogpb.ListNamespacesResponse{Namespaces: names}), nil
}

// CreateNamespace implements the RPC.
func (s adminService) CreateNamespace(ctx context.Context, req *connect.Request[dlogpb.CreateNamespaceRequest]) (*connect.Response[dlogpb.CreateNamespaceResponse], error) {
	ns := req.Msg.GetNamespace()
	r, err := retentionOf(ns, req.Msg.GetRetentionMs())
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateNamespace(ctx, ns, metadata.NamespaceInfo{Created: time.Now(), Retention: r}); err != nil {
		return nil, nsErr(ns, err)
	}
	s.log.Info("namespace created", "namespace", ns, "retention", r)
	return connect.NewResponse(&dlogpb.CreateNamespaceResponse{}), nil
}

// GetNamespace implements the RPC.
func (s adminService) GetNamespace(ctx context.Context, req *connect.Request[dlogpb.GetNamespaceRequest]) (*connect.Response[dlogpb.GetNamespaceResponse], error) {
	ns := req.Msg.GetNamespace()
	if err := checkNamespace(ns); err != nil {
		return nil, err
	}
	info, _, err := s.store.GetNamespace(ctx, ns)
	if err != nil {
		return nil, nsErr(ns, err)
	}
	return connect.NewResponse(&dlogpb.GetNamespaceResponse{Namespace: ns, CreatedUnixMs: info.Created.UnixMilli(),
		RetentionMs: info.Retention.Milliseconds()}), nil
}

// SetNamespaceRetention implements the RPC.
func (s adminService) SetNamespaceRetention(ctx context.Context, req *connect.Request[dlogpb.SetNamespaceRetentionRequest]) (*connect.Response[dlogpb.SetNamespaceRetentionResponse], error) {
	ns := req.Msg.GetNamespace()
	r, err := retentionOf(ns, req.Msg.GetRetentionMs())
	if err != nil {
		return nil, err
	}
	err = metadata.ChangeNamespace(ctx, s.store, ns, func(info *metadata.NamespaceInfo) { info.Retention = r })
	if err != nil {
		return nil, nsErr(ns, err)
	}
	s.log.Info("namespace retention set", "namespace", ns, "retention", r)
	return connect.NewResponse(&dlogpb.SetNamespaceRetentionResponse{}), nil
}

// DeleteNamespace implements the RPC: only an empty namespace, and never
// this proxy's default one. The proxy closes its own handle on it; other
// proxies keep theirs until they stop (their requests then find no log and
// cannot create one).
func (s adminService) DeleteNamespace(ctx context.Context, req *connect.Request[dlogpb.DeleteNamespaceRequest]) (*connect.Response[dlogpb.DeleteNamespaceResponse], error) {
	ns := req.Msg.GetNamespace()
	if err := checkNamespace(ns); err != nil {
		return nil, err
	}
	if ns == s.cfg.DefaultNamespace {
		return nil, fmt.Errorf("%w: namespace %s is the default namespace of proxy %s", dlog.ErrInvalidArgument, ns, s.id)
	}
	if err := s.store.DeleteNamespace(ctx, ns); err != nil {
		return nil, nsErr(ns, err)
	}
	s.forgetNamespace(ns)
	s.log.Info("namespace deleted", "namespace", ns)
	return connect.NewResponse(&dlogpb.DeleteNamespaceResponse{}), nil
}

// forgetNamespace closes and drops this proxy's handle on ns, if any.
func (s *Server) forgetNamespace(ns string) {
	s.nss.mu.Lock()
	e := s.nss.byName[ns]
	if e != nil {
		delete(s.nss.byName, ns)
	}
	s.nss.mu.Unlock()
	if e == nil {
		return
	}
	<-e.ready
	if e.ns != nil {
		if err := e.ns.Close(); err != nil {
			s.log.Warn("close deleted namespace", "namespace", ns, "err", err)
		}
	}
}
