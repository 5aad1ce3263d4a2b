package entrylog

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt: a record failed its checksum, its header does not name the
	// (ledger, entry) the caller asked for, or the file ends inside it.
	// Corruption is never retried and never reported as "not found".
	ErrCorrupt = errors.New("entrylog: corrupt record")
	// ErrLogNotFound: no entry log with that id exists (it was never created
	// or has been removed by compaction). Callers holding a location from an
	// index should look the index up again.
	ErrLogNotFound = errors.New("entrylog: entry log not found")
	// ErrClosed: the Logs was closed.
	ErrClosed = errors.New("entrylog: closed")
	// ErrPayloadTooLarge: the payload is longer than MaxPayloadSize.
	ErrPayloadTooLarge = errors.New("entrylog: payload too large")
)

// CorruptError describes a corrupt record. It matches ErrCorrupt.
type CorruptError struct {
	LogID  int64 // -1 when not known (DecodeRecord on a bare buffer)
	Offset int64 // -1 when not known
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("entrylog: corrupt record in log %d at offset %d: %s", e.LogID, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corruptAt(logID, offset int64, format string, args ...any) error {
	return &CorruptError{LogID: logID, Offset: offset, Reason: fmt.Sprintf(format, args...)}
}
