package metadata

import (
	"context"
	"fmt"
	"strings"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata/etcdserver"
	"github.com/dlog-io/dlog/internal/metadata/kv/etcdkv"
	"github.com/dlog-io/dlog/internal/metadata/kv/memkv"
)

// Open connects to the metadata service named by url:
//
//	http://h1:2379,http://h2:2379   an external etcd cluster (https:// too;
//	                                a bare host:port means http://)
//	embedded:DIR                    start a single-member etcd on loopback
//	                                with its data in DIR (kept across
//	                                restarts); the Store owns it and stops
//	                                it on Close
//	memory:                         a private in-memory store (tests)
//
// Connecting to an external cluster does not wait for it: an unreachable
// cluster shows as ErrUnavailable on the first calls.
func Open(ctx context.Context, url string, opts Options) (*KVStore, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	switch {
	case url == "memory:" || url == "memory":
		srv, err := memkv.NewServer(memkv.Config{})
		if err != nil {
			return nil, err
		}
		st, err := New(srv.Client(), opts)
		if err != nil {
			srv.Close()
			return nil, err
		}
		st.owned = append(st.owned, srv.Close)
		return st, nil
	case strings.HasPrefix(url, "embedded:"):
		dir := strings.TrimPrefix(url, "embedded:")
		if dir == "" {
			return nil, fmt.Errorf("%w: metadata url %q: embedded needs a directory", dlog.ErrInvalidArgument, url)
		}
		cfg := etcdserver.DefaultConfig(dir)
		cfg.Logger = opts.Logger
		if opts.EmbeddedClientURL != "" {
			cfg.ClientURLs = []string{opts.EmbeddedClientURL}
		}
		srv, err := etcdserver.Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		st, err := dial(srv.Endpoints(), opts)
		if err != nil {
			srv.Close()
			return nil, err
		}
		st.owned = append(st.owned, srv.Close)
		return st, nil
	default:
		var endpoints []string
		for _, e := range strings.Split(url, ",") {
			e = strings.TrimSpace(e)
			switch {
			case e == "":
				continue
			case strings.HasPrefix(e, "http://"), strings.HasPrefix(e, "https://"):
			case strings.Contains(e, "://"):
				return nil, fmt.Errorf("%w: metadata url %q: unknown scheme", dlog.ErrInvalidArgument, e)
			default:
				e = "http://" + e
			}
			endpoints = append(endpoints, e)
		}
		if len(endpoints) == 0 {
			return nil, fmt.Errorf("%w: metadata url %q: no endpoint", dlog.ErrInvalidArgument, url)
		}
		return dial(endpoints, opts)
	}
}

func dial(endpoints []string, opts Options) (*KVStore, error) {
	cfg := etcdkv.DefaultConfig(endpoints)
	cfg.Logger = opts.Logger
	backend, err := etcdkv.New(cfg)
	if err != nil {
		return nil, err
	}
	st, err := New(backend, opts)
	if err != nil {
		backend.Close()
		return nil, err
	}
	return st, nil
}
