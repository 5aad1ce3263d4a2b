// Package namespace is dlog's log core, the embedded Go API: a Namespace
// holds named logs; a Writer appends records to a log (one writer per log
// at a time, enforced by a metadata lock, bookie fencing and metadata CAS);
// a Reader reads a log in DLSN order from any position and follows it as
// it grows. It talks directly to the metadata service (etcd) and the
// bookies; the proxy tier builds on it.
//
// # Usage
//
//	ns, err := namespace.Open(ctx, namespace.DefaultConfig("http://127.0.0.1:2379"))
//	defer ns.Close()
//	err = ns.CreateLog(ctx, "orders", namespace.LogOptions{})
//
//	w, err := ns.OpenWriter(ctx, "orders", namespace.WriterOptions{})
//	dlsn, err := w.Write(ctx, dlog.Record{TxID: 1, Payload: []byte("hello")})
//	f := w.WriteAsync(dlog.Record{TxID: 2, Payload: []byte("world")}) // pipelined
//	dlsn, err = f.Wait(ctx)
//	err = w.Close(ctx) // completes the segment, releases the log
//
//	r, err := ns.OpenReader(ctx, "orders", namespace.AtStart(), namespace.ReaderOptions{})
//	defer r.Close()
//	for rec, err := range r.All(ctx) {
//		if err != nil { break } // ctx ended, or dlog.ErrEndOfStream, ...
//		process(rec.DLSN, rec.SequenceID, rec.Payload)
//	}
//
// # Model
//
// A log is a sequence of segments, each one ledger; a segment is in
// progress while its writer appends to it and completed afterwards. The
// writer batches records into entries (record sets, package recordset),
// acknowledges a record once its entry is durable on an ack quorum of
// bookies, rolls to a new segment by size (SegmentRollBytes) and age
// (SegmentRollInterval), and seals the log with MarkEndOfStream. A new
// writer first recovers every segment its predecessor left in progress
// (fencing the ledger, so the predecessor can never be acknowledged again).
// A record's DLSN is (segment, entry, slot); its sequence id is its
// ordinal in the log. docs/log.md describes the protocol, the reader's
// state machine and which test checks which guarantee.
//
// # Errors
//
// Errors wrap the sentinels of package dlog; dlog.IsDefinite tells a
// definite failure (nothing was written) from an indeterminate one.
//
//	error                     class          when
//	dlog.ErrInvalidName       definite       a bad or reserved namespace, log or subscription name
//	dlog.ErrInvalidArgument   definite       a reserved txid, an invalid or future DLSN, a bad config,
//	                                         a subscription commit that would move backwards,
//	                                         a bad idempotency tag (Record.ProducerID, Sequence)
//	dlog.ErrInvalidDLSN       definite       (with ErrInvalidArgument) a DLSN that is not a position
//	dlog.ErrRecordTooLarge    definite       a payload over MaxRecordBytes, a record set over MaxEntryBytes
//	dlog.ErrTxIDOutOfOrder    definite       a txid below the writer's last one
//	dlog.ErrLogNotFound       definite       an unknown log; a reader's log was deleted
//	dlog.ErrLogExists         definite       CreateLog of an existing log
//	dlog.ErrNotFound          definite       an unknown subscription; no record (GetLastRecord, DLSNForTxID)
//	*dlog.OwnedError          definite       another writer owns the log (OwnerID, Owner address)
//	dlog.ErrWriterActive      definite       DeleteLog without force while a writer owns the log
//	dlog.ErrOverCapacity      definite       the writer's pending bounds are reached
//	dlog.ErrEndOfStream       definite       a write to a sealed log; a reader after its last record
//	dlog.ErrTruncated         definite       a reader position in truncated or collected data
//	dlog.ErrClosed            definite       a closed writer, reader or namespace
//	dlog.ErrFenced            indeterminate  the writer lost the log: every pending and later write
//	dlog.Indeterminate(...)   indeterminate  a write pending when its segment failed (the writer
//	                                         recovers the segment; a reader tells whether it landed),
//	                                         a Write whose ctx ended
//	dlog.ErrUnavailable       indeterminate  metadata or bookies unreachable
//	dlog.ErrCorrupt           (reader)       data that fails its checks: the reader stops, never skips
//
// A DLSN carries no log identity, so a DLSN from another log is judged as
// a position of this one: past this log's end (a segment not created yet,
// an entry after the end of a completed segment) it fails with
// dlog.ErrInvalidArgument (OpenReader, Truncate), in this log's truncated
// data with dlog.ErrTruncated; otherwise it is a valid position here.
// Keep a DLSN together with the name of its log.
//
// # Idempotency tags
//
// A record written with dlog.Record.ProducerID (and Sequence) stores that
// tag with it (recordset's tagged records); readers and GetLastRecord
// return it in dlog.ReadRecord. The log core only stores tags: the
// service tier uses them to recognise retried writes, also after the log
// changed owner.
//
// # Concurrency
//
// Namespace and Writer are safe for concurrent use; concurrent writes are
// ordered by the moment the writer accepts them, and a txid must not
// decrease in that order. A Reader is used by one goroutine at a time
// (Close may come from any). Context is the first argument of every call
// that can block on the network; a ctx that ends makes a write
// indeterminate, never cancels it.
//
// Long-lived goroutines:
//
//   - Namespace: the collector (deletes truncated and expired segments
//     every GCInterval and after truncations); stopped by Close. The
//     metadata store and ledger client run their own (see their packages).
//   - Writer: one supervisor (applies ledger acknowledgements, rolls,
//     heals a failed segment, seals, closes), started by OpenWriter and
//     stopped by Close, by fencing or by Namespace.Close; plus the ledger
//     writer's delivery and supervisor goroutines.
//   - Reader: none. Next reads, long-polls the LAC and watches the log's
//     metadata in the caller's goroutine.
//
// Writer lock order: Writer.mu, then the ack inbox's mutex; the namespace
// mutex is never taken with Writer.mu held.
//
// # Metrics
//
// dlog_log_write_latency_seconds, dlog_log_records_written_total{log},
// dlog_log_bytes_written_total{log}, dlog_log_write_errors_total{class},
// dlog_log_records_read_total{log}, dlog_log_bytes_read_total{log},
// dlog_log_reader_lag_entries{log}, dlog_log_segment_rolls_total,
// dlog_log_segment_recoveries_total{outcome},
// dlog_log_writer_heals_total{outcome},
// dlog_log_gc_segments_deleted_total, dlog_log_entry_records.
package namespace
