package metadata

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/internal/pb/metapb"
)

// Values are the protobuf messages of proto/dlog/metadata/v1, except the
// two counters (maxlssn, maxtxid), which are decimal ASCII. Times are Unix
// milliseconds; 0 stands for the zero time.

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromUnixMs(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

func marshal(m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		// Only invalid UTF-8 in a string field can fail; names and ids are
		// validated ASCII, free-form fields are checked before.
		panic(fmt.Sprintf("metadata: marshal %T: %v", m, err))
	}
	return b
}

func unmarshal(key string, b []byte, m proto.Message) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, key, err)
	}
	return nil
}

func encodeInt(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

func decodeInt(key string, b []byte) (int64, error) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %q is not a decimal integer", ErrCorrupt, key, b)
	}
	return n, nil
}

func dlsnToPB(d dlog.DLSN) *metapb.DLSN {
	return &metapb.DLSN{Lssn: d.LSSN, EntryId: d.EntryID, SlotId: d.SlotID}
}

func dlsnFromPB(p *metapb.DLSN) dlog.DLSN {
	return dlog.DLSN{LSSN: p.GetLssn(), EntryID: p.GetEntryId(), SlotID: p.GetSlotId()}
}

func bookieToPB(b BookieInfo) *metapb.Bookie {
	return &metapb.Bookie{
		Id: b.ID, Address: b.Address, Region: b.Region, Rack: b.Rack,
		State: metapb.BookieState(b.State), InstanceId: b.InstanceID,
		FreeBytes: b.FreeBytes, TotalBytes: b.TotalBytes,
	}
}

func bookieFromPB(p *metapb.Bookie) BookieInfo {
	return BookieInfo{
		ID: p.GetId(), Address: p.GetAddress(), Region: p.GetRegion(), Rack: p.GetRack(),
		State: BookieState(p.GetState()), InstanceID: p.GetInstanceId(),
		FreeBytes: p.GetFreeBytes(), TotalBytes: p.GetTotalBytes(),
	}
}

func cookieToPB(c Cookie) *metapb.Cookie {
	return &metapb.Cookie{
		BookieId: c.BookieID, InstanceId: c.InstanceID, Address: c.Address,
		Dirs: slices.Clone(c.Dirs), CreatedUnixMs: unixMs(c.Created),
	}
}

func cookieFromPB(p *metapb.Cookie) Cookie {
	return Cookie{
		BookieID: p.GetBookieId(), InstanceID: p.GetInstanceId(), Address: p.GetAddress(),
		Dirs: slices.Clone(p.GetDirs()), Created: fromUnixMs(p.GetCreatedUnixMs()),
	}
}

func ledgerToPB(m LedgerMetadata) *metapb.Ledger {
	p := &metapb.Ledger{
		EnsembleSize: int32(m.EnsembleSize), WriteQuorum: int32(m.WriteQuorum), AckQuorum: int32(m.AckQuorum),
		MinRegions: int32(m.MinRegions), State: metapb.LedgerState(m.State),
		LastEntryId: m.LastEntryID, Length: m.Length,
		MasterKey: slices.Clone(m.MasterKey), Custom: maps.Clone(m.Custom),
		CreatedUnixMs: unixMs(m.Created), EntryFormat: int32(m.EntryFormat),
	}
	for _, f := range m.Fragments {
		p.Fragments = append(p.Fragments, &metapb.Fragment{FirstEntryId: f.FirstEntryID, Bookies: slices.Clone(f.Bookies)})
	}
	return p
}

func ledgerFromPB(p *metapb.Ledger) LedgerMetadata {
	m := LedgerMetadata{
		EnsembleSize: int(p.GetEnsembleSize()), WriteQuorum: int(p.GetWriteQuorum()), AckQuorum: int(p.GetAckQuorum()),
		MinRegions: int(p.GetMinRegions()), State: LedgerState(p.GetState()),
		LastEntryID: p.GetLastEntryId(), Length: p.GetLength(),
		MasterKey: slices.Clone(p.GetMasterKey()), Custom: maps.Clone(p.GetCustom()),
		Created: fromUnixMs(p.GetCreatedUnixMs()), EntryFormat: int(p.GetEntryFormat()),
	}
	for _, f := range p.GetFragments() {
		m.Fragments = append(m.Fragments, Fragment{FirstEntryID: f.GetFirstEntryId(), Bookies: slices.Clone(f.GetBookies())})
	}
	return m
}

// validateLedger checks what every ledger must satisfy to be stored.
func validateLedger(m LedgerMetadata) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: ledger metadata: %s", dlog.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	switch {
	case m.AckQuorum < 1 || m.WriteQuorum < m.AckQuorum || m.EnsembleSize < m.WriteQuorum:
		return bad("need E >= Qw >= Qa >= 1, have E=%d Qw=%d Qa=%d", m.EnsembleSize, m.WriteQuorum, m.AckQuorum)
	case m.State < LedgerOpen || m.State > LedgerClosed:
		return bad("state %d", m.State)
	case len(m.Fragments) == 0 || m.Fragments[0].FirstEntryID != 0:
		return bad("fragments must start at entry 0")
	case m.LastEntryID < -1:
		return bad("last entry id %d", m.LastEntryID)
	case m.EntryFormat < 0:
		return bad("entry format %d", m.EntryFormat)
	}
	for i, f := range m.Fragments {
		if i > 0 && f.FirstEntryID <= m.Fragments[i-1].FirstEntryID {
			return bad("fragment first entry ids not ascending at %d", i)
		}
		if len(f.Bookies) != m.EnsembleSize {
			return bad("fragment %d has %d bookies, ensemble size is %d", i, len(f.Bookies), m.EnsembleSize)
		}
		seen := make(map[string]bool, len(f.Bookies))
		for _, b := range f.Bookies {
			if err := ValidateID(b); err != nil {
				return fmt.Errorf("fragment %d: %w", i, err)
			}
			if seen[b] {
				return bad("fragment %d names bookie %s twice", i, b)
			}
			seen[b] = true
		}
	}
	for k, v := range m.Custom {
		if !utf8Valid(k) || !utf8Valid(v) {
			return bad("custom metadata must be UTF-8")
		}
	}
	return nil
}

func namespaceToPB(n NamespaceInfo) *metapb.Namespace {
	return &metapb.Namespace{CreatedUnixMs: unixMs(n.Created), RetentionMs: n.Retention.Milliseconds()}
}

func namespaceFromPB(p *metapb.Namespace) NamespaceInfo {
	return NamespaceInfo{Created: fromUnixMs(p.GetCreatedUnixMs()), Retention: time.Duration(p.GetRetentionMs()) * time.Millisecond}
}

func logInfoToPB(l LogInfo) *metapb.Log {
	return &metapb.Log{CreatedUnixMs: unixMs(l.Created), RetentionMs: l.Retention.Milliseconds()}
}

func logInfoFromPB(p *metapb.Log) LogInfo {
	return LogInfo{Created: fromUnixMs(p.GetCreatedUnixMs()), Retention: time.Duration(p.GetRetentionMs()) * time.Millisecond}
}

func segmentToPB(s Segment) *metapb.Segment {
	return &metapb.Segment{
		Lssn: s.LSSN, LedgerId: s.LedgerID, State: metapb.SegmentState(s.State),
		FirstTxid: s.FirstTxID, LastTxid: s.LastTxID, LastEntryId: s.LastEntryID, LastSlotId: s.LastSlotID,
		RecordCount: s.RecordCount, StartSequenceId: s.StartSequenceID,
		CreatedUnixMs: unixMs(s.Created), CompletedUnixMs: unixMs(s.Completed),
		Truncation: metapb.TruncationStatus(s.Truncation), MinActive: dlsnToPB(s.MinActive),
		WriterId: s.WriterID, EndOfStream: s.EndOfStream,
	}
}

func segmentFromPB(p *metapb.Segment) Segment {
	return Segment{
		LSSN: p.GetLssn(), LedgerID: p.GetLedgerId(), State: SegmentState(p.GetState()),
		FirstTxID: p.GetFirstTxid(), LastTxID: p.GetLastTxid(), LastEntryID: p.GetLastEntryId(),
		LastSlotID: p.GetLastSlotId(), RecordCount: p.GetRecordCount(), StartSequenceID: p.GetStartSequenceId(),
		Created: fromUnixMs(p.GetCreatedUnixMs()), Completed: fromUnixMs(p.GetCompletedUnixMs()),
		Truncation: TruncationStatus(p.GetTruncation()), MinActive: dlsnFromPB(p.GetMinActive()),
		WriterID: p.GetWriterId(), EndOfStream: p.GetEndOfStream(),
	}
}

func validateSegment(s Segment) error {
	switch {
	case s.LSSN < 1:
		return fmt.Errorf("%w: segment lssn %d < 1", dlog.ErrInvalidArgument, s.LSSN)
	case s.LedgerID < 1:
		return fmt.Errorf("%w: segment %d: ledger id %d < 1", dlog.ErrInvalidArgument, s.LSSN, s.LedgerID)
	case s.State != SegmentInProgress && s.State != SegmentCompleted:
		return fmt.Errorf("%w: segment %d: state %d", dlog.ErrInvalidArgument, s.LSSN, s.State)
	case !utf8Valid(s.WriterID):
		return fmt.Errorf("%w: segment %d: writer id not UTF-8", dlog.ErrInvalidArgument, s.LSSN)
	}
	return nil
}

func ownerToPB(o OwnerInfo) *metapb.Owner {
	return &metapb.Owner{Id: o.ID, Address: o.Address, AcquiredUnixMs: unixMs(o.Acquired)}
}

func ownerFromPB(p *metapb.Owner) OwnerInfo {
	return OwnerInfo{ID: p.GetId(), Address: p.GetAddress(), Acquired: fromUnixMs(p.GetAcquiredUnixMs())}
}

func subscriptionToPB(pos dlog.DLSN, updated time.Time) *metapb.Subscription {
	return &metapb.Subscription{Position: dlsnToPB(pos), UpdatedUnixMs: unixMs(updated)}
}

func subscriptionFromPB(p *metapb.Subscription, v Version) Subscription {
	return Subscription{Position: dlsnFromPB(p.GetPosition()), Updated: fromUnixMs(p.GetUpdatedUnixMs()), Version: v}
}

func proxyToPB(p ProxyInfo) *metapb.Proxy {
	return &metapb.Proxy{Id: p.ID, Address: p.Address, HttpAddress: p.HTTPAddress, Region: p.Region, AcceptNewLogs: p.AcceptNewLogs}
}

func proxyFromPB(p *metapb.Proxy) ProxyInfo {
	return ProxyInfo{ID: p.GetId(), Address: p.GetAddress(), HTTPAddress: p.GetHttpAddress(), Region: p.GetRegion(), AcceptNewLogs: p.GetAcceptNewLogs()}
}

func utf8Valid(s string) bool { return utf8.ValidString(s) }
