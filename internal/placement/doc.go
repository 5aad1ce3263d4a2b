// Package placement chooses the bookies of a ledger's ensemble, and
// replacements when a member fails, under three policies:
//
//   - Default: distinct writable bookies, uniformly at random.
//   - RackAware: every write set spans at least two racks when the snapshot
//     allows it (best effort otherwise, never a failure for that reason).
//   - RegionAware: every ack quorum — any Qa members of any write set —
//     spans at least minRegions regions, so an acknowledged entry is on
//     disks in minRegions regions (synchronous cross-region replication).
//     E is split evenly over regions and, inside each, over racks. The
//     configuration must satisfy BookKeeper's rules Qa ≥ minRegions and
//     Qa > Qw − Qw/minRegions; the rule is enforced, never relaxed.
//
// Write sets are the quorum package's: Qw consecutive ensemble indices,
// wrapping, one per start index (just one when E == Qw). Placement decides
// the order of the ensemble as well as its members, since which members
// share a write set depends on their indices.
//
// Policies are pure: they work on a snapshot of bookies (Bookie: id,
// region, rack, writable) that the ledger layer builds from the registry,
// and draw every choice from the *rand.Rand they were given, so a seed
// replays a run. Build a new policy when the registry changes; it is cheap.
//
// # Example
//
//	p, err := placement.NewRegionAware(snapshot, rand.New(rand.NewPCG(seed, 0)), 2)
//	ens, err := p.NewEnsemble(6, 6, 4, nil)
//	repl, err := p.ReplaceBookie(ens, 3, 6, 4, placement.NewSet(failed...))
//	reads := p.ReorderReadSet(writeSet, myRegion, myRack)
//
// Replacements never return a current member or an excluded bookie; a
// member missing from the snapshot (a departed bookie) counts against the
// rules as unknown: its own rack for RackAware, the worst region for
// RegionAware.
//
// # Concurrency
//
// A policy is not safe for concurrent use (it draws from its rand.Rand);
// AckQuorumsSpanRegions is a pure function.
package placement
