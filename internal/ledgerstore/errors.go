package ledgerstore

import "errors"

var (
	// ErrNoLedger: the store is sure it holds nothing of this ledger (never
	// added, fenced or keyed here, or deleted).
	ErrNoLedger = errors.New("ledgerstore: no such ledger")
	// ErrNoEntry: the ledger exists and the store is sure it holds no such
	// entry (neither cached nor indexed).
	ErrNoEntry = errors.New("ledgerstore: no such entry")
	// ErrCorrupt: stored bytes failed their checksum or do not belong to the
	// entry asked for. Never retried; errors.Is also matches
	// entrylog.ErrCorrupt when the entry log was at fault.
	ErrCorrupt = errors.New("ledgerstore: corrupt data")
	// ErrLedgerDeleted: the ledger was deleted; it cannot be added to,
	// fenced or keyed again (ids are never reused, so such a request is a
	// straggler or a journal replay from before the delete).
	ErrLedgerDeleted = errors.New("ledgerstore: ledger deleted")
	// ErrMasterKeyMismatch: the master key differs from the recorded one.
	ErrMasterKeyMismatch = errors.New("ledgerstore: master key mismatch")
	// ErrWriteCacheFull: the write cache is at WriteCacheMaxBytes; nothing
	// was stored. The owner must Flush; the caller may retry after.
	ErrWriteCacheFull = errors.New("ledgerstore: write cache full")
	// ErrInvalidArgument: a negative id, an oversized entry or master key.
	ErrInvalidArgument = errors.New("ledgerstore: invalid argument")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("ledgerstore: closed")
)
