package dlog

// Record is what an application appends: a payload and an optional txid.
//
// TxID is the application's own sequence number for the record. It must not
// decrease within a log (a decreasing txid is a definite error); records
// without a meaningful txid may reuse the previous one. Negative txids and
// MaxTxID are reserved.
type Record struct {
	TxID    int64
	Payload []byte
}

// MaxTxID is reserved for the end-of-stream marker.
const MaxTxID = int64(^uint64(0) >> 1)

// ReadRecord is a record as a reader delivers it.
type ReadRecord struct {
	DLSN DLSN
	TxID int64
	// SequenceID is the record's 0-based ordinal in the log since its
	// creation: the start sequence id of its segment plus its position in it.
	SequenceID int64
	// Payload is owned by the caller.
	Payload []byte
}
