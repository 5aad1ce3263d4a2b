package namespace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/recordset"
	"github.com/dlog-io/dlog/internal/segment"
)

// SegmentInfo describes one segment of a log (ListSegments).
type SegmentInfo struct {
	LSSN       int64
	LedgerID   int64
	InProgress bool
	// FirstTxID is a lower bound of the segment's txids; LastTxID, the
	// last user record's txid (-1 while in progress or without records).
	FirstTxID, LastTxID int64
	// LastEntryID and LastSlotID end the segment (-1 while in progress).
	LastEntryID, LastSlotID int64
	// RecordCount is the number of records (-1 while in progress).
	RecordCount     int64
	StartSequenceID int64
	Created         time.Time
	Completed       time.Time // zero while in progress
	// Truncation is "active", "partial" (MinActive is the first readable
	// position) or "truncated".
	Truncation  string
	MinActive   dlog.DLSN
	EndOfStream bool
	WriterID    string
}

func segmentInfo(s metadata.Segment) SegmentInfo {
	info := SegmentInfo{
		LSSN: s.LSSN, LedgerID: s.LedgerID, InProgress: s.State == metadata.SegmentInProgress,
		FirstTxID: s.FirstTxID, LastTxID: s.LastTxID, LastEntryID: s.LastEntryID, LastSlotID: s.LastSlotID,
		RecordCount: s.RecordCount, StartSequenceID: s.StartSequenceID, Created: s.Created, Completed: s.Completed,
		MinActive: s.MinActive, EndOfStream: s.EndOfStream, WriterID: s.WriterID, Truncation: "active",
	}
	if info.InProgress {
		info.LastTxID, info.LastEntryID, info.LastSlotID, info.RecordCount = -1, -1, -1, -1
	}
	switch s.Truncation {
	case metadata.TruncationPartial:
		info.Truncation = "partial"
	case metadata.TruncationFull:
		info.Truncation = "truncated"
	}
	return info
}

// ListSegments returns the log's segments in lssn order. Errors:
// dlog.ErrInvalidName, dlog.ErrLogNotFound, metadata errors.
func (n *Namespace) ListSegments(ctx context.Context, log string) ([]SegmentInfo, error) {
	st, err := n.state(ctx, log)
	if err != nil {
		return nil, err
	}
	out := make([]SegmentInfo, len(st.Segments))
	for i, s := range st.Segments {
		out[i] = segmentInfo(s)
	}
	return out, nil
}

func (n *Namespace) state(ctx context.Context, log string) (metadata.LogState, error) {
	if err := checkLogName(log); err != nil {
		return metadata.LogState{}, err
	}
	st, err := n.store.GetLogState(ctx, n.name, log)
	return st, n.logErr(log, err)
}

// firstFrom returns the first record at or after start (with txid >=
// minTxID when >= 0) that exists now, or dlog.ErrNotFound.
func (n *Namespace) firstFrom(ctx context.Context, log string, st metadata.LogState, start dlog.DLSN, minTxID int64) (dlog.ReadRecord, error) {
	c, err := segment.NewCursor(st, start, minTxID, segment.CursorConfig{BatchEntries: 4, MaxBodyBytes: n.cfg.MaxEntryBytes})
	if err != nil {
		return dlog.ReadRecord{}, fmt.Errorf("log %s/%s: %w", n.name, log, err)
	}
	r := &Reader{n: n, log: log, relist: n.cfg.ReaderRelistInterval, poll: true, c: c,
		mRecords: n.metrics.recordsRead.WithLabelValues(log), mBytes: n.metrics.bytesRead.WithLabelValues(log),
		mLag: n.metrics.readerLag.WithLabelValues(log)}
	r.base, r.cancel = context.WithCancel(context.Background())
	defer func() { r.cancel(); r.closeLedger() }()
	rec, err := r.Next(ctx)
	if errors.Is(err, errCaughtUp) || errors.Is(err, dlog.ErrEndOfStream) {
		return dlog.ReadRecord{}, fmt.Errorf("log %s/%s: %w: no record", n.name, log, dlog.ErrNotFound)
	}
	return rec, err
}

// GetFirstRecord returns the first readable record. Errors:
// dlog.ErrInvalidName, dlog.ErrLogNotFound, dlog.ErrNotFound (no record),
// metadata and ledger errors.
func (n *Namespace) GetFirstRecord(ctx context.Context, log string) (dlog.ReadRecord, error) {
	st, err := n.state(ctx, log)
	if err != nil {
		return dlog.ReadRecord{}, err
	}
	return n.firstFrom(ctx, log, st, segment.FirstPosition(st), -1)
}

// FirstDLSN returns the DLSN of the first readable record. Errors as
// GetFirstRecord.
func (n *Namespace) FirstDLSN(ctx context.Context, log string) (dlog.DLSN, error) {
	rec, err := n.GetFirstRecord(ctx, log)
	return rec.DLSN, err
}

// DLSNForTxID returns the DLSN of the first record with txid >= txid.
// Errors: dlog.ErrInvalidArgument (negative txid), dlog.ErrNotFound (no
// such record yet), and those of GetFirstRecord.
func (n *Namespace) DLSNForTxID(ctx context.Context, log string, txid int64) (dlog.DLSN, error) {
	if txid < 0 {
		return dlog.InvalidDLSN, fmt.Errorf("%w: txid %d", dlog.ErrInvalidArgument, txid)
	}
	st, err := n.state(ctx, log)
	if err != nil {
		return dlog.InvalidDLSN, err
	}
	start, err := n.txidStart(ctx, st, txid)
	if err != nil {
		return dlog.InvalidDLSN, err
	}
	rec, err := n.firstFrom(ctx, log, st, start, txid)
	return rec.DLSN, err
}

// GetLastRecord returns the last record of the log, reading the tail of
// the last segment that holds one (an in-progress segment up to its LAC).
// Errors: dlog.ErrNotFound (no readable record), and those of
// GetFirstRecord.
func (n *Namespace) GetLastRecord(ctx context.Context, log string) (dlog.ReadRecord, error) {
	st, err := n.state(ctx, log)
	if err != nil {
		return dlog.ReadRecord{}, err
	}
	rec, ok, err := n.lastRecord(ctx, st)
	switch {
	case err != nil:
		return dlog.ReadRecord{}, fmt.Errorf("log %s/%s: last record: %w", n.name, log, err)
	case !ok || rec.DLSN.Less(st.Truncation):
		return dlog.ReadRecord{}, fmt.Errorf("log %s/%s: %w: no record", n.name, log, dlog.ErrNotFound)
	}
	return rec, nil
}

// LastDLSN returns the DLSN of the last record. Errors as GetLastRecord.
func (n *Namespace) LastDLSN(ctx context.Context, log string) (dlog.DLSN, error) {
	rec, err := n.GetLastRecord(ctx, log)
	return rec.DLSN, err
}

// LastTxID returns the txid of the last record ever written (truncated or
// not), or -1 for a log that never had one. Errors: those of
// GetFirstRecord.
func (n *Namespace) LastTxID(ctx context.Context, log string) (int64, error) {
	st, err := n.state(ctx, log)
	if err != nil {
		return -1, err
	}
	rec, ok, err := n.lastRecord(ctx, st)
	if err != nil {
		return -1, fmt.Errorf("log %s/%s: last record: %w", n.name, log, err)
	}
	if ok && rec.TxID > st.MaxTxID {
		return rec.TxID, nil
	}
	return st.MaxTxID, nil
}

// RecordCount returns the number of readable records: from the first
// record after the truncation point to the last one. Errors: those of
// GetFirstRecord (never dlog.ErrNotFound: an empty log counts 0).
func (n *Namespace) RecordCount(ctx context.Context, log string) (int64, error) {
	first, err := n.GetFirstRecord(ctx, log)
	if errors.Is(err, dlog.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	last, err := n.GetLastRecord(ctx, log)
	if errors.Is(err, dlog.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return last.SequenceID - first.SequenceID + 1, nil
}

// lastRecord scans segments from the last one backwards for the last user
// record (ignoring truncation).
func (n *Namespace) lastRecord(ctx context.Context, st metadata.LogState) (dlog.ReadRecord, bool, error) {
	for i := len(st.Segments) - 1; i >= 0; i-- {
		s := st.Segments[i]
		if s.State == metadata.SegmentCompleted && s.RecordCount == 0 {
			continue
		}
		lr, err := n.ledgers.OpenReader(ctx, s.LedgerID)
		if err != nil {
			return dlog.ReadRecord{}, false, fmt.Errorf("segment %d: %w", s.LSSN, err)
		}
		last := lr.LAC()
		if s.State == metadata.SegmentCompleted {
			last = s.LastEntryID
		}
		for e := last; e >= 0; e-- {
			es, err := lr.Read(ctx, e, e)
			if err != nil {
				lr.Close()
				return dlog.ReadRecord{}, false, fmt.Errorf("segment %d entry %d: %w", s.LSSN, e, err)
			}
			set, err := recordset.Decode(es[0].Payload, n.cfg.MaxEntryBytes)
			if err != nil {
				lr.Close()
				return dlog.ReadRecord{}, false, fmt.Errorf("segment %d entry %d: %w", s.LSSN, e, err)
			}
			for k := len(set.Records) - 1; k >= 0; k-- {
				if rec := set.Records[k]; !rec.Flags.IsControl() {
					lr.Close()
					return dlog.ReadRecord{
						DLSN: dlog.DLSN{LSSN: s.LSSN, EntryID: e, SlotID: int64(k)}, TxID: rec.TxID,
						SequenceID: s.StartSequenceID + rec.Position, Payload: rec.Payload,
						ProducerID: rec.ProducerID, Sequence: rec.Sequence,
					}, true, nil
				}
			}
			if set.BasePosition == 0 {
				break // nothing before this entry in the segment
			}
		}
		lr.Close()
	}
	return dlog.ReadRecord{}, false, nil
}

// ---- subscriptions ----

// subErr maps a subscription error: an unknown subscription of an
// existing log is dlog.ErrNotFound, of a missing log dlog.ErrLogNotFound.
func (n *Namespace) subErr(ctx context.Context, log, name string, err error) error {
	if errors.Is(err, metadata.ErrNotFound) {
		if ok, lerr := n.store.LogExists(ctx, n.name, log); lerr == nil && !ok {
			return fmt.Errorf("log %s/%s: %w", n.name, log, dlog.ErrLogNotFound)
		}
		return fmt.Errorf("subscription %s of %s/%s: %w", name, n.name, log, dlog.ErrNotFound)
	}
	return fmt.Errorf("subscription %s of %s/%s: %w", name, n.name, log, err)
}

// GetSubscription returns the position stored for a subscription (the
// last record its consumer processed). Errors: dlog.ErrInvalidName,
// dlog.ErrLogNotFound, dlog.ErrNotFound, metadata errors.
func (n *Namespace) GetSubscription(ctx context.Context, log, name string) (dlog.DLSN, error) {
	if err := checkLogName(log); err != nil {
		return dlog.InvalidDLSN, err
	}
	sub, err := n.store.GetSubscription(ctx, n.name, log, name)
	if err != nil {
		return dlog.InvalidDLSN, n.subErr(ctx, log, name, err)
	}
	return sub.Position, nil
}

// CommitSubscription stores pos for the subscription (creating it),
// forward only: a position before the stored one fails with
// dlog.ErrInvalidArgument (definite; use ResetSubscription to move back);
// an equal one is accepted. Errors: dlog.ErrInvalidName,
// dlog.ErrInvalidArgument (also an invalid pos), dlog.ErrLogNotFound,
// metadata errors.
func (n *Namespace) CommitSubscription(ctx context.Context, log, name string, pos dlog.DLSN) error {
	return n.setSubscription(ctx, log, name, pos, false)
}

// ResetSubscription stores pos for the subscription whatever the stored
// position. Errors as CommitSubscription.
func (n *Namespace) ResetSubscription(ctx context.Context, log, name string, pos dlog.DLSN) error {
	return n.setSubscription(ctx, log, name, pos, true)
}

func (n *Namespace) setSubscription(ctx context.Context, log, name string, pos dlog.DLSN, reset bool) error {
	if err := checkLogName(log); err != nil {
		return err
	}
	if err := dlog.ValidateName(name); err != nil {
		return fmt.Errorf("subscription: %w", err)
	}
	if !pos.IsValid() {
		return fmt.Errorf("%w: %w: %v", dlog.ErrInvalidArgument, dlog.ErrInvalidDLSN, pos)
	}
	err := n.store.CommitSubscription(ctx, n.name, log, name, pos, reset)
	switch {
	case errors.Is(err, metadata.ErrBackwards):
		return fmt.Errorf("subscription %s of %s/%s: %w: %v is before the stored position", name, n.name, log, dlog.ErrInvalidArgument, pos)
	case errors.Is(err, metadata.ErrNotFound):
		return fmt.Errorf("log %s/%s: %w", n.name, log, dlog.ErrLogNotFound)
	case err != nil:
		return fmt.Errorf("subscription %s of %s/%s: %w", name, n.name, log, err)
	}
	return nil
}

// DeleteSubscription removes a subscription. Errors: dlog.ErrInvalidName,
// dlog.ErrLogNotFound, dlog.ErrNotFound, metadata errors.
func (n *Namespace) DeleteSubscription(ctx context.Context, log, name string) error {
	if err := checkLogName(log); err != nil {
		return err
	}
	if err := n.store.DeleteSubscription(ctx, n.name, log, name); err != nil {
		return n.subErr(ctx, log, name, err)
	}
	return nil
}

// ListSubscriptions returns every subscription of the log and its
// position. Errors: dlog.ErrInvalidName, dlog.ErrLogNotFound, metadata
// errors.
func (n *Namespace) ListSubscriptions(ctx context.Context, log string) (map[string]dlog.DLSN, error) {
	if err := checkLogName(log); err != nil {
		return nil, err
	}
	subs, err := n.store.ListSubscriptions(ctx, n.name, log)
	if err != nil {
		return nil, n.logErr(log, err)
	}
	if len(subs) == 0 {
		if ok, err := n.store.LogExists(ctx, n.name, log); err == nil && !ok {
			return nil, fmt.Errorf("log %s/%s: %w", n.name, log, dlog.ErrLogNotFound)
		}
	}
	out := make(map[string]dlog.DLSN, len(subs))
	for k, v := range subs {
		out[k] = v.Position
	}
	return out, nil
}
