package journal

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is.
var (
	// ErrFailed is wrapped by every error reported after a write, sync or
	// file-creation failure. The failure is sticky: the journal never
	// retries, and every later Append fails with it. The outcome of the
	// records in the failing group is indeterminate: they were not
	// acknowledged but may appear in a later Replay.
	ErrFailed = errors.New("journal: failed")
	// ErrClosed is reported for appends made after Close, and to the
	// callbacks of records still queued when Close was called (those
	// records were never written).
	ErrClosed = errors.New("journal: closed")
	// ErrRecordTooLarge rejects a record longer than Config.MaxRecordBytes.
	ErrRecordTooLarge = errors.New("journal: record too large")
	// ErrEmptyRecord rejects a zero-length record (a zero length marks the
	// end of written data on disk).
	ErrEmptyRecord = errors.New("journal: empty record")
	// ErrOverloaded rejects an Append while Config.MaxQueueBytes of records
	// are queued and not yet handed to the disk. Back off and retry, or use
	// AppendSync, which waits for room.
	ErrOverloaded = errors.New("journal: queue full")
	// ErrNotReplayed rejects Append and ReleaseBefore before a successful
	// Replay: until the journal has read its tail it does not know where it
	// may write.
	ErrNotReplayed = errors.New("journal: not replayed yet")
	// ErrReplayed rejects a second Replay after one has succeeded.
	ErrReplayed = errors.New("journal: already replayed")
	// ErrBadPosition reports a replay position that falls inside a record
	// rather than on a record boundary. Nothing is cut when it is returned.
	ErrBadPosition = errors.New("journal: position not at a record boundary")
)

// FailureError is the cause of a sticky failure. It matches both ErrFailed
// and the underlying error (for example syscall.EIO or syscall.ENOSPC) with
// errors.Is.
type FailureError struct {
	// Op is what failed: "write", "sync", "roll", ...
	Op string
	// FileID is the journal file being written, 0 if none.
	FileID uint64
	// Err is the error returned by the file system.
	Err error
}

func (e *FailureError) Error() string {
	return fmt.Sprintf("journal: failed: %s file %016x: %v", e.Op, e.FileID, e.Err)
}

// Unwrap returns ErrFailed and the underlying error.
func (e *FailureError) Unwrap() []error { return []error{ErrFailed, e.Err} }
