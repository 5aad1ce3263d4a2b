package ledger

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dlog-io/dlog/internal/bookieclient"
)

// PlacementPolicy names the placement policy the client uses for new
// ensembles and replacements (see package placement).
type PlacementPolicy int

const (
	// PlacementDefault: distinct writable bookies at random.
	PlacementDefault PlacementPolicy = iota + 1
	// PlacementRackAware: every write set spans two racks when possible.
	PlacementRackAware
	// PlacementRegionAware: every ack quorum spans MinRegions regions.
	PlacementRegionAware
)

func (p PlacementPolicy) String() string {
	switch p {
	case PlacementDefault:
		return "default"
	case PlacementRackAware:
		return "rack-aware"
	case PlacementRegionAware:
		return "region-aware"
	}
	return fmt.Sprintf("PlacementPolicy(%d)", int(p))
}

// Config configures a Client. Durations are wall-clock; every timeout bounds
// one request to one bookie (or one metadata call) unless said otherwise.
type Config struct {
	// Placement is the policy for new ensembles and replacements. Default
	// PlacementDefault.
	Placement PlacementPolicy
	// MinRegions is the number of regions every ack quorum must span under
	// PlacementRegionAware (ignored otherwise; recorded in the ledger's
	// metadata). Default 2.
	MinRegions int
	// Region and Rack locate this client; reads try bookies in the same
	// rack, then region, first (placement.ReorderReadSet). Default "".
	Region, Rack string
	// Seed seeds the placement policy's random choices; 0 draws a random
	// seed. Fixed seeds make placement reproducible in tests.
	Seed uint64

	// MaxPendingAdds bounds the entries of one writer that are added but
	// whose callbacks have not yet run. AddAsync blocks while the bound is
	// reached, until a slot frees or its ctx ends (then ErrOverloaded).
	// Larger allows more pipelining per writer at the cost of memory (each
	// pending entry keeps its payload for resends). Default 4096.
	MaxPendingAdds int
	// MaxEntryBytes bounds one entry's payload; larger adds fail at once
	// with ErrTooLarge. Bookies receive the payload plus an 8-byte header
	// (see Entry format in the package documentation), so MaxEntryBytes + 8
	// must not exceed what bookies accept. Default 4 MiB.
	MaxEntryBytes int
	// AddTimeout bounds one add to one bookie. A bookie that has not acked
	// in time counts as failed and is replaced by an ensemble change.
	// Shorter reacts faster to a stuck bookie; too short replaces bookies
	// that are merely slow. Default 5 s.
	AddTimeout time.Duration
	// ExplicitLACDelay: when a writer becomes idle (nothing in flight) with
	// a LAC that no add has carried yet, it sends WriteLAC to its ensemble
	// after this delay, so tailing readers see the last entry without
	// waiting for the next add. 0 disables explicit LAC. Default 5 ms.
	ExplicitLACDelay time.Duration

	// FenceTimeout bounds each fencing read of recovery. Recovery proceeds
	// as soon as the answers cover every write set, so a silent bookie only
	// costs this long when it is needed for coverage. Default 5 s.
	FenceTimeout time.Duration
	// RecoveryReadTimeout bounds each recovery read and recovery add.
	// Default 5 s.
	RecoveryReadTimeout time.Duration
	// RecoveryWindow is the number of entries recovery reads (and
	// re-replicates) concurrently. Default 16.
	RecoveryWindow int

	// ReadTimeout bounds each read request to one bookie (also ReadLAC
	// without long poll). Default 5 s.
	ReadTimeout time.Duration
	// SpeculativeReadTimeout: a read that has no answer from the first
	// bookie after this long is also sent to the next bookie of the write
	// set (first valid answer wins). With AdaptiveSpeculativeReads it is the
	// ceiling and the starting value. 0 disables speculation (the next
	// bookie is asked only after an error). Default 50 ms.
	SpeculativeReadTimeout time.Duration
	// AdaptiveSpeculativeReads sets the speculative timeout to the p99 of
	// recent successful read latencies (at least SpeculativeReadTimeoutMin,
	// at most SpeculativeReadTimeout). Default true.
	AdaptiveSpeculativeReads bool
	// SpeculativeReadTimeoutMin floors the adaptive timeout. Default 2 ms.
	SpeculativeReadTimeoutMin time.Duration
	// ReadAhead is how many entries one Read call fetches concurrently.
	// Default 16.
	ReadAhead int
	// LongPollTimeout is how long one ReadLAC long poll may wait at a
	// bookie before it answers "no change" (WaitLAC then polls again).
	// Default 10 s.
	LongPollTimeout time.Duration
	// MetadataTimeout bounds each metadata call made on behalf of a writer
	// (ensemble change, close). Default 10 s.
	MetadataTimeout time.Duration

	// Bookies is a bookie client to share (New does not close it). Nil: New
	// creates one from BookieClient and Close closes it.
	Bookies *bookieclient.Client
	// BookieClient configures the bookie client New creates when Bookies
	// is nil. Default bookieclient.DefaultConfig().
	BookieClient bookieclient.Config
	// ResolveAddress, when set, maps a bookie's id and registered address
	// to the address this client dials (e.g. through a fault-injecting
	// proxy in tests, or NAT). registered is "" when no usable address is
	// known; returning "" means unreachable. It must be fast and must not
	// block.
	ResolveAddress func(bookieID, registered string) string

	// Logger receives events (kebab-case keys: "ledger-id", "entry-id",
	// "bookie"); nil discards.
	Logger *slog.Logger
	// Registerer receives the client's Prometheus metrics; nil does not
	// register them. Clients sharing a registerer share the collectors.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{
		Placement:                 PlacementDefault,
		MinRegions:                2,
		MaxPendingAdds:            4096,
		MaxEntryBytes:             4 << 20,
		AddTimeout:                5 * time.Second,
		ExplicitLACDelay:          5 * time.Millisecond,
		FenceTimeout:              5 * time.Second,
		RecoveryReadTimeout:       5 * time.Second,
		RecoveryWindow:            16,
		ReadTimeout:               5 * time.Second,
		SpeculativeReadTimeout:    50 * time.Millisecond,
		AdaptiveSpeculativeReads:  true,
		SpeculativeReadTimeoutMin: 2 * time.Millisecond,
		ReadAhead:                 16,
		LongPollTimeout:           10 * time.Second,
		MetadataTimeout:           10 * time.Second,
		BookieClient:              bookieclient.DefaultConfig(),
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: config: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Placement < PlacementDefault || c.Placement > PlacementRegionAware:
		return bad("placement policy %d", int(c.Placement))
	case c.Placement == PlacementRegionAware && c.MinRegions < 1:
		return bad("region-aware placement needs MinRegions >= 1, have %d", c.MinRegions)
	case c.MaxPendingAdds < 1:
		return bad("MaxPendingAdds %d < 1", c.MaxPendingAdds)
	case c.MaxEntryBytes < 1:
		return bad("MaxEntryBytes %d < 1", c.MaxEntryBytes)
	case c.AddTimeout <= 0, c.FenceTimeout <= 0, c.RecoveryReadTimeout <= 0,
		c.ReadTimeout <= 0, c.LongPollTimeout <= 0, c.MetadataTimeout <= 0:
		return bad("timeouts must be positive")
	case c.ExplicitLACDelay < 0:
		return bad("ExplicitLACDelay %v < 0", c.ExplicitLACDelay)
	case c.SpeculativeReadTimeout < 0 || c.SpeculativeReadTimeoutMin < 0:
		return bad("speculative read timeouts must not be negative")
	case c.AdaptiveSpeculativeReads && c.SpeculativeReadTimeout > 0 && c.SpeculativeReadTimeoutMin > c.SpeculativeReadTimeout:
		return bad("SpeculativeReadTimeoutMin %v exceeds SpeculativeReadTimeout %v", c.SpeculativeReadTimeoutMin, c.SpeculativeReadTimeout)
	case c.RecoveryWindow < 1:
		return bad("RecoveryWindow %d < 1", c.RecoveryWindow)
	case c.ReadAhead < 1:
		return bad("ReadAhead %d < 1", c.ReadAhead)
	}
	if c.Bookies == nil {
		if err := c.BookieClient.Validate(); err != nil {
			return fmt.Errorf("%w: config: %w", ErrInvalidArgument, err)
		}
	}
	return nil
}

// CreateOptions are the replication sizes and custom metadata of a new
// ledger.
type CreateOptions struct {
	// EnsembleSize (E), WriteQuorum (Qw), AckQuorum (Qa): every entry goes
	// to Qw of the E bookies and is acknowledged once Qa fsynced it. Must
	// satisfy E >= Qw >= Qa >= 1 and the placement policy's rules.
	EnsembleSize, WriteQuorum, AckQuorum int
	// Custom is stored in the ledger's metadata as is (UTF-8 keys and
	// values).
	Custom map[string]string
}

// DefaultCreateOptions returns E=3, Qw=3, Qa=2 (DistributedLog's default).
func DefaultCreateOptions() CreateOptions {
	return CreateOptions{EnsembleSize: 3, WriteQuorum: 3, AckQuorum: 2}
}
