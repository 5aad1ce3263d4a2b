// Package bookie is the storage node: a gRPC server (Bookie.Batches, see
// proto/dlog/bookie/v1/bookie.proto) in front of a group-committed journal
// (package journal) and entry storage (package ledgerstore). It answers an
// add only after the journal's fdatasync covering it returned, persists
// fences before answering them, tracks each ledger's LAC for long polls,
// checkpoints the store against the journal, turns read-only near a full
// disk or for good after a journal or store failure, and refuses to start
// on directories that are not its own.
//
//	cfg := bookie.DefaultConfig()
//	cfg.Dir, cfg.ListenAddr = "/data/bookie", "0.0.0.0:3181"
//	b, err := bookie.Open(ctx, cfg) // replays the journal, then serves
//	if err != nil { ... }           // errors.Is(err, bookie.ErrIdentity): wrong disks
//	defer b.Close()
//
// # Directories
//
//	<Dir>/COOKIE             identity (below)
//	<Dir>/LIMBO              present after a suspect journal cut (Limbo, below)
//	<Dir>/ledgers/           the ledger store (entry logs and pebble index)
//	<JournalDir>/COOKIE      the same identity (JournalDir defaults to <Dir>/journal)
//	<JournalDir>/*.journal   journal files (format: package journal)
//
// # Journal records
//
// Every journal record (the journal frames and checksums it) starts with a
// type byte. Integers are big-endian; ids are non-negative.
//
//	ADD    1 | flags u8 (1 = recovery add) | ledger i64 | entry i64 |
//	       key length uvarint (minimal, <= 1024) | master key | stored entry
//	FENCE  2 | ledger i64 | key length uvarint | master key
//	DELETE 3 | ledger i64
//
// The stored entry is the entry as the ledger store keeps it, so an add is
// applied by handing the record's tail to the store as is:
//
//	version u8 (1) | lac i64 | crc32c u32 | payload
//
// The checksum is the writer's (bookiepb.EntryChecksum over ledger, entry,
// lac and payload): it is verified when the add arrives, again at replay,
// and on every read on the way out (a mismatch answers CORRUPT). WriteLAC
// is not journalled: a LAC is a lower bound, and the next checkpoint
// persists it.
//
// # Ordering of adds and fences
//
// A ledger's state (fenced, master key) lives in the store. Per ledger, a
// striped mutex is held across "check the state, then Journal.Append" for
// an add, and across "set fenced in the store, then Journal.Append of the
// FENCE record" for a fence. (An add's check may be answered by the
// stripe's cache of the last ledger found open; a fence clears it under
// the same mutex before it sets fenced, so the argument holds.) The
// journal is FIFO and runs callbacks in
// append order, and an add's callback applies its entry to the store
// before returning. So an add that passed its check before a fence was
// appended before the FENCE record, and its entry is in the store by the
// time the fence's callback reports the fence durable; the fence's answer,
// computed after that (last entry, LAC), includes it. An add checked after
// the fence sees fenced and is refused (FENCED) unless it is a recovery
// add. Fences and adds never answer before their record's fsync (with the
// bugs.AckBeforeFsync switch, which only exists for the fault harness,
// adds do).
//
// A fence on an unknown ledger creates it, fenced and keyed, so a late add
// from the old writer is refused. The first add or fence records the master
// key; a different key later is UNAUTHORIZED. A deleted ledger stays a
// tombstone in the store: adds and fences to it answer NO_LEDGER.
//
// # Checkpoints
//
// Journal callbacks run on the journal's goroutine, in order; each one
// applies its record to the store (adds: AddEntry, SetLAC, wake long polls;
// fences were applied before the append) and then advances the applied
// position to the record's end. The checkpointer goroutine, every
// FlushInterval, when the store's write cache asks (FlushWanted), and when
// an apply finds the cache full, reads the applied position P, calls
// Store.Flush(P) (which persists everything applied before the call,
// atomically with P as the checkpoint mark), then Journal.ReleaseBefore(P).
// At start the bookie reads the mark, replays the journal from it applying
// ADD, FENCE and DELETE in order (re-adding is idempotent; records of a
// ledger deleted later are ignored), checkpoints, and only then serves.
//
// A record that is durable but could not be applied (store failure, or
// Close while waiting for cache room) freezes the applied position for
// good, so no checkpoint covers it and the next start replays it. A full
// write cache blocks the journal's callbacks until a flush frees room: that
// is the bookie's back-pressure. A DELETE advances the position before the
// store's delete commits; a crash in between loses the delete, which was
// not answered (indeterminate for its client).
//
// # Failures
//
// A journal write or fsync failure is sticky: the journal never writes
// again, the bookie answers adds READ_ONLY ("journal failed: ...") forever
// (the adds of the failing group get IO_ERROR: their outcome is unknown),
// keeps serving reads, reports the reason in Info and fails Ready. A store
// failure while applying does the same, and from then on NO_ENTRY and
// NO_LEDGER answers become IO_ERROR (a journalled record may be missing
// from the store). A full disk (usage at DiskHighWater of DiskQuotaBytes,
// or free space under MinFreeBytes) makes the bookie read-only until usage
// falls below DiskLowWater (or free space doubles); fences, deletes and
// reads are still served, and compaction runs at once to reclaim space.
//
// # Limbo
//
// A bookie that lost an acknowledged entry must not answer NO_ENTRY for it:
// recovery counts explicit negatives as absence and could truncate the
// entry (BookKeeper's BP-46). The journal reports, before it cuts damage
// at replay, whether the cut is suspect (journal.Cut.Suspect: a later
// journal file holds data, a file is missing, or the bad record is
// followed by a good one, so the damaged records had been fdatasynced and
// may have been acknowledged). A torn tail (damage at the very end with
// nothing valid after it, what a crash in the middle of a group's write
// leaves) is not suspect; bit rot in the newest records looks the same and
// cannot be told from it.
//
// On a suspect cut the bookie writes Dir/LIMBO durably (temporary file,
// fsync, rename, fsync of the directory) before the journal cuts anything
// (journal.Config.BeforeCut), so that a crash in between cannot forget it:
//
//	{"version": 1, "since": RFC 3339, "reason": ..., "cut": "<file>:<offset>"}
//
// While the marker exists (read at every start; an unreadable one counts)
// the whole bookie is in limbo: the records lost could belong to any
// ledger, also one it no longer knows. A read or read-LAC that would answer
// NO_ENTRY or NO_LEDGER answers IO_ERROR ("unknown") instead, except
// NO_LEDGER for a deleted ledger (its tombstone is explicit). Everything
// else works as usual: adds, fences, recovery adds, reads of entries it
// holds, and fence answers (last entry and LAC are lower bounds).
// Recovery, which counts IO_ERROR as unknown, then needs the explicit
// negatives of other bookies. The bookie never leaves limbo on its own: an
// operator removes Dir/LIMBO while it is stopped, once every ledger that
// had it in an ensemble when the marker was written is closed or deleted
// (Limbo reports the reason; the gauge dlog_bookie_limbo is 1 meanwhile).
// `dlog admin limbo --dir Dir` shows the marker and the ledgers not closed
// that have the bookie in an ensemble; `--clear` removes the marker
// (ClearLimboMarker: under the journal's lock, so never while the bookie
// runs) and refuses while such ledgers exist unless --force.
//
// # Identity (cookies)
//
// Dir/COOKIE and JournalDir/COOKIE hold the same JSON object:
//
//	{"version": 1, "bookie-id": ..., "instance-id": <random 128-bit hex>,
//	 "address": ..., "dir": ..., "journal-dir": ..., "created": RFC 3339}
//
// written durably (temporary file, fsync, rename, fsync of the directory),
// the journal's copy first. With metadata, the same cookie is stored there
// (PutCookie with expected version 0). At every start:
//
//   - no cookie, directories empty: a new instance; write both cookies (and
//     the metadata one). If metadata already has a cookie for this id the
//     data directory was wiped or replaced: refuse, naming the instance the
//     bookie was and what the operator can do.
//   - no cookie but data in either directory: refuse.
//   - only the journal's cookie and no data anywhere: a first start crashed
//     between the two writes; finish it.
//   - one cookie missing otherwise: a disk was replaced or wiped; refuse.
//   - the two cookies name different instances or ids (swapped disks), the
//     cookie names another bookie id, or metadata's cookie names another
//     instance: refuse.
//   - metadata has no cookie but both directories agree: write it.
//
// Every refusal is an *IdentityError matching ErrIdentity. A bookie that
// lost its data must not come back under its old identity: it would answer
// NO_ENTRY for entries it acknowledged, and recovery would count that as
// absence.
//
// # Registration
//
// With Config.Metadata, the registrar registers a BookieInfo (address,
// region, rack, state, instance id, free bytes) bound to a session lease,
// re-registers when the state changes (read-only and back, free space by
// more than 5 %), starts a new session when the lease is lost, retries
// with a capped backoff (a restarted bookie waits for its previous lease to
// expire), and closes the session on Close (removing the registration).
//
// # Errors → status
//
//	malformed request, bad checksum on add,       BAD_REQUEST
//	  negative ids, lac >= entry id
//	payload > MaxEntryBytes                       TOO_LARGE (gRPC refuses frames
//	                                              over MaxEntryBytes+64 KiB before
//	                                              allocating them)
//	normal add to a fenced ledger                 FENCED
//	master key mismatch                           UNAUTHORIZED
//	read-only (disk, journal or store failure)    READ_ONLY
//	unknown or deleted ledger                     NO_LEDGER  (explicit negative;
//	                                              IO_ERROR in limbo unless deleted)
//	known ledger, entry never stored              NO_ENTRY   (explicit negative;
//	                                              IO_ERROR in limbo)
//	stored bytes fail their checksum              CORRUPT    (unknown)
//	I/O error, journal write failed mid-group     IO_ERROR   (unknown)
//	deadline passed before the outcome was known  TIMEOUT    (unknown)
//	in-flight, long-poll or journal queue full    OVERLOADED
//	Close in progress                             SHUTTING_DOWN
//	Request.expected_bookie_id set and not this   WRONG_BOOKIE (nothing done;
//	  bookie's id (any request)                   the sender treats it as a
//	                                              failure of the bookie it
//	                                              meant: never an ack, a
//	                                              fence or a negative)
//
// expected_bookie_id is checked after validation and before anything else,
// so a request meant for another bookie (a new identity started at an old
// ensemble member's address) changes nothing here. Empty means no check:
// older clients still work, unprotected.
//
// With bugs.IOErrorAsNoEntry (fault harness only) reads answer NO_ENTRY for
// IO_ERROR and CORRUPT.
//
// # Streams and requests
//
// A client stream is Batches: each gRPC message a Requests or Responses
// batch. A batch means nothing beyond its members, which are handled one by
// one in order, as if each came alone. Batches sends its response headers
// at once so that a client can tell it is served. (The per-message Stream
// method is gone; only a test proxy used it.) The server's codec
// (wireCodec) decodes Requests with bookiepb.DecodeRequests, which decodes
// an add into one allocation whose payload and key alias a private copy of
// the received message (the bytes wait there for the journal callback;
// the journal and the store copy what they keep), and encodes Responses
// with bookiepb.AppendResponses; anything else goes through proto.
//
// Each stream has a receive goroutine and a sender (the gRPC handler's own
// goroutine: Send is not safe for concurrent use). Answers are queued in
// the stream's outbox, which never blocks a producer: it holds at most
// MaxInFlightPerStream admitted requests (beyond it: OVERLOADED) plus 16
// refusals (beyond that the receive loop waits, which stops reading from
// the client). The sender is woken when the outbox goes from empty to not
// empty; it yields once (runtime.Gosched: goroutines ready to run, such as
// the journal's callbacks, add their answers first) and then sends
// everything queued, in Responses of up to 32 KiB (a larger answer alone).
// It never waits for more: an idle stream answers at once. Adds and Info
// are handled on the receive goroutine (nothing there blocks: the journal
// append fails with OVERLOADED rather than wait) and answered from the
// journal callback; reads, fences, long polls, WriteLAC and deletes get a
// goroutine each. Every request has a deadline, timeout_ms after the
// arrival of its message (DefaultRequestTimeout when 0, capped at
// MaxRequestTimeout); a long poll is held for 3/4 of it and then answered
// OK with the unchanged LAC, so the answer reaches the client before its
// own deadline.
//
// An add not durable by its deadline is answered TIMEOUT (outcome unknown:
// it may still be journalled and applied). One timer per stream does it
// (addTimeouts): a stream's adds are appended by one goroutine and called
// back in append order, so they wait in a FIFO; with the usual single
// timeout per client their deadlines rise along it and the timer is armed
// for the head only. An add whose deadline comes before the previous one's
// gets a timer of its own.
//
// Per add, the hot path allocates the decoded request, the pending add
// (which holds its own answer) and the journal callback; the journal
// record is built in a per-stream scratch buffer (the journal copies it)
// and the stored entry in a scratch buffer at apply time (the store
// copies it). A one-entry cache per ledger stripe remembers the last
// ledger found open (known, not fenced, key) so that adds skip the store's
// lock and lookup; fences and deletes forget it under the stripe.
//
// # Goroutines
//
//	owner      goroutine                 stops when
//	Open       gRPC Serve loop           Close: GracefulStop (Stop after 5 s)
//	Open       checkpointer              Close: stopc
//	Open       disk monitor              Close: stopc
//	Open       registrar (metadata only) Close: stopc (closes its session)
//	Batches    sender (handler)          client done and all answered, or stopc
//	Batches    receive loop              client closes, or the handler returns
//	Batches    one per read/fence/long   its answer (deadline, stopc or stream end)
//	           poll/write-lac/delete
//	journal    writer, preparer          Close: journal.Close
//	pebble     its own                   Close: store.Close
//	per stream a deadline timer (adds)   its FIFO empties (the journal's
//	                                     callbacks; journal.Close runs all)
//	per add    a deadline timer, only    the journal callback stops it
//	           when out of order
//
// Close: refuse new requests, close stopc, wait for the background
// goroutines, close the journal (queued adds are answered SHUTTING_DOWN;
// the group being synced completes), stop the gRPC server once every
// stream has drained, wait for every request goroutine, take a last
// checkpoint and close the store.
package bookie
