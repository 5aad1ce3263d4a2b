package client

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
)

// Namespace administration. Any proxy answers; the calls are metadata
// changes. A namespace's retention is the default of its logs that have
// none of their own; 0 falls back to the proxy's (dlog proxy --retention).

// NamespaceInfo describes a namespace.
type NamespaceInfo struct {
	Name      string
	Created   time.Time
	Retention time.Duration
}

func checkNamespace(ns string) error {
	if err := dlog.ValidateName(ns); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	return nil
}

func checkRetention(r time.Duration) error {
	if r < 0 {
		return fmt.Errorf("%w: negative retention %v", dlog.ErrInvalidArgument, r)
	}
	return nil
}

// Namespaces lists every namespace, sorted.
func (c *Client) Namespaces(ctx context.Context) ([]string, error) {
	var out []string
	_, err := c.call(ctx, "", routeAny, true, func(ctx context.Context, s *stubs) error {
		r, err := s.admin.ListNamespaces(ctx, connect.NewRequest(&dlogpb.ListNamespacesRequest{}))
		if err == nil {
			out = r.Msg.GetNamespaces()
		}
		return err
	})
	return out, err
}

// CreateNamespace creates an empty namespace. Errors: dlog.ErrInvalidName,
// dlog.ErrInvalidArgument, dlog.ErrNamespaceExists (definite); a failure
// after sending is indeterminate (a retry then gets ErrNamespaceExists).
func (c *Client) CreateNamespace(ctx context.Context, ns string, retention time.Duration) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	if err := checkRetention(retention); err != nil {
		return err
	}
	_, err := c.call(ctx, "", routeAny, false, func(ctx context.Context, s *stubs) error {
		_, err := s.admin.CreateNamespace(ctx, connect.NewRequest(&dlogpb.CreateNamespaceRequest{Namespace: ns, RetentionMs: retention.Milliseconds()}))
		return err
	})
	return err
}

// NamespaceInfo describes namespace ns. Errors: dlog.ErrNamespaceNotFound.
func (c *Client) NamespaceInfo(ctx context.Context, ns string) (NamespaceInfo, error) {
	if err := checkNamespace(ns); err != nil {
		return NamespaceInfo{}, err
	}
	var m *dlogpb.GetNamespaceResponse
	_, err := c.call(ctx, "", routeAny, true, func(ctx context.Context, s *stubs) error {
		r, err := s.admin.GetNamespace(ctx, connect.NewRequest(&dlogpb.GetNamespaceRequest{Namespace: ns}))
		if err == nil {
			m = r.Msg
		}
		return err
	})
	if err != nil {
		return NamespaceInfo{}, err
	}
	return NamespaceInfo{Name: m.GetNamespace(), Created: time.UnixMilli(m.GetCreatedUnixMs()),
		Retention: time.Duration(m.GetRetentionMs()) * time.Millisecond}, nil
}

// SetNamespaceRetention changes the default retention of the namespace's
// logs (0: the proxy's). Idempotent. Errors: dlog.ErrNamespaceNotFound,
// dlog.ErrInvalidArgument (definite).
func (c *Client) SetNamespaceRetention(ctx context.Context, ns string, retention time.Duration) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	if err := checkRetention(retention); err != nil {
		return err
	}
	_, err := c.call(ctx, "", routeAny, true, func(ctx context.Context, s *stubs) error {
		_, err := s.admin.SetNamespaceRetention(ctx, connect.NewRequest(&dlogpb.SetNamespaceRetentionRequest{Namespace: ns, RetentionMs: retention.Milliseconds()}))
		return err
	})
	return err
}

// DeleteNamespace deletes an empty namespace. Errors:
// dlog.ErrNamespaceNotFound, dlog.ErrNamespaceNotEmpty (it holds logs),
// dlog.ErrInvalidArgument (the answering proxy's default namespace); all
// definite.
func (c *Client) DeleteNamespace(ctx context.Context, ns string) error {
	if err := checkNamespace(ns); err != nil {
		return err
	}
	_, err := c.call(ctx, "", routeAny, false, func(ctx context.Context, s *stubs) error {
		_, err := s.admin.DeleteNamespace(ctx, connect.NewRequest(&dlogpb.DeleteNamespaceRequest{Namespace: ns}))
		return err
	})
	return err
}
