// Package segment holds the pure logic of a log's segments: the lifecycle
// transitions as metadata transaction plans, the reader's cursor state
// machine and the position searches. It does no I/O, starts no goroutine
// and reads no clock (callers pass the time in), so every rule can be
// tested exhaustively; package namespace is the shell that performs the
// plans and drives the cursor.
//
// # Segment lifecycle
//
// A segment is one ledger holding a contiguous part of a log. It is
// created IN_PROGRESS (lssn = max lssn + 1, start sequence id = previous
// start + previous record count) and becomes COMPLETED (last entry, last
// slot, last txid, record count, completion time) exactly once; a
// completed segment's extent never changes afterwards, only its
// truncation status (ACTIVE, PARTIALLY_TRUNCATED with MinActive, TRUNCATED).
// Each transition is one Plan, committed as one metadata transaction with a
// CAS on every key it writes (plus the writer's ownership check):
//
//	Create    CreateSegment(lssn = MaxLSSN+1) + SetMaxLSSN           (writer open, roll, self-heal)
//	Complete  UpdateSegment(completed) + SetMaxTxID                  (roll, close, recovery)
//	          or DeleteSegment for an empty in-progress segment
//	Truncate  UpdateSegment(truncation marks)... + SetTruncation     (truncate)
//	Collect   DeleteSegment... + SetTruncation; ledgers deleted after (retention / GC)
//
// A roll creates the next segment before it completes the previous one, so
// a crash in between leaves two in-progress segments; the next writer
// recovers every in-progress segment in lssn order (TailScan finds what a
// recovered ledger holds).
//
// # Reader cursor
//
// Cursor is the reader's position and the rules that move it (see its doc
// comment): it asks its shell to open a segment's ledger, read entries up
// to the LAC, wait for the LAC or for a metadata change, and turns entries
// into records with DLSNs and sequence ids, failing rather than skipping
// or repeating a record.
//
// # Concurrency
//
// Plans and searches are values and functions; a Cursor or a TailScan is
// used by one goroutine at a time.
package segment
