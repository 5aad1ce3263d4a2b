package ledger

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/dlog-io/dlog/internal/bookieclient"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/placement"
	"github.com/dlog-io/dlog/internal/quorum"
)

// masterKeyBytes is the length of the random master key of a new ledger.
const masterKeyBytes = 20

// Client creates, writes, recovers, reads and deletes ledgers. It keeps a
// current view of the bookie registry (one watch goroutine) and shares one
// bookie client between everything it opens. It is safe for concurrent use.
type Client struct {
	cfg     Config
	store   metadata.Store
	bk      *bookieclient.Client
	ownBK   bool
	log     *slog.Logger
	metrics *metrics
	spec    *latencyWindow // recent read latencies, for speculative reads

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.RWMutex
		// bookies are the live registrations by id.
		bookies map[string]metadata.BookieInfo
		// known is the last address seen for every bookie ever registered
		// while this client ran: a bookie whose lease expired (crashed,
		// partitioned from etcd) may still hold data worth reading.
		known map[string]string
		// changed is closed (and replaced) on every registry change.
		changed chan struct{}
		// rng feeds the placement policies; guarded because policies draw
		// from it.
		rng    *mrand.Rand
		closed bool
		// writers are the writers not yet closed or aborted; Close aborts
		// them.
		writers map[*Writer]struct{}
		// readPolicy orders read sets; rebuilt on registry changes and used
		// under orderMu (policies are not safe for concurrent use).
		readPolicy placement.Policy
	}
	orderMu sync.Mutex
}

// New returns a client on store. It lists the registered bookies before it
// returns (so Create can place at once) and watches the registry until
// Close. Writers and readers must be closed before the client.
func New(ctx context.Context, store metadata.Store, cfg Config) (*Client, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: nil metadata store", ErrInvalidArgument)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, store: store, log: cfg.Logger, metrics: newMetrics(cfg.Registerer)}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.spec = newLatencyWindow(cfg.SpeculativeReadTimeout, cfg.SpeculativeReadTimeoutMin, cfg.AdaptiveSpeculativeReads)
	seed := cfg.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	c.mu.rng = mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	c.mu.bookies = make(map[string]metadata.BookieInfo)
	c.mu.known = make(map[string]string)
	c.mu.changed = make(chan struct{})
	c.mu.writers = make(map[*Writer]struct{})

	bookies, rev, err := store.ListBookies(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger client: list bookies: %w", err)
	}
	c.replaceBookies(bookies)

	if cfg.Bookies != nil {
		c.bk = cfg.Bookies
	} else {
		bcfg := cfg.BookieClient
		if bcfg.Logger == nil {
			bcfg.Logger = cfg.Logger
		}
		if c.bk, err = bookieclient.New(bcfg); err != nil {
			return nil, err
		}
		c.ownBK = true
	}
	wctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Go(func() { c.watchRegistry(wctx, rev) })
	return c, nil
}

// Close aborts the writers still open (see Writer.Abort), stops the
// registry watch and, if the client created its bookie client, closes it
// (failing whatever is still in flight). Readers need no closing.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.closed = true
	writers := make([]*Writer, 0, len(c.mu.writers))
	for w := range c.mu.writers {
		writers = append(writers, w)
	}
	c.mu.Unlock()
	for _, w := range writers {
		w.Abort()
	}
	c.cancel()
	c.wg.Wait()
	if c.ownBK {
		return c.bk.Close()
	}
	return nil
}

// Bookies returns the live registered bookies, sorted by id.
func (c *Client) Bookies() []metadata.BookieInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]metadata.BookieInfo, 0, len(c.mu.bookies))
	for _, b := range c.mu.bookies {
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b metadata.BookieInfo) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// BookieClient returns the bookie client this client uses (for tools and
// tests that talk to single bookies).
func (c *Client) BookieClient() *bookieclient.Client { return c.bk }

// Address returns the address this client dials for a bookie id: its live
// registration, else the last address it was seen at, unless another live
// bookie now registers that address (a new incarnation answering there
// must never be taken for the old one). ok is false when no usable address
// is known.
func (c *Client) Address(bookieID string) (addr string, ok bool) {
	c.mu.RLock()
	b, live := c.mu.bookies[bookieID]
	if live {
		addr = b.Address
	} else {
		addr = c.mu.known[bookieID]
		for id, other := range c.mu.bookies {
			if other.Address == addr && id != bookieID {
				addr = ""
				break
			}
		}
	}
	c.mu.RUnlock()
	if c.cfg.ResolveAddress != nil {
		addr = c.cfg.ResolveAddress(bookieID, addr)
	}
	return addr, addr != ""
}

// registryChanged returns a channel closed at the next registry change.
func (c *Client) registryChanged() <-chan struct{} {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.mu.changed
}

func (c *Client) replaceBookies(bs []metadata.BookieInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.bookies = make(map[string]metadata.BookieInfo, len(bs))
	for _, b := range bs {
		c.mu.bookies[b.ID] = b
		c.mu.known[b.ID] = b.Address
	}
	c.registryChangedLocked()
}

func (c *Client) applyBookieEvent(ev metadata.BookieEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.Type {
	case metadata.EventPut:
		c.mu.bookies[ev.Bookie.ID] = ev.Bookie
		c.mu.known[ev.Bookie.ID] = ev.Bookie.Address
	case metadata.EventDelete:
		delete(c.mu.bookies, ev.Bookie.ID)
	}
	c.registryChangedLocked()
}

// watchRegistry keeps c.mu.bookies current until ctx ends. A lagged or
// broken watch is followed by a fresh list and a new watch.
func (c *Client) watchRegistry(ctx context.Context, rev int64) {
	backoff := newBackoff(50*time.Millisecond, 2*time.Second)
	for {
		for ev := range c.store.WatchBookies(ctx, rev+1) {
			if ev.Err != nil {
				if errors.Is(ev.Err, metadata.ErrClosed) {
					return
				}
				c.log.Warn("bookie registry watch ended; re-listing", "err", ev.Err)
				break
			}
			c.applyBookieEvent(ev)
			rev = ev.Revision
		}
		for {
			if ctx.Err() != nil {
				return
			}
			bs, r, err := c.store.ListBookies(ctx)
			if err == nil {
				c.replaceBookies(bs)
				rev = r
				backoff.reset()
				break
			}
			if errors.Is(err, metadata.ErrClosed) {
				return
			}
			c.log.Warn("list bookies", "err", err)
			if !backoff.wait(ctx) {
				return
			}
		}
	}
}

// withPolicy runs fn with a placement policy over the current registry.
func (c *Client) withPolicy(fn func(placement.Policy) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.policyLocked()
	if err != nil {
		return err
	}
	return fn(p)
}

// snapshotLocked is the registry as placement sees it.
func (c *Client) snapshotLocked() []placement.Bookie {
	snap := make([]placement.Bookie, 0, len(c.mu.bookies))
	for _, b := range c.mu.bookies {
		snap = append(snap, placement.Bookie{ID: b.ID, Region: b.Region, Rack: b.Rack, Writable: b.State == metadata.BookieWritable})
	}
	return snap
}

// policyLocked builds the configured policy over the current registry.
func (c *Client) policyLocked() (placement.Policy, error) {
	snap := c.snapshotLocked()
	var (
		p   placement.Policy
		err error
	)
	switch c.cfg.Placement {
	case PlacementRackAware:
		p, err = placement.NewRackAware(snap, c.mu.rng)
	case PlacementRegionAware:
		p, err = placement.NewRegionAware(snap, c.mu.rng, c.cfg.MinRegions)
	default:
		p, err = placement.NewDefault(snap, c.mu.rng)
	}
	return p, err
}

// readOrder returns the bookies of a write set in the order reads try them:
// placement.ReorderReadSet with the client's region and rack.
func (c *Client) readOrder(writeSet []string) []string {
	c.mu.RLock()
	p := c.mu.readPolicy
	c.mu.RUnlock()
	if p == nil {
		return slices.Clone(writeSet)
	}
	c.orderMu.Lock()
	defer c.orderMu.Unlock()
	return p.ReorderReadSet(writeSet, c.cfg.Region, c.cfg.Rack)
}

// registryChangedLocked rebuilds what depends on the registry and wakes
// its waiters.
func (c *Client) registryChangedLocked() {
	// The read-order policy draws no random numbers; a private source
	// keeps the placement sequence independent of reads.
	c.mu.readPolicy = nil
	snap := c.snapshotLocked()
	if p, err := placement.NewDefault(snap, mrand.New(mrand.NewPCG(1, 2))); err == nil {
		c.mu.readPolicy = p
	}
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
}

// replacements picks a replacement for every index of failed it can,
// returning them and the ensemble with them installed.
func (c *Client) replacements(ensemble []string, failed []int, p quorum.Params, exclude placement.Set) (map[int]string, []string, error) {
	next := slices.Clone(ensemble)
	repl := make(map[int]string)
	var lastErr error
	err := c.withPolicy(func(pol placement.Policy) error {
		for _, idx := range failed {
			id, err := pol.ReplaceBookie(next, idx, p.WriteQuorum, p.AckQuorum, exclude)
			if err != nil {
				lastErr = err
				continue
			}
			next[idx] = id
			repl[idx] = id
		}
		return nil
	})
	if err != nil {
		return nil, ensemble, err
	}
	return repl, next, lastErr
}

// Create makes a new ledger: validates the sizes (and the placement
// policy's rules), places an ensemble on writable registered bookies,
// draws a random master key and stores the metadata (state OPEN, one
// fragment from entry 0) before anything is added. Errors: ErrInvalidArgument,
// ErrNotEnoughBookies, metadata errors (metadata.ErrUnavailable: an id may
// have been consumed; nothing else happened).
func (c *Client) Create(ctx context.Context, opts CreateOptions) (*Writer, error) {
	p := quorum.Params{EnsembleSize: opts.EnsembleSize, WriteQuorum: opts.WriteQuorum, AckQuorum: opts.AckQuorum}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	var ensemble []string
	err := c.withPolicy(func(pol placement.Policy) error {
		if err := pol.Validate(p.EnsembleSize, p.WriteQuorum, p.AckQuorum); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		var err error
		ensemble, err = pol.NewEnsemble(p.EnsembleSize, p.WriteQuorum, p.AckQuorum, nil)
		if errors.Is(err, placement.ErrNotEnoughBookies) {
			return fmt.Errorf("%w: %w", ErrNotEnoughBookies, err)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create ledger: %w", err)
	}
	key := make([]byte, masterKeyBytes)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create ledger: master key: %w", err)
	}
	id, err := c.store.NewLedgerID(ctx)
	if err != nil {
		return nil, fmt.Errorf("create ledger: %w", err)
	}
	md := metadata.LedgerMetadata{
		EnsembleSize: p.EnsembleSize,
		WriteQuorum:  p.WriteQuorum,
		AckQuorum:    p.AckQuorum,
		State:        metadata.LedgerOpen,
		LastEntryID:  -1,
		Fragments:    []metadata.Fragment{{FirstEntryID: 0, Bookies: ensemble}},
		MasterKey:    key,
		Custom:       opts.Custom,
		Created:      time.Now(),
		EntryFormat:  currentFormat,
	}
	if c.cfg.Placement == PlacementRegionAware {
		md.MinRegions = c.cfg.MinRegions
	}
	ver, err := c.store.CreateLedger(ctx, id, md)
	if err != nil {
		return nil, fmt.Errorf("create ledger %d: %w", id, err)
	}
	c.log.Debug("ledger created", "ledger-id", id, "ensemble", ensemble, "params", p.String())
	w, err := newWriter(c, id, md, ver)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	closed := c.mu.closed
	if !closed {
		c.mu.writers[w] = struct{}{}
	}
	c.mu.Unlock()
	if closed {
		w.Abort()
		return nil, fmt.Errorf("create ledger %d: %w", id, ErrClosed)
	}
	return w, nil
}

func (c *Client) forgetWriter(w *Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.mu.writers, w)
}

// Metadata reads a ledger's metadata. ErrNoLedger if it does not exist.
func (c *Client) Metadata(ctx context.Context, id int64) (metadata.LedgerMetadata, metadata.Version, error) {
	md, ver, err := c.store.GetLedger(ctx, id)
	if errors.Is(err, metadata.ErrNotFound) {
		return md, ver, fmt.Errorf("ledger %d: %w", id, ErrNoLedger)
	}
	return md, ver, err
}

// Delete deletes a ledger: first its metadata (the commit point: from then
// on the ledger does not exist), then its data on every bookie of every
// fragment, best effort. A bookie that is down or unreachable keeps the
// data until its garbage collection finds the ledger gone from metadata;
// such failures are logged, not returned. Deleting a ledger that a writer
// still uses makes that writer fail. ErrNoLedger if it does not exist.
func (c *Client) Delete(ctx context.Context, id int64) error {
	var md metadata.LedgerMetadata
	for attempt := 0; ; attempt++ {
		var (
			ver metadata.Version
			err error
		)
		md, ver, err = c.Metadata(ctx, id)
		if err != nil {
			return fmt.Errorf("delete ledger %d: %w", id, err)
		}
		err = c.store.DeleteLedger(ctx, id, ver)
		if err == nil {
			break
		}
		if errors.Is(err, metadata.ErrNotFound) {
			return fmt.Errorf("delete ledger %d: %w", id, ErrNoLedger)
		}
		if !errors.Is(err, metadata.ErrBadVersion) || attempt >= 8 {
			return fmt.Errorf("delete ledger %d: %w", id, err)
		}
	}
	seen := make(map[string]bool)
	var wg sync.WaitGroup
	for _, f := range md.Fragments {
		for _, b := range f.Bookies {
			if seen[b] {
				continue
			}
			seen[b] = true
			addr, ok := c.Address(b)
			if !ok {
				c.log.Warn("ledger data left on a bookie with no known address", "ledger-id", id, "bookie", b)
				continue
			}
			wg.Go(func() {
				dctx, cancel := context.WithTimeout(ctx, c.cfg.ReadTimeout)
				defer cancel()
				if err := c.bk.Delete(dctx, addr, id); err != nil && !errors.Is(err, bookieclient.ErrNoLedger) {
					c.log.Warn("ledger data left on bookie until its garbage collection", "ledger-id", id, "bookie", b, "err", err)
				}
			})
		}
	}
	wg.Wait()
	c.log.Debug("ledger deleted", "ledger-id", id)
	return nil
}

// cloneMetadata returns a deep copy (LedgerMetadata holds slices and a map).
func cloneMetadata(m metadata.LedgerMetadata) metadata.LedgerMetadata {
	out := m
	out.Fragments = make([]metadata.Fragment, len(m.Fragments))
	for i, f := range m.Fragments {
		out.Fragments[i] = metadata.Fragment{FirstEntryID: f.FirstEntryID, Bookies: slices.Clone(f.Bookies)}
	}
	out.MasterKey = slices.Clone(m.MasterKey)
	if m.Custom != nil {
		out.Custom = make(map[string]string, len(m.Custom))
		for k, v := range m.Custom {
			out.Custom[k] = v
		}
	}
	return out
}

// sameLedger reports whether two metadata values describe the same ledger
// state (used to recognise our own write after an indeterminate CAS).
func sameLedger(a, b metadata.LedgerMetadata) bool {
	if a.State != b.State || a.LastEntryID != b.LastEntryID || a.Length != b.Length || len(a.Fragments) != len(b.Fragments) {
		return false
	}
	for i := range a.Fragments {
		if a.Fragments[i].FirstEntryID != b.Fragments[i].FirstEntryID || !slices.Equal(a.Fragments[i].Bookies, b.Fragments[i].Bookies) {
			return false
		}
	}
	return true
}

// fragmentFor returns the index of the fragment holding entryID.
func fragmentFor(m metadata.LedgerMetadata, entryID int64) int {
	i := len(m.Fragments) - 1
	for i > 0 && m.Fragments[i].FirstEntryID > entryID {
		i--
	}
	return i
}

// backoff is a capped exponential delay for retry loops.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(minDelay, maxDelay time.Duration) *backoff {
	return &backoff{min: minDelay, max: maxDelay, cur: minDelay}
}

func (b *backoff) reset() { b.cur = b.min }

// wait sleeps for the current delay (then doubles it) unless ctx ends
// first; it reports whether ctx is still live.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.cur)
	defer t.Stop()
	b.cur = min(2*b.cur, b.max)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
