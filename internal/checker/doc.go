// Package checker judges a recorded history (package history) and the
// final drain read of every log against dlog's guarantees (DESIGN.md §3,
// reliability-testing.md §3 and §4.2). It needs no help from the system:
// like Jepsen's queue checker, it rebuilds each log's order from what
// clients were told and what readers saw.
//
//	rep, err := checker.CheckFiles("history.jsonl", "drain.jsonl", checker.Options{})
//	rep.WriteTable(os.Stdout)   // or json.Marshal(rep)
//	if !rep.Valid { ... }
//
// Everything is per log. Each property reports a count and up to
// Options.MaxExamples examples with the history events (by line) and drain
// records involved.
//
// # Terms
//
// An attempt is one append of one value (an append, or one record of an
// append-bulk). It is ok, fail (definite), info (indeterminate) or pending
// (never completed: treated as info). A value is observed at a DLSN by an
// ok attempt (its acknowledgement), by a reader session's delivery, or by
// the drain. An indeterminate attempt is resolved present if its value was
// delivered by a reader or the drain, absent otherwise (a statistic). T is
// the final truncation point from the drain.
//
// # Properties
//
//   - lost: an ok attempt's value is not in the drain at exactly its DLSN,
//     and no truncation excuses it. Truncation excuses a record at d if
//     d < T and some truncate (ok or indeterminate) with target > d had not
//     completed when the append was invoked. Why not only truncates
//     invoked after the ack (G1's words)? A truncate concurrent with an
//     append may be linearized after it and then legitimately delete it;
//     the target of a truncate is a DLSN the client saw, and a concurrent
//     append may land below it. A truncate that completed before the
//     append was even invoked cannot excuse it: the record was then
//     acknowledged inside an already truncated range, which is a loss.
//     Options.StrictTruncation applies G1's literal rule instead. Also
//     lost: a record a reader delivered (not acknowledged at that DLSN,
//     not past a seal) for which the drain has no record at that DLSN and
//     no truncation excuses it. Without a drain, Jepsen's read rule,
//     adapted to readers that can start anywhere: an ok value at d is lost
//     if some reader session delivered DLSNs on both sides of d but no
//     reader ever delivered the value at d (Jepsen's "some read observed a
//     later position" alone proves nothing when a reader may open at any
//     DLSN or txid).
//   - inconsistent-dlsn: one DLSN observed with two values (counted once
//     per DLSN).
//   - duplicate / duplicate-retried: a value observed at two or more
//     DLSNs. If the value was appended (attempts that are not definite
//     failures) at least as many times as it has positions, it is
//     duplicate-retried, a statistic unless Options.IdempotentWrites;
//     otherwise duplicate.
//   - phantom (G1a): a delivered value that was never appended to the log,
//     or delivered by a reader before its first append was invoked.
//   - definite-misclassified: a delivered value all of whose attempts
//     failed definitely; ByClass counts such values per error class, to
//     find the misclassified code. (phantom + definite-misclassified = G4.)
//   - append-order (G3): an ok attempt a completed before attempt b was
//     invoked but DLSN(b) <= DLSN(a); b is ok, or indeterminate and
//     resolved at a single, unambiguous DLSN.
//   - append-linearizable: porcupine's verdict on the ok appends of each
//     log against a model in which each append returns a DLSN greater
//     than every DLSN returned before it (counts illegal logs). The log's
//     appends are cut at quiescent points into partitions that are
//     checked separately (see partitions in linearizable.go for why that
//     is exact); partitions larger than Options.PorcupineMaxOps are
//     skipped, and the whole check is bounded by Options.PorcupineTimeout
//     (unknown is not a violation). On an illegal partition, porcupine's
//     HTML visualization is written to Options.VisualizationPath.
//   - reader-order, reader-duplicate, reader-gap (G6): per reader session,
//     deliveries strictly increase (a repeat is reader-duplicate); the
//     lowest delivery is the first record of the reference order at or
//     after the requested start (dlsn: >= d; after: > d, a repeat is
//     reader-duplicate; txid: first with txid >= N; start: the first
//     record; end: only checked not to be a record acknowledged before the
//     session opened); and no record of the reference order lies between
//     two DLSNs the session delivered without being delivered itself. The
//     reference order is the drain plus every record observed below T.
//     A skipped record below the target of a truncate invoked before the
//     later delivery is excused. The drain itself must strictly increase.
//   - read-past-seal (P7): a delivery (reader or drain) at an entry beyond
//     its segment's sealed last entry in the final metadata.
//   - post-fence-ack (G5/P8): an append of writer epoch e invoked after e
//     was seen fenced (a completion whose error class is in
//     Options.FenceClasses, or a fence-observed event) completed ok. Only
//     appends invoked after the fence count: one in flight at the fence
//     may carry an ack the writer got before it, and clients of one epoch
//     learn of the fence at different times. Also: an ok
//     append beyond its segment's sealed last entry; a segment holding ok
//     appends of two epochs (or of an epoch other than the one the
//     metadata says created it).
//   - ownership-linearizable (G5, G7): porcupine's verdict on each log's
//     ownership as a register (ownership.go): every ok append that
//     reports its writer epoch observes "the owner is e"; a new epoch
//     takes over once, a replaced epoch never comes back. Reduced exactly
//     to two operations per epoch (the ack completed first and the one
//     invoked last), so it is cheap on any history. Counts illegal logs.
//     Segment metadata needs no porcupine: a segment's writer epoch and
//     its sealed end are write-once registers, whose linearizability is
//     exactly post-fence-ack's segment rules and read-past-seal.
//   - sequence-id: drain sequence ids go up by one per record, start at 0
//     in a never-truncated log and at each untruncated segment's start
//     sequence id; reads and acks that report one agree with the drain.
//   - txid: drain txids never decrease; reads and acks agree with the
//     drain's txid.
//   - drain-incomplete: a drain that failed before the end, or no drain
//     for a log with acknowledged appends (when drains were given).
//
// Statistics per log (Report.Stats): acknowledged, failed, indeterminate
// and pending appends; indeterminate appends resolved present or absent;
// acknowledged appends excused by truncation; unseen (acknowledged but no
// reader session delivered it); reads, and reads of records below a
// truncation point acknowledged before the read (allowed, since deletion
// may lag; a delivery of a record the drain no longer has is judged by
// lost and reader-gap only); sessions, truncates, epochs, drain records; and the time from the last nemesis-stop (heal) to the first ok
// append after it.
//
// # Cost
//
// Everything but porcupine is O(n log n) in the number of events (hash
// maps, sorts and binary searches); porcupine is bounded by its options.
//
// # Concurrency
//
// Check and CheckFiles are safe to call concurrently on different inputs;
// they do not modify the history. Porcupine runs goroutines internally
// that end before (or shortly after, when it gave up) Check returns.
package checker
