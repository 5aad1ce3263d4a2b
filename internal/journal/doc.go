// Package journal is the bookie's write-ahead journal: an append-only log of
// opaque records with group commit. Nothing is acknowledged before an
// fdatasync covering it has returned.
//
// A bookie writes every add and fence into the journal and answers the
// client from the journal's callback; entry storage (internal/ledgerstore)
// persists entries lazily and records a checkpoint mark, the journal
// Position up to which everything is in entry logs. On restart the bookie
// replays the journal from that mark, and once a newer mark is persisted it
// releases the files before it.
//
// # Usage
//
//	j, err := journal.Open(journal.DefaultConfig("/disk1/journal"))
//	if err != nil { ... }
//	defer j.Close()
//	err = j.Replay(mark, func(pos, next journal.Position, rec []byte) error {
//		return store.Apply(rec, next) // rec is only valid during the call
//	})
//	...
//	err = j.Append(rec, func(end journal.Position, err error) {
//		// durable if err == nil; runs on the journal goroutine: be quick
//	})
//	...
//	j.ReleaseBefore(newMark) // after newMark is persisted
//
// # Guarantees
//
//   - Fsync before ack: a callback reports success only after the
//     fdatasync covering its record returned nil.
//   - Order: callbacks run in append order; end positions increase in that
//     order; Replay yields records in that order.
//   - Durability: after a crash, Replay yields every record whose callback
//     reported success, byte-identical and in order, followed by nothing
//     else except possibly records whose callback got an error or never ran
//     (their outcome is indeterminate).
//   - No skipping: Replay verifies every checksum and stops at the first
//     torn or bad record; it never yields a record that follows one it
//     could not read. It then cuts the journal there durably (see Replay).
//   - Sticky failure: after any write or sync error the journal never
//     writes or syncs again (after a failed fsync the page cache state is
//     unknown, so a retry could report stale data as durable). Err returns
//     the failure; every later Append returns it.
//
// # Files
//
// A journal directory holds:
//
//	LOCK                     lock file (vfs.FS.Lock): one journal per directory
//	<id>.journal             journal files; id is 16 lowercase hex digits, from 1
//	<id>.journal.cut         files renamed aside by a Replay cut; removed by ReleaseBefore
//	<id>.journal.free        released files kept for recycling (Config.RecycleFiles)
//	next.journal.tmp         the next file being preallocated; removed by Open
//
// Files are written in increasing id order; ids may skip (after a cut) but
// never go backwards. A new file is either a released one recycled (renamed
// from <id>.journal.free to its new id, no writes: see Recycling) or
// preallocated to Config.FileSizeBytes by writing zeros (with O_DIRECT where the OS allows) and fsyncing before it
// is renamed into place and the directory fsynced, so a group's fdatasync
// never changes the file size or converts unwritten extents. (Measured
// here: fallocate-only files made group-sized fdatasyncs about twice as
// slow.) A goroutine prepares the next file while the current one fills,
// paced by the writer's progress (see prepare.go). When a record does not
// fit in the rest of the file, the writer rolls to the next file, splitting
// the group there if needed.
//
// # File format
//
// All integers are little-endian. A file starts with a 40-byte header
// (format version 2, the one written):
//
//	offset size field
//	0      8    magic "dlogjrnl"
//	8      4    format version, 2
//	12     8    file id (matches the file name)
//	20     8    id of the previous journal file, 0 if none
//	28     8    where the previous file's records end (its offset just
//	            after its last record), 0 if unknown
//	36     4    CRC32C (Castagnoli) of bytes 0..35
//
// Version-1 files (32-byte header: magic, version 1, file id, previous
// id, CRC32C of bytes 0..27; record checksums unmasked, unwritten bytes
// always zero) are still replayed, never written.
//
// The header is written with the file's first group; an all-zero header,
// or a valid header naming an id other than the file's own (a recycled
// file's earlier life), means nothing was written yet. The previous-file id
// chains the files, so that a missing file is detected rather than
// skipped; the previous file's end lets replay stop exactly there rather
// than at the first record that fails its checksum.
//
// Records follow the header, back to back, without padding:
//
//	offset size field
//	0      4    payload length n, 1 <= n <= 2^32-1
//	4      4    CRC32C (Castagnoli) over bytes 0..3 (the length field) then
//	            the payload, XOR the file's salt (the low 32 bits of its id)
//	8      n    payload
//
// Every group write is followed by at least 8 zero bytes (a zero length
// field: the end of written data) and then zeros to the next 4 KiB boundary
// of the file, so that no write has to read a page first; the next group
// overwrites them. A record whose length runs past the end of the file or
// whose checksum does not match is torn or corrupt (or, in a recycled file,
// a record of an earlier life: the salt differs, so it never matches).
// Record positions are (file id, offset of the length field); a record's
// end position is (file id, offset + 8 + n).
//
// # Recycling
//
// ReleaseBefore keeps up to Config.RecycleFiles released files of exactly
// Config.FileSizeBytes as <id>.journal.free (the rest are deleted); a roll
// renames the oldest into place under the new id instead of zero-filling a
// file, because writing FileSizeBytes of zeros competes with the journal's
// own fdatasyncs. The earlier life's bytes stay after the new records; the
// header's id, the per-file salt and the end marker keep them from ever
// being read as records of the new life.
//
// # Cuts
//
// Replay stops at the first of: a torn or bad record, non-zero bytes after
// a zero length field (up to the end of the file in version 1, within the
// end marker's page in version 2), the previous-file end named by the next
// file's header, a bad file header, or a file whose header names a
// predecessor other than the file replayed before it. If the damage is
// inside a file, the damaged bytes are zeroed (the rest of a version-1
// file; the end marker's page of a version-2 one); if the file is unusable
// from its first byte, it is renamed aside whole. Later files are renamed
// aside too (before any zeroing, so that a crash in between cannot leave a
// clean-looking end followed by later files). Damage in from's own file
// before from is skipped, not cut: the caller has everything before from.
//
// Before cutting, Replay calls Config.BeforeCut with the cut and whether
// it is suspect (Cut.Suspect): whether the damaged records may have been
// fdatasynced, so acknowledged. They were if a later file holds data of
// its own life (the writer starts a file only after the previous one's
// last group was synced), if a file is missing from the chain, if the cut
// file's header is bad but a good record follows it, or if the bad record
// is followed, where its length field says it ends, by a good record. A
// tail torn by a crash during the newest group's write is not suspect. The
// caller persists what it must there (the bookie enters limbo); after the
// cut the damage is gone.
//
// # Group commit
//
// Appenders frame their record (checksum included) straight into a shared
// queue under a mutex. One writer goroutine takes everything queued as a
// group, writes it with one write call and one fdatasync, then runs the
// callbacks in order. Records appended during the sync form the next group.
// When recent groups held several records, the writer waits up to
// Config.MaxGroupWait for about as many to queue (or Config.MaxGroupBytes)
// before writing; a lone appender never waits. The queue is bounded by
// Config.MaxQueueBytes: Append then fails with ErrOverloaded, AppendSync
// waits for room.
//
// # Goroutines
//
// A Journal owns two goroutines, started by Open and stopped by Close
// (which closes stopc and waits for both):
//
//   - the writer (runWriter): takes groups, writes, syncs, rolls files,
//     runs callbacks. Woken through wakec (capacity 1, coalescing) by the
//     appender that completes the group it waits for (mu.wakeAt).
//   - the preparer (runPreparer): on request (reqc, capacity 1; at most one
//     outstanding) creates, zero-fills and fsyncs next.journal.tmp and
//     hands it back on resc (capacity 1; exactly one result per request it
//     took). The writer reports its progress on progressc (capacity 1,
//     coalescing) and renames the file into place at the next roll. Both
//     abort promptly on stopc.
//
// # Concurrency
//
// Append, AppendSync, Err, Stats and ReleaseBefore are safe for concurrent
// use. Replay must succeed before Append and ReleaseBefore (they fail with
// ErrNotReplayed until then). Close may be called concurrently with
// anything and waits for a running Replay. Callbacks run on the writer
// goroutine, in order; a slow callback delays every later group.
//
// Lock order: Journal.replayMu before Journal.mu. No lock is held during
// I/O or while callbacks run.
package journal
