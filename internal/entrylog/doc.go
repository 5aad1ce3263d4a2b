// Package entrylog stores entries of many ledgers interleaved in large
// append-only files, the bookie's entry logs (BookKeeper's "entry logs").
// It knows nothing of indexes, caches or checkpoints: package ledgerstore
// decides what to append and remembers where each record went.
//
// # Files
//
// A directory holds files named <id>.log, id being 16 lower-case hex
// digits of a positive int64 ("000000000000002a.log"). Ids only grow. One
// log at a time is current and receives appends; when it would pass
// Config.MaxFileSizeBytes (default 512 MiB) it is synced, closed and a new
// one started. A reopened Logs never appends to an existing file, so the
// torn tail a crash may leave stays after every record that was synced.
//
// # Byte format
//
// All integers are big-endian. A file starts with a 16-byte header:
//
//	[0:8)   magic "DLOGELOG"
//	[8:12)  u32 format version, 1
//	[12:16) u32 CRC32C (Castagnoli) of bytes [0:12)
//
// followed by records, back to back:
//
//	[0:4)   u32 payload length n (at most MaxPayloadSize, 64 MiB)
//	[4:8)   u32 CRC32C over bytes [0:4), [8:24+n): length, ids and payload
//	[8:16)  i64 ledger id
//	[16:24) i64 entry id
//	[24:24+n) payload (opaque; for the bookie a framed entry with its own
//	          checksum)
//
// A record's location is (log id, offset of its header, n). A read at a
// location checks the length, the checksum and that the header names the
// (ledger, entry) asked for; any mismatch, or a file ending inside the
// record, is a *CorruptError matching ErrCorrupt — never other bytes, and
// never "not found". Trailing zeros (what a crash can leave past the synced
// length) fail the checksum, so scans stop there.
//
// # Durability
//
// Append buffers (Config.WriteBufferBytes) and hands out locations at once;
// a record is durable only after Sync naming its log returned nil. Sync
// fsyncs the file; creating a log fsyncs the directory before any record of
// it can be synced, so a synced record's file survives a crash. A write or
// sync error abandons the current log: a later Sync naming it fails (its
// unsynced records may be lost; fsync is never retried on that file) and the
// next Append starts a new log. Remove does not sync the directory: a removed
// log may reappear after a crash, which is harmless once no index points
// into it.
//
// # Usage
//
//	logs, err := entrylog.Open(entrylog.Config{Dir: dir})
//	loc, err := logs.Append(ledgerID, entryID, payload)
//	err = logs.Sync(loc.LogID)
//	payload, err = logs.Read(loc, ledgerID, entryID)
//	s, err := logs.Scanner(loc.LogID) // for compaction and rebuilding
//	for s.Next() { _ = s.Record() }
//	err = s.Err()
//	s.Close()
//
// # Concurrency
//
// All methods of Logs are safe for concurrent use. Appends, Sync, Roll and
// Remove serialise on one mutex (a Sync holds it while it fsyncs). Reads and
// scanners take a reference on the file under a read lock and never wait for
// a sync. Lock order: Logs.mu, then Logs.filesMu, then a file's handle
// mutex. A removed log's handle is closed when its last reader or scanner
// lets go. No goroutines are started.
//
// The file system is pebble's vfs.FS: vfs.Default in production, the
// crashable in-memory FS and vfs/errorfs in tests.
package entrylog
