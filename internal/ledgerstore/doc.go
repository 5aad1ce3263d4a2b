// Package ledgerstore is the bookie's entry storage, after BookKeeper's
// DbLedgerStorage: a write cache in front of interleaved entry logs
// (package entrylog), with a pebble index from (ledger, entry) to the
// entry's place in the logs and the per-ledger state (fenced, LAC, master
// key, deleted).
//
// The bookie server owns durability before a checkpoint: it writes every
// add and state change to its journal (fsync) before calling AddEntry,
// SetFenced, SetLAC or SetMasterKey, so none of those syncs anything.
// Periodically, or when FlushWanted fires, it calls Flush with its journal
// position; after Flush returns, journal files before that position may be
// deleted. On restart it reads CheckpointMark and replays its journal from
// there (re-adding an entry is idempotent; replaying into a deleted ledger
// gets ErrLedgerDeleted, which replay ignores).
//
//	s, err := ledgerstore.Open(ledgerstore.Config{Dir: dir, Logger: log})
//	defer s.Close()
//	replayJournalFrom(s.CheckpointMark())
//	err = s.SetMasterKey(ledger, key)
//	err = s.AddEntry(ledger, entry, framed) // after the journal fsync
//	select {
//	case <-s.FlushWanted():
//		err = s.Flush(journal.Position()) // see "Flush" for which position
//	}
//	data, err := s.GetEntry(ledger, entry)
//
// # Directory layout
//
//	<Dir>/logs/<16-hex id>.log   entry logs (format: package entrylog)
//	<Dir>/index/                 pebble
//
// # Pebble keys
//
// Integers are big-endian; ids are non-negative, so byte order is numeric
// order and a ledger's entries are contiguous (the last entry of a ledger is
// a reverse seek within its prefix; deleting a ledger is one DeleteRange).
//
//	0x00 'v'                     u32 format version (1)
//	0x00 'm'                     checkpoint mark: opaque bytes of the last Flush
//	0x01 ledger(8) entry(8)      index: log id(8) offset(8) payload size(4)
//	0x02 ledger(8)               ledger state: version u8 (1), flags u8
//	                             (1 fenced, 2 master key present, 4 deleted),
//	                             LAC i64 (-1 none), then if flag 2:
//	                             uvarint length + master key (<= 1 KiB)
//	0x03 log(8) ledger(8)        usage: u64 record bytes (headers included)
//	                             of that ledger indexed into that log
//
// A deleted ledger keeps a tombstone state (flag 4) forever: ids are never
// reused, and the tombstone stops a journal replay or a straggling add from
// bringing its entries back.
//
// # Flush and checkpoint
//
// Flush(mark) covers every AddEntry and state change that returned before
// Flush was called, so the owner must pass a journal position no later
// than the first journal record whose store call had not returned by then.
//
//  1. Swap (under the state lock): the active write cache becomes the
//     flushing half and a fresh half takes new adds; dirty ledger states
//     are copied. Reads look in both halves, then the index.
//  2. Write the flushing half's entries sorted by (ledger, entry) into the
//     current entry log (rolling at EntryLogMaxFileSizeBytes) and fsync the
//     logs written.
//  3. One pebble batch, committed with Sync: index entries, the copied
//     states, usage increments and the mark. Until this commit nothing of
//     the flush is visible on restart; after it, all of it is.
//  4. Drop the flushing half. An entry is therefore always either cached or
//     indexed (or both): never neither.
//
// On any error the flushing half goes back into the active cache, the
// states become dirty again, the mark does not move and the error is
// returned. A write or fsync error abandons the entry log (fsync is never
// retried on it); the next Flush starts a new one. An entry log record
// that is not indexed is garbage and is collected like deleted data.
//
// # Deletion and compaction
//
// DeleteLedger commits (synced) a DeleteRange over the ledger's index keys
// and its tombstone, then drops it from the write cache: its entries are
// unreadable at once and after a crash. The bytes stay in entry logs. A
// compaction pass (every GCInterval in a goroutine Close stops, or on
// Compact) looks at every finished log (below the current one and below the
// first log any running flush may index into): live bytes = usage of
// ledgers that are not deleted. A log with none is forgotten (usage
// DeleteRange, synced) and removed. One whose live/size ratio is below
// CompactionThreshold is scanned; each record the index still points at is
// appended to the current log; every CompactionChunkBytes the copies are
// synced and re-indexed in one synced batch, but only for entries whose
// index still points at the old place (a delete or a newer add wins). Then
// the old log is forgotten and removed. A crash anywhere leaves the index
// pointing at synced records; repeating the pass converges. If a scan stops
// at a corrupt record, the log is removed only if no index entry of its
// ledgers points into it.
//
// A read that looked up a location just before compaction removed the log
// gets entrylog.ErrLogNotFound and looks the index up again; a log being
// read is reference-counted, so its removal never breaks a read in flight.
//
// # Errors
//
// ErrNoLedger and ErrNoEntry are definite: returned only when the store is
// sure. ErrCorrupt (checksum or header mismatch, an index pointing at a
// missing log) is never retried. Other errors wrap I/O failures: outcome
// unknown. ErrWriteCacheFull is back-pressure: nothing was stored.
//
// # Concurrency
//
// All methods are safe for concurrent use. Goroutines: one compaction loop
// (started by Open when GCInterval > 0, stopped and waited for by Close);
// pebble's own. Locks, in the order they may nest:
//
//	lifeMu (shared by every call, exclusive in Close)
//	  flushMu (one Flush at a time) | gcMu (one compaction pass at a time)
//	    writers (logs in use by flushes; taken before entrylog's lock)
//	    indexMu (every index commit: flush, compaction, delete)
//	      mu (in-memory state: ledgers, write cache halves, mark)
//
// mu is never held across I/O. Returned slices (entries, states' master
// keys, marks) are copies owned by the caller; AddEntry and SetMasterKey
// copy their arguments.
package ledgerstore
