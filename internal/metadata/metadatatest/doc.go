// Package metadatatest is the conformance suite of metadata.Store: one set
// of tests that every backend must pass (the in-memory one and etcd, the
// latter against a real embedded server).
//
//	func TestConformance(t *testing.T) {
//		metadatatest.Run(t, metadatatest.Harness{Open: ..., KV: ..., Compact: ...})
//	}
//
// Every test runs in parallel with the others in its own cluster prefix
// (Options.Cluster), so one service serves the whole suite. Tests wait on
// conditions with generous deadlines (they only bound a hang) and never
// assert on timing. Lease tests use 1 s TTLs (etcd's minimum with a short
// election timeout) and take a few seconds each.
package metadatatest
