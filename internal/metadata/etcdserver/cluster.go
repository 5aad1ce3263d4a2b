package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Cluster is a multi-member etcd cluster running in this process, for tests
// of leader loss and fail-over.
type Cluster struct {
	Members []*Server
}

// StartCluster starts n members with data directories dir/m0, dir/m1, ...
// and waits until all of them serve requests. tune, if not nil, adjusts each
// member's configuration (its URLs and InitialCluster are set already).
func StartCluster(ctx context.Context, dir string, n int, tune func(i int, cfg *Config)) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("etcdserver: cluster of %d members", n)
	}
	var lastErr error
	for range 3 { // a port picked free may be taken before etcd binds it
		c, err := startClusterOnce(ctx, dir, n, tune)
		if err == nil {
			return c, nil
		}
		lastErr = err
		inUse := errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
		if !inUse || ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func startClusterOnce(ctx context.Context, dir string, n int, tune func(int, *Config)) (*Cluster, error) {
	urls, err := FreeLoopbackURLs(2 * n)
	if err != nil {
		return nil, err
	}
	cfgs := make([]Config, n)
	initial := make([]string, n)
	for i := range n {
		cfgs[i] = DefaultConfig(filepath.Join(dir, fmt.Sprintf("m%d", i)))
		cfgs[i].Name = fmt.Sprintf("m%d", i)
		cfgs[i].ClientURLs = []string{urls[2*i]}
		cfgs[i].PeerURLs = []string{urls[2*i+1]}
		// Several members on a shared, loaded machine: keep elections rarer
		// than the single-member default.
		cfgs[i].TickMs = 50
		cfgs[i].ElectionMs = 500
		initial[i] = cfgs[i].Name + "=" + urls[2*i+1]
	}
	c := &Cluster{Members: make([]*Server, n)}
	for i := range n {
		cfgs[i].InitialCluster = strings.Join(initial, ",")
		if tune != nil {
			tune(i, &cfgs[i])
		}
		s, err := launch(cfgs[i])
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Members[i] = s
	}
	// Members become ready only together (a quorum is needed), so wait for
	// all of them after launching all of them.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, s := range c.Members {
		wg.Go(func() { errs[i] = s.waitReady(ctx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Endpoints returns the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, s := range c.Members {
		if s != nil {
			out = append(out, s.Endpoints()...)
		}
	}
	return out
}

// Leader returns the index of the member that believes it leads, or -1.
func (c *Cluster) Leader() int {
	for i, s := range c.Members {
		if s != nil && s.IsLeader() {
			return i
		}
	}
	return -1
}

// Close stops every member. Safe to call more than once.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, s := range c.Members {
		if s != nil {
			wg.Go(s.Close)
		}
	}
	wg.Wait()
}
