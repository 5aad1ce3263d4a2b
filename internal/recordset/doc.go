// Package recordset is the payload format of ledger entries written by a
// log writer: a record set packs many records into one entry, optionally
// compressed. Builder accumulates and encodes records; Decode validates and
// decodes an entry. The ledger layer adds a CRC32C per entry, so there is
// no checksum here.
//
// # Format (version 1)
//
// All integers are big-endian. An entry is a 22-byte header followed by
// exactly StoredSize bytes of body:
//
//	offset size field
//	     0    1 version           1
//	     1    1 codec             bits 0-6: 1 none, 2 lz4, 3 zstd (0 is
//	                              invalid); bit 7: some record carries a
//	                              tag (see below), else 0
//	     2    4 count             number of records, ≥ 1
//	     6    8 base position     position in the segment of the set's
//	                              first user record (int64, ≥ 0)
//	    14    4 uncompressed size body size before compression
//	    18    4 stored size       body size as stored; = entry length − 22
//	    22    … body
//
// The uncompressed body is count records back to back, with nothing after
// the last:
//
//	offset size field
//	     0    1 flags             0x1 control, 0x2 end-of-stream (only with
//	                              0x1), 0x4 tagged (only without 0x1);
//	                              other bits must be 0
//	     1    8 txid              int64
//	     9    4 payload length    n
//	    13    n payload
//
// A tagged user record (flag 0x4) carries an idempotency tag after its
// payload: the producer id's length L (1 byte, 1 to 128), the id (L bytes)
// and the producer's sequence (int64, >= 0). Bit 7 of the codec byte is
// set exactly when some record of the set is tagged, so a reader can tell
// from the header whether a set has tags; a header and records that
// disagree are corrupt. Sets without tagged records are byte for byte what
// earlier versions of this package wrote, and every set they wrote
// decodes; an earlier decoder rejects a tagged set as corrupt (unknown
// flag or codec) instead of misreading it.
//
// With codec none the stored body is the body (stored size = uncompressed
// size). With lz4 it is one LZ4 block (no frame). With zstd it is exactly
// one zstd frame, without dictionary, skippable or further frames, whose
// content size field, if present, equals the uncompressed size. The writer stores a body
// uncompressed whenever compression would not make it smaller, so the
// codec byte tells what is stored, not what was asked for.
//
// A record's slot id (the last DLSN component) is its index in the set,
// counting control records. Positions count user records only: the i-th
// user record of a set has position base + i. Control records (including
// end-of-stream) are never delivered to applications; Decode reports their
// flags and the log core filters them.
//
// # Limits
//
// Payloads are at most Config.MaxRecordBytes, bodies at most
// Config.MaxSetBytes when written and MaxBodyBytes (8 MiB) in any case.
// Decode checks every declared size against the entry's length, the
// caller's limit, the format's maximum compression ratio, and count ×
// 13 ≤ body size before allocating, and never lets a decompressor write
// past the declared size, so a small hostile entry cannot make it allocate
// much (no decompression bombs).
//
// # Example
//
//	b, _ := recordset.NewBuilder(recordset.DefaultConfig())
//	b.Reset(userRecordsInSegmentSoFar)
//	for _, r := range pending {
//		if err := b.Append(recordset.Record{TxID: r.TxID, Payload: r.Payload}); errors.Is(err, recordset.ErrSetFull) {
//			// transmit, Reset, append again
//		}
//	}
//	entry, _ := b.Build(recordset.CodecLZ4)
//	set, err := recordset.Decode(entry, 0)
//
// # Concurrency
//
// A Builder is not safe for concurrent use. Decode and Build may run
// concurrently from many goroutines: the zstd encoder and decoder are
// shared (created on first use) and LZ4 compressors are pooled.
package recordset
