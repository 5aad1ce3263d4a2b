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
//	next.journal.tmp         the next file being preallocated; removed by Open
//
// Files are written in increasing id order; ids may skip (after a cut) but
// never go backwards. Each file is preallocated to Config.FileSizeBytes by
// writing zeros (with O_DIRECT where the OS allows) and fsyncing before it
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
// All integers are little-endian. A file starts with a 32-byte header:
//
//	offset size field
//	0      8    magic "dlogjrnl"
//	8      4    format version, 1
//	12     8    file id (matches the file name)
//	20     8    id of the previous journal file, 0 if none
//	28     4    CRC32C (Castagnoli) of bytes 0..27
//
// The header is written with the file's first group; an all-zero header
// means nothing was written yet. The previous-file id chains the files, so
// that a missing file is detected rather than skipped.
//
// Records follow from offset 32, back to back, without padding:
//
//	offset size field
//	0      4    payload length n, 1 <= n <= 2^32-1
//	4      4    CRC32C (Castagnoli) over bytes 0..3 (the length field) then the payload
//	8      n    payload
//
// A length field of zero (the preallocated zeros) marks the end of written
// data; everything after it in the file must be zero. A record whose length
// runs past the end of the file or whose checksum does not match is torn or
// corrupt. Record positions are (file id, offset of the length field); a
// record's end position is (file id, offset + 8 + n). Each group write is
// padded with zeros to the next 4 KiB boundary of the file (the next group
// overwrites the padding), so that no write has to read a page first.
//
// # Cuts
//
// Replay stops at the first of: a torn or bad record, non-zero bytes after
// a zero length field, a bad file header, or a file whose header names a
// predecessor other than the file replayed before it. If the damage is
// inside a file, the rest of that file is zeroed; if the file is unusable
// from its first byte, it is renamed aside whole. Later files are renamed
// aside too (before any zeroing, so that a crash in between cannot leave a
// clean-looking end followed by later files). Damage in from's own file
// before from is skipped, not cut: the caller has everything before from.
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
