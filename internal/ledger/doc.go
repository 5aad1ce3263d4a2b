// Package ledger is dlog's ledger client: it runs the BookKeeper
// replication protocol over dlog's bookies. It creates ledgers, appends to
// them with pipelined adds, changes ensembles when bookies fail, recovers
// (fences and closes) ledgers whose writer is gone, reads them without
// recovery for tailing readers, and deletes them. The protocol decisions
// are the pure machines of package quorum (write sets, the ack Tracker, the
// coverage rule, DecideEntry and Scan) and the policies of package
// placement; this package is the shell that sends, receives and persists.
//
// # Usage
//
//	cl, err := ledger.New(ctx, store, ledger.DefaultConfig())
//	defer cl.Close()
//	w, err := cl.Create(ctx, ledger.DefaultCreateOptions()) // E=3 Qw=3 Qa=2
//	err = w.AddAsync(ctx, payload, func(id int64, err error) { ... })
//	md, err := w.Close(ctx)                  // CLOSED at the LAC
//
//	md, err := cl.Recover(ctx, id)           // a new writer takes over
//	r, err := cl.OpenReader(ctx, id)         // tailing, no recovery
//	lac, err := r.WaitLAC(ctx, prev)         // long poll; ErrEndOfLedger once closed
//	entries, err := r.Read(ctx, prev+1, lac)
//
// # Adds and the LAC
//
// Create places an ensemble of E writable registered bookies with the
// configured placement policy (the client watches the bookie registry),
// draws a random master key and stores the metadata (OPEN, one fragment
// from entry 0) before any add. AddAsync assigns the next entry id, frames
// the entry (cumulative length header, see Entry format; bookiepb.NewEntry,
// CRC32C) with the writer's current LAC piggybacked, and sends it to its write set: Qw consecutive ensemble
// members from entry mod E. Bookies answer after their journal fsync. The
// quorum.Tracker acknowledges an entry once Qa members of its write set
// acked it and every earlier entry is acknowledged; the LAC is the last
// acknowledged entry, and callbacks run strictly in entry order. At most
// Config.MaxPendingAdds adds are in flight per writer; AddAsync then waits
// for a slot until its ctx ends (ErrOverloaded).
//
// Explicit LAC: an idle writer (nothing in flight) whose LAC no add has
// carried sends WriteLAC to its ensemble after Config.ExplicitLACDelay, so
// a tailing reader sees the last entry of a burst without waiting for the
// next add.
//
// # Ensemble changes
//
// A bookie that fails or times out on an add (anything but FENCED,
// UNAUTHORIZED and requests no bookie will ever take) is marked failed and
// the writer's supervisor goroutine changes the ensemble, in this order:
//
//  1. Tracker.BeginChange freezes the LAC: the new fragment starts at LAC+1
//     and every unacknowledged entry, even one already complete, belongs to
//     it. An acknowledged entry is never reassigned (BookKeeper #4651).
//  2. The placement policy picks a replacement, excluding every bookie that
//     failed this writer and the current members.
//  3. The new fragment is written to metadata by CAS on the version the
//     writer holds.
//  4. Only then Tracker.CommitChange installs the new member and the
//     unacknowledged entries are resent to it. Nothing that needs the new
//     member is sent or acknowledged before its fragment is in metadata
//     (BookKeeper #1591), so a recovery always looks where the copies are.
//
// A CAS that fails is followed by a re-read: a ledger no longer OPEN is
// being recovered, so the writer is fenced; an OPEN one is retried. A
// metadata call with an unknown outcome is retried as CAS and recognised by
// re-reading. A failed member with no replacement stays failed: the writer
// keeps going while every entry can still reach Qa (retrying when the
// registry changes), and fails every pending and later add with
// ErrNotEnoughBookies when one cannot. No entry is ever acknowledged with
// fewer than Qa copies.
//
// # Fencing
//
// Once any bookie answers FENCED (or a CAS finds the ledger in recovery),
// the writer fails every pending and later add with an error matching
// ErrFenced and dlog.ErrFenced and ignores every ack that arrives later.
//
// # Recovery
//
// Recover(ctx, id) returns a CLOSED ledger's metadata unchanged. Otherwise:
//
//  1. CAS the state OPEN → IN_RECOVERY (an IN_RECOVERY ledger is recovered
//     again: an earlier recoverer may have died). From here the old
//     writer's ensemble changes fail.
//  2. Fence the last fragment: a read of entry −1 with the fence flag and
//     the master key to every member, until the answers cover every write
//     set (quorum Coverage: Qw−Qa+1 fenced members per write set, so no
//     write set can give the old writer Qa acks). NeverCovered is a
//     retryable ErrRecoveryIncomplete. Each member's identity is checked
//     (Info on the same stream): an answer counts only from the bookie the
//     fragment names, never from a new identity started at its address
//     after a disk loss.
//  3. Scan from max(highest LAC seen, first entry of the fragment − 1) + 1
//     (BookKeeper #2615). Every recovery read carries the fence flag, so
//     each "no such entry" comes from a fenced bookie and is final: without
//     it, a bookie whose fence request was lost could deny an entry and
//     then accept it from the old writer, which would get it acknowledged
//     beyond the recovered end (BookKeeper #2614; staged by
//     TestFencingHole). An entry is present if any member returns it,
//     absent only on Qw−Qa+1 explicit negatives; I/O errors, checksum
//     errors and timeouts are unknown (BookKeeper #2908), and an entry that
//     is neither is Unrecoverable: recovery fails retryably and never
//     shortens the ledger.
//  4. Re-add every entry found beyond the LAC with the recovery flag to its
//     whole write set; at least Qa must succeed. When failed bookies leave
//     an entry short of Qa, recovery changes the ensemble as a writer does
//     (new fragment by CAS while IN_RECOVERY, before anything is sent to
//     the new member); with no replacement it fails retryably.
//  5. CAS the state to CLOSED at the last entry, with the ledger's length
//     (below). Concurrent recoveries converge: the loser of the CAS
//     re-reads and returns the winner's CLOSED metadata. A CLOSED ledger
//     never changes.
//
// Identity: an address is trusted only as far as the bookie answering
// there says it is the bookie meant. Recovery, whose negatives decide
// where a ledger ends, confirms each member's id as described in step 2.
// A writer names the member it means in every add, recovery add and
// explicit LAC (Request.expected_bookie_id, the id in the fragment): a
// bookie with another id refuses with STATUS_WRONG_BOOKIE and stores
// nothing, and the writer treats that as a failure of the member (never an
// ack, a fence or a negative) and replaces it by an ensemble change. So a
// new identity started at a member's address (after a lost disk, say)
// while the writer is idle, or behind a stale registry entry, can never
// acknowledge an entry in the old member's place: every acknowledged entry
// has Qa copies on the bookies its fragment names (staged by
// TestWriterRejectsNewIdentityAtAddress). A bookie restarted on its own
// disk is the same bookie (its fsynced entries survive) and answers as
// before; a wiped one cannot restart under its old id (its cookie check
// fails).
//
// Length: every entry carries the ledger's cumulative length (see Entry
// format), so recovery closes the ledger with the length the last entry
// carries: the last entry found by the scan, or the last entry a fenced
// bookie returned with its fence answer, or else (the ledger ends at the
// LAC and no answer held that entry) the entry read from its fragment,
// failing retryably if it cannot be read. A writer's Close records the
// payload bytes it got acknowledged, which is the same number.
//
// # Entry format
//
// The bookie protocol frames an entry as ledger id, entry id, LAC, payload
// and a CRC32C over all four (bookiepb.NewEntry). Inside that payload the
// ledger client puts its own header, chosen per ledger by
// LedgerMetadata.EntryFormat:
//
//	format 0 (ledgers written before format 1): the caller's payload as is;
//	         recovery cannot learn the length and records Length -1.
//	format 1 (what Create writes): length uint64 big-endian, then the
//	         caller's payload. length is the cumulative payload bytes of
//	         entries 0..this one (BookKeeper's entry header field), so the
//	         last entry of a ledger carries the ledger's length. The
//	         checksum covers it.
//
// Reads strip the header: Reader.Read returns the caller's payload, so no
// caller decodes entries itself. An answer whose payload cannot be an entry
// of the ledger's format (shorter than the header, or a cumulative length
// below its own payload size) is treated as one failing its checksum. A
// ledger of an unknown (newer) format is refused with ErrInvalidArgument by
// OpenReader, Recover and the writer. Bookies see format 1 entries 8 bytes
// larger than the caller's payload: Config.MaxEntryBytes bounds the
// caller's payload, and bookies must accept MaxEntryBytes + 8.
//
// # Readers
//
// OpenReader neither fences nor recovers. Its LAC is the highest that the
// last fragment's bookies report (ReadLAC), never below the fragment's
// first entry − 1, or the last entry once the ledger is CLOSED. Read
// serves only entries up to that LAC (ErrBeyondLAC otherwise), each from
// its write set in locality order (placement.ReorderReadSet with
// Config.Region and Rack) with speculative reads: the next bookie is asked
// when the previous one errs (at once) or is silent for the speculative
// timeout (adaptive: the p99 of recent reads, within configured bounds);
// the first valid entry wins. An entry at or below the LAC that every bookie
// of its write set denies is ErrInconsistent, never end of data. WaitLAC
// long-polls the last fragment's bookies (the first answer above the
// previous LAC wins) while watching the ledger's metadata for a close or a
// new fragment.
//
// # Delete
//
// Delete removes the metadata (the commit point), then the ledger on every
// bookie of every fragment, best effort: a bookie that is down keeps the
// data until its garbage collection finds the ledger gone from metadata.
//
// # Concurrency and goroutines
//
// Client, Writer and Reader are safe for concurrent use. Long-lived
// goroutines:
//
//   - Client: one registry watcher (WatchBookies, re-listing after a lagged
//     watch); stopped and waited for by Client.Close, which also aborts the
//     writers still open.
//   - Writer: a delivery goroutine that runs add callbacks in entry order
//     (so a slow callback never stalls bookie connections), and a
//     supervisor that performs ensemble changes and explicit-LAC rounds
//     (metadata calls never run on bookie callbacks). Both are stopped and
//     waited for by Close or Abort; Close must be called even after a
//     failure, and never from an add callback.
//   - Recover, WaitLAC and Read run in the caller's goroutine (Read uses up
//     to Config.ReadAhead short-lived goroutines, waited for before it
//     returns); bookie answers reach them through a non-blocking inbox.
//
// Bookie answers arrive on the bookie client's goroutines; the writer
// handles them under its mutex without blocking. Writer lock order: metaMu
// (metadata read-modify-write), then mu.
//
// # Errors
//
// Sentinels match the dlog taxonomy: ErrFenced (dlog.ErrFenced),
// ErrNotEnoughBookies, ErrUnavailable and ErrRecoveryIncomplete
// (dlog.ErrUnavailable), ErrInconsistent (dlog.ErrCorrupt), ErrOverloaded
// (dlog.ErrOverCapacity), ErrTooLarge (dlog.ErrRecordTooLarge), ErrNoLedger
// (dlog.ErrNotFound), ErrClosed (dlog.ErrClosed), ErrBeyondLAC and
// ErrInvalidArgument (dlog.ErrInvalidArgument), ErrEndOfLedger. Adds that
// fail after they were sent are indeterminate.
//
// # Metrics
//
// dlog_ledger_add_latency_seconds, dlog_ledger_adds_total{result},
// dlog_ledger_ensemble_changes_total{result},
// dlog_ledger_fenced_writers_total, dlog_ledger_explicit_lac_total,
// dlog_ledger_recoveries_total{result},
// dlog_ledger_recovery_duration_seconds, dlog_ledger_read_latency_seconds,
// dlog_ledger_speculative_reads_total, dlog_ledger_read_errors_total{kind}.
//
// # Bug switches
//
// Built with the dlogbugs tag, bugs.RecoveryReadsDoNotFence,
// bugs.AckBeforeEnsembleCAS and bugs.ReaderPastLAC re-introduce the bugs
// this design avoids, for the fault-proof harness (see bugs_test.go).
// bugs.ReaderPastLAC makes a Reader take the last entry the last fragment's
// bookies hold (acknowledged or not) for the LAC, and serve past its LAC.
package ledger
