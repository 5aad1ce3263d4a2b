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

	// ProducerID and Sequence tag an idempotent write (ProducerID empty:
	// untagged). The tag is stored with the record, so whoever owns the log
	// later can tell that a retried write is already in it: the service
	// tier answers a retry with the original DLSN instead of appending it
	// again. A producer's sequences increase; ProducerID is at most
	// MaxProducerIDLength bytes of printable ASCII and Sequence is >= 0.
	ProducerID string
	Sequence   int64
}

// MaxProducerIDLength bounds Record.ProducerID, in bytes.
const MaxProducerIDLength = 128

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
	// ProducerID and Sequence are the record's idempotency tag, if it was
	// written with one (see Record).
	ProducerID string
	Sequence   int64
}
