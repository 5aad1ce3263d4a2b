package segment

import (
	"errors"
	"fmt"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/metadata"
	"github.com/dlog-io/dlog/internal/recordset"
)

// ActionKind is what the reader's shell must do next.
type ActionKind int

const (
	// ActOpen: open a reader on the ledger of segment LSSN (LedgerID),
	// then call Opened with its LAC.
	ActOpen ActionKind = iota + 1
	// ActRead: read entries First..Last of segment LSSN's ledger (all at or
	// below the LAC the cursor was told), then call Entries.
	ActRead
	// ActWaitLAC: wait until the ledger's LAC exceeds LAC (or the ledger is
	// closed), then call LAC. Re-list the log now and then meanwhile.
	ActWaitLAC
	// ActWaitLog: wait for a change of the log's metadata after the
	// revision of the last view, then call Update with a fresh view.
	ActWaitLog
	// ActFail: stop; Err says why (dlog.ErrEndOfStream after the last
	// record of a sealed log, dlog.ErrTruncated, dlog.ErrLogNotFound,
	// dlog.ErrCorrupt).
	ActFail
)

func (k ActionKind) String() string {
	switch k {
	case ActOpen:
		return "open"
	case ActRead:
		return "read"
	case ActWaitLAC:
		return "wait-lac"
	case ActWaitLog:
		return "wait-log"
	case ActFail:
		return "fail"
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is one step for the shell.
type Action struct {
	Kind        ActionKind
	LSSN        int64
	LedgerID    int64
	First, Last int64 // ActRead
	LAC         int64 // ActWaitLAC: the LAC the cursor knows
	Err         error // ActFail
}

// Entry is one ledger entry as read.
type Entry struct {
	ID      int64
	Payload []byte
}

// CursorConfig tunes a Cursor.
type CursorConfig struct {
	// BatchEntries bounds the entries of one ActRead (the readahead).
	// Default 64.
	BatchEntries int
	// MaxBodyBytes bounds a decoded entry body (0: recordset.MaxBodyBytes).
	MaxBodyBytes int
}

// Cursor is a reader's position in a log and the rules that move it: a
// pure state machine (no I/O, no goroutine, no clock) driven by one shell
// goroutine. Next says what to do; the shell does it and feeds the result
// back (Opened, LAC, Entries, Update). The rules are the ones DistributedLog
// readers got wrong:
//
//   - segments are read in lssn order as the metadata lists them; a missing
//     lssn is skipped only when sequence ids prove it held no record
//     (next.StartSequenceID == previous start + previous count), otherwise
//     the reader fails with dlog.ErrTruncated (collected) or
//     dlog.ErrCorrupt (a gap the protocol never makes);
//   - the cursor leaves a segment only when the metadata says COMPLETED and
//     every entry up to its LastEntryID was read: never because a later
//     segment appeared (a roll creates the next segment before it completes
//     the previous one), never because a ledger looked closed;
//   - in an in-progress segment it never reads past the LAC; after a new
//     writer recovered the segment its LastEntryID may exceed the LAC the
//     reader saw, and the cursor reads on to it;
//   - every delivered record's sequence id is the previous one plus one,
//     and every entry's base position continues the previous entry, or the
//     cursor fails with dlog.ErrCorrupt rather than skip or repeat;
//   - a segment that vanishes under the reader (collected) ends the read
//     with dlog.ErrTruncated unless the reader had passed all of it.
//
// A Cursor is not safe for concurrent use.
type Cursor struct {
	cfg     CursorConfig
	view    metadata.LogState
	start   dlog.DLSN // records before it are skipped
	minTxID int64     // records with a smaller txid are skipped until the first delivery; -1: off

	cur   *reading // nil between segments
	after int64    // between segments: every segment with lssn <= after is done
	// expectSeq is the start sequence id the next segment must have; -1
	// when unknown (the reader started in a segment that no longer exists
	// and read nothing of it).
	expectSeq int64

	lastSeq   int64 // sequence id of the last delivered record; -1: none yet
	last      dlog.DLSN
	delivered int64 // records delivered
	eos       bool
	err       error
	deleted   bool
	ledgerOf  map[int64]int64 // lssn -> ledger id seen, to notice a recreated log
}

// reading is the segment being read.
type reading struct {
	seg    metadata.Segment // latest metadata
	opened bool
	lac    int64 // highest entry the cursor may read (the ledger's LAC or last entry)
	sealed bool  // the ledger is closed: lac is its last entry
	next   int64 // next entry to read
	pos    int64 // position of the next user record in the segment; -1 unknown
}

// NewCursor positions a cursor at start in the log described by view:
// records before start are skipped; with minTxID >= 0, so are records with a
// smaller txid up to the first delivered one (a txid start that lies after
// every record read so far). Errors: dlog.ErrTruncated when start is before
// the truncation point or inside collected segments; ErrFuture when start is
// after the end of the log (or of the completed segment it names);
// dlog.ErrInvalidDLSN (with dlog.ErrInvalidArgument) for an invalid start.
func NewCursor(view metadata.LogState, start dlog.DLSN, minTxID int64, cfg CursorConfig) (*Cursor, error) {
	if cfg.BatchEntries <= 0 {
		cfg.BatchEntries = 64
	}
	if err := CheckPosition(view, start); err != nil {
		return nil, err
	}
	if start.Less(view.Truncation) {
		return nil, fmt.Errorf("%w: start %v is before the truncation point %v", dlog.ErrTruncated, start, view.Truncation)
	}
	c := &Cursor{
		cfg: cfg, view: view, start: start, minTxID: minTxID,
		after: start.LSSN - 1, lastSeq: -1, ledgerOf: make(map[int64]int64),
	}
	if minTxID < 0 {
		c.minTxID = -1
	}
	c.noteLedgers(view)
	c.expectSeq = expectedAt(view, start.LSSN)
	if s, ok := c.successor(); ok && c.expectSeq >= 0 && s.StartSequenceID > c.expectSeq {
		return nil, fmt.Errorf("%w: start %v: records %d..%d before segment %d were collected", dlog.ErrTruncated, start, c.expectSeq, s.StartSequenceID-1, s.LSSN)
	}
	return c, nil
}

// expectedAt returns the start sequence id the first segment at or after
// lssn must have when the segment lssn itself does not exist (its lssn is
// skipped, so whatever lies between must have held no record): the end of
// the last segment before it if that one is completed, 0 if there is none
// (nothing before it ever held a record, else it was collected). It returns
// -1 (no check) when segment lssn exists: nothing is skipped then.
func expectedAt(view metadata.LogState, lssn int64) int64 {
	if _, ok := Find(view, lssn); ok {
		return -1
	}
	expect := int64(0)
	for _, s := range view.Segments {
		if s.LSSN >= lssn {
			break
		}
		if s.State != metadata.SegmentCompleted {
			// Only a roll leaves a segment in progress below another, and it
			// creates lssn+1 directly: nothing can be missing after it.
			expect = -1
			continue
		}
		expect = s.StartSequenceID + s.RecordCount
	}
	return expect
}

// Delivered returns the number of records delivered, the last one's DLSN
// and sequence id (-1 before the first).
func (c *Cursor) Delivered() (n int64, last dlog.DLSN, lastSeq int64) {
	return c.delivered, c.last, c.lastSeq
}

// Revision is the metadata revision of the cursor's view.
func (c *Cursor) Revision() int64 { return c.view.Revision }

// Err is the terminal error, if any.
func (c *Cursor) Err() error {
	switch {
	case c.err != nil:
		return c.err
	case c.deleted:
		return fmt.Errorf("%w (deleted while reading)", dlog.ErrLogNotFound)
	case c.eos:
		return dlog.ErrEndOfStream
	}
	return nil
}

// Position reports the segment being read and the next entry, for lag
// metrics: ok is false between segments.
func (c *Cursor) Position() (lssn, nextEntry, lac int64, ok bool) {
	if c.cur == nil {
		return 0, 0, 0, false
	}
	return c.cur.seg.LSSN, c.cur.next, c.cur.lac, true
}

func (c *Cursor) fail(err error) Action {
	if c.err == nil {
		c.err = err
	}
	return Action{Kind: ActFail, Err: c.Err()}
}

// successor returns the first segment after c.after in the view.
func (c *Cursor) successor() (metadata.Segment, bool) {
	for _, s := range c.view.Segments {
		if s.LSSN > c.after {
			return s, true
		}
	}
	return metadata.Segment{}, false
}

// Next returns what the shell must do next. It never returns an action
// that would read past a LAC or skip a segment.
func (c *Cursor) Next() Action {
	if err := c.Err(); err != nil {
		return Action{Kind: ActFail, Err: err}
	}
	for {
		if c.cur == nil {
			s, ok := c.successor()
			if !ok {
				if Sealed(c.view) {
					c.eos = true
					return Action{Kind: ActFail, Err: c.Err()}
				}
				return Action{Kind: ActWaitLog}
			}
			if err := c.enter(s); err != nil {
				return c.fail(err)
			}
			continue
		}
		r := c.cur
		if !r.opened {
			return Action{Kind: ActOpen, LSSN: r.seg.LSSN, LedgerID: r.seg.LedgerID}
		}
		if r.seg.State == metadata.SegmentCompleted {
			last := r.seg.LastEntryID
			switch {
			case r.next > last+1:
				return c.fail(fmt.Errorf("%w: segment %d completed at entry %d but entry %d was read", dlog.ErrCorrupt, r.seg.LSSN, last, r.next-1))
			case r.sealed && r.lac != last:
				return c.fail(fmt.Errorf("%w: segment %d completed at entry %d but its ledger %d closed at %d", dlog.ErrCorrupt, r.seg.LSSN, last, r.seg.LedgerID, r.lac))
			case r.next == last+1:
				if r.pos >= 0 && r.pos != r.seg.RecordCount {
					return c.fail(fmt.Errorf("%w: segment %d holds %d records by its metadata, %d by its entries", dlog.ErrCorrupt, r.seg.LSSN, r.seg.RecordCount, r.pos))
				}
				if r.seg.EndOfStream {
					c.eos = true
					return Action{Kind: ActFail, Err: c.Err()}
				}
				c.after = r.seg.LSSN
				c.expectSeq = r.seg.StartSequenceID + r.seg.RecordCount
				c.cur = nil
				continue
			case r.lac >= r.next:
				return c.read(min(r.lac, last))
			default:
				// The ledger reader was opened before the ledger closed; its
				// LAC catches up once it sees the close.
				return Action{Kind: ActWaitLAC, LSSN: r.seg.LSSN, LedgerID: r.seg.LedgerID, LAC: r.lac}
			}
		}
		switch {
		case r.lac >= r.next:
			return c.read(r.lac)
		case r.sealed:
			// The ledger was closed (by its writer or a recovery) and every
			// entry was read: the segment ends when the metadata says so.
			return Action{Kind: ActWaitLog, LSSN: r.seg.LSSN}
		default:
			return Action{Kind: ActWaitLAC, LSSN: r.seg.LSSN, LedgerID: r.seg.LedgerID, LAC: r.lac}
		}
	}
}

func (c *Cursor) read(limit int64) Action {
	r := c.cur
	last := min(limit, r.next+int64(c.cfg.BatchEntries)-1)
	return Action{Kind: ActRead, LSSN: r.seg.LSSN, LedgerID: r.seg.LedgerID, First: r.next, Last: last}
}

// enter starts reading segment s, checking that no record lies between
// the previous segment and s.
func (c *Cursor) enter(s metadata.Segment) error {
	if c.expectSeq >= 0 && s.StartSequenceID != c.expectSeq {
		if s.StartSequenceID > c.expectSeq {
			return fmt.Errorf("%w: records %d..%d before segment %d were collected while reading", dlog.ErrTruncated, c.expectSeq, s.StartSequenceID-1, s.LSSN)
		}
		return fmt.Errorf("%w: segment %d starts at sequence id %d, before the expected %d", dlog.ErrCorrupt, s.LSSN, s.StartSequenceID, c.expectSeq)
	}
	r := &reading{seg: s, lac: -1, pos: 0}
	if s.LSSN == c.start.LSSN && (c.start.EntryID > 0 || c.start.SlotID > 0) {
		r.next = c.start.EntryID
		if r.next > 0 {
			r.pos = -1 // learnt from the first entry read
		}
	}
	c.cur = r
	return nil
}

// Opened reports that the shell opened the ledger of segment lssn, with
// its LAC (and sealed when the ledger is closed: lac is its last entry).
func (c *Cursor) Opened(lssn, lac int64, sealed bool) {
	if c.cur == nil || c.cur.seg.LSSN != lssn {
		return
	}
	c.cur.opened = true
	c.LAC(lssn, lac, sealed)
}

// LAC reports a LAC of segment lssn's ledger (ignored for another
// segment). A sealed ledger's LAC is final; a sealed LAC below one already
// known is corruption.
func (c *Cursor) LAC(lssn, lac int64, sealed bool) {
	r := c.cur
	if r == nil || r.seg.LSSN != lssn || !r.opened {
		return
	}
	if sealed {
		if lac < r.lac || lac < r.next-1 {
			c.err = fmt.Errorf("%w: ledger %d closed at entry %d below the LAC %d already read to %d", dlog.ErrCorrupt, r.seg.LedgerID, lac, r.lac, r.next-1)
			return
		}
		r.sealed = true
		r.lac = lac
		return
	}
	if !r.sealed && lac > r.lac {
		r.lac = lac
	}
}

// Update installs a fresh view of the log's metadata (ignored when older
// than the current one). A segment that vanished or changed ledger under
// the cursor is handled here; see the Cursor rules.
func (c *Cursor) Update(view metadata.LogState) {
	if view.Revision < c.view.Revision {
		return
	}
	c.view = view
	for _, s := range view.Segments {
		if id, ok := c.ledgerOf[s.LSSN]; ok && id != s.LedgerID {
			c.deleted = true // the log was deleted and created again
			return
		}
	}
	c.noteLedgers(view)
	r := c.cur
	if r == nil {
		return
	}
	s, ok := Find(view, r.seg.LSSN)
	if ok {
		if r.seg.State == metadata.SegmentCompleted && s.State != metadata.SegmentCompleted {
			c.err = fmt.Errorf("%w: segment %d went back to in progress", dlog.ErrCorrupt, s.LSSN)
			return
		}
		if r.seg.State == metadata.SegmentCompleted && s.LastEntryID != r.seg.LastEntryID {
			c.err = fmt.Errorf("%w: completed segment %d changed its last entry from %d to %d", dlog.ErrCorrupt, s.LSSN, r.seg.LastEntryID, s.LastEntryID)
			return
		}
		r.seg = s
		return
	}
	// The segment is gone: deleted empty by a recovery (then it held no
	// record and the next segment starts where it started), or collected.
	if r.pos < 0 {
		c.err = fmt.Errorf("%w: segment %d was deleted while the reader was in it", dlog.ErrTruncated, r.seg.LSSN)
		return
	}
	c.after = r.seg.LSSN
	c.expectSeq = r.seg.StartSequenceID + r.pos
	c.cur = nil
}

// Deleted reports that the log no longer exists.
func (c *Cursor) Deleted() { c.deleted = true }

func (c *Cursor) noteLedgers(view metadata.LogState) {
	for _, s := range view.Segments {
		c.ledgerOf[s.LSSN] = s.LedgerID
	}
}

// ErrUnexpectedEntry is returned by Entries for an entry the cursor did
// not ask for (a shell bug).
var ErrUnexpectedEntry = errors.New("segment: entry not asked for")

// Entries feeds entries read from segment lssn's ledger, in order from the
// next entry the cursor asked for (a prefix of an ActRead is fine). It
// returns the records to deliver: user records at or after the start, in
// DLSN order, with sequence ids. Payloads alias the entries' payloads (or
// a decompressed copy). After an end-of-stream record it delivers nothing
// more and Next fails with dlog.ErrEndOfStream. Errors (terminal):
// dlog.ErrCorrupt for an undecodable entry or broken positions,
// ErrUnexpectedEntry.
func (c *Cursor) Entries(lssn int64, entries []Entry) ([]dlog.ReadRecord, error) {
	if err := c.Err(); err != nil {
		return nil, err
	}
	r := c.cur
	if r == nil || r.seg.LSSN != lssn {
		return nil, fmt.Errorf("%w: segment %d", ErrUnexpectedEntry, lssn)
	}
	var out []dlog.ReadRecord
	for _, e := range entries {
		if e.ID != r.next || e.ID > r.lac {
			c.err = fmt.Errorf("%w: entry %d of segment %d (next %d, lac %d)", ErrUnexpectedEntry, e.ID, lssn, r.next, r.lac)
			return out, c.err
		}
		set, err := recordset.Decode(e.Payload, c.cfg.MaxBodyBytes)
		if err != nil {
			c.err = fmt.Errorf("segment %d entry %d: %w", lssn, e.ID, err)
			return out, c.err
		}
		if r.pos >= 0 && set.BasePosition != r.pos {
			c.err = fmt.Errorf("%w: segment %d entry %d starts at position %d, expected %d", dlog.ErrCorrupt, lssn, e.ID, set.BasePosition, r.pos)
			return out, c.err
		}
		r.next++
		r.pos = set.BasePosition
		for i, rec := range set.Records {
			if rec.Flags.IsControl() {
				if rec.Flags.IsEndOfStream() {
					c.eos = true
					return out, nil
				}
				continue
			}
			r.pos++
			d := dlog.DLSN{LSSN: lssn, EntryID: e.ID, SlotID: int64(i)}
			if rec.TxID < 0 {
				c.err = fmt.Errorf("%w: record %v has a negative txid", dlog.ErrCorrupt, d)
				return out, c.err
			}
			if d.Less(c.start) || c.minTxID >= 0 && rec.TxID < c.minTxID {
				continue
			}
			c.minTxID = -1
			seq := r.seg.StartSequenceID + rec.Position
			if c.lastSeq >= 0 && seq != c.lastSeq+1 {
				c.err = fmt.Errorf("%w: record %v has sequence id %d after %d", dlog.ErrCorrupt, d, seq, c.lastSeq)
				return out, c.err
			}
			if c.delivered > 0 && !c.last.Less(d) {
				c.err = fmt.Errorf("%w: record %v after %v", dlog.ErrCorrupt, d, c.last)
				return out, c.err
			}
			c.lastSeq, c.last = seq, d
			c.delivered++
			out = append(out, dlog.ReadRecord{DLSN: d, TxID: rec.TxID, SequenceID: seq, Payload: rec.Payload,
				ProducerID: rec.ProducerID, Sequence: rec.Sequence})
		}
	}
	return out, nil
}
