package client

import (
	"context"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
)

// checkLog validates a log name before anything is sent.
func checkLog(log string) error {
	if err := dlog.ValidateName(log); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	return nil
}

// CreateLog creates an empty log; retention 0 keeps data until truncated.
// Errors: dlog.ErrInvalidName, dlog.ErrLogExists, dlog.ErrNamespaceNotFound
// (definite); a failure after sending is indeterminate (the log may exist:
// a retry then gets dlog.ErrLogExists).
func (c *Client) CreateLog(ctx context.Context, log string, retention time.Duration) error {
	if err := checkLog(log); err != nil {
		return err
	}
	_, err := c.call(ctx, c.logKey(log), routeAny, false, func(ctx context.Context, s *stubs) error {
		_, err := s.log.CreateLog(ctx, connect.NewRequest(&dlogpb.CreateLogRequest{Log: c.ref(log), RetentionMs: retention.Milliseconds()}))
		return err
	})
	return err
}

// SetRetention changes how long the log's completed segments are kept
// after completion; 0 falls back to the namespace's default. Idempotent.
// Errors: dlog.ErrInvalidName, dlog.ErrInvalidArgument (negative),
// dlog.ErrLogNotFound, dlog.ErrNamespaceNotFound (definite).
func (c *Client) SetRetention(ctx context.Context, log string, retention time.Duration) error {
	if err := checkLog(log); err != nil {
		return err
	}
	if retention < 0 {
		return fmt.Errorf("%w: negative retention %v", dlog.ErrInvalidArgument, retention)
	}
	_, err := c.call(ctx, c.logKey(log), routeAny, true, func(ctx context.Context, s *stubs) error {
		_, err := s.log.SetRetention(ctx, connect.NewRequest(&dlogpb.SetRetentionRequest{Log: c.ref(log), RetentionMs: retention.Milliseconds()}))
		return err
	})
	return err
}

// DeleteLog deletes a log with its data. The proxy owning it releases it
// first; with force an embedded writer that owns it is fenced. Errors:
// dlog.ErrLogNotFound, dlog.ErrWriterActive (definite).
func (c *Client) DeleteLog(ctx context.Context, log string, force bool) error {
	if err := checkLog(log); err != nil {
		return err
	}
	_, err := c.call(ctx, c.logKey(log), routeOwner, false, func(ctx context.Context, s *stubs) error {
		_, err := s.log.DeleteLog(ctx, connect.NewRequest(&dlogpb.DeleteLogRequest{Log: c.ref(log), Force: force}))
		return err
	})
	c.forgetOwner(c.logKey(log), "")
	return err
}

// ListLogs returns one page of up to limit (0: 1000) log names starting
// with prefix, after pageToken ("" for the first page), and the token of
// the next page ("" when there is none).
func (c *Client) ListLogs(ctx context.Context, prefix, pageToken string, limit int) ([]string, string, error) {
	var out *dlogpb.ListLogsResponse
	_, err := c.call(ctx, "", routeAny, true, func(ctx context.Context, s *stubs) error {
		r, err := s.log.ListLogs(ctx, connect.NewRequest(&dlogpb.ListLogsRequest{Namespace: c.ns, Prefix: prefix, PageToken: pageToken, Limit: int32(limit)}))
		if err == nil {
			out = r.Msg
		}
		return err
	})
	if err != nil {
		return nil, "", err
	}
	return out.GetLogs(), out.GetNextPageToken(), nil
}

// LogInfo describes a log (GetLogInfo).
type LogInfo struct {
	FirstDLSN, LastDLSN dlog.DLSN // InvalidDLSN when the log has no record
	LastTxID            int64
	RecordCount         int64
	TruncatedTo         dlog.DLSN // InvalidDLSN: nothing truncated
	Segments            int
	Owner               string // owning proxy's address, "" when none
	EndOfStream         bool
	Created             time.Time
	Retention           time.Duration
}

func parseOptDLSN(s string) (dlog.DLSN, error) {
	if s == "" {
		return dlog.InvalidDLSN, nil
	}
	d, err := dlog.ParseDLSN(s)
	if err != nil {
		return dlog.InvalidDLSN, dlog.Indeterminate(fmt.Errorf("proxy answered a bad DLSN: %w", err))
	}
	return d, nil
}

// LogInfo returns what is known about a log.
func (c *Client) LogInfo(ctx context.Context, log string) (LogInfo, error) {
	if err := checkLog(log); err != nil {
		return LogInfo{}, err
	}
	var m *dlogpb.GetLogInfoResponse
	_, err := c.call(ctx, c.logKey(log), routeAny, true, func(ctx context.Context, s *stubs) error {
		r, err := s.log.GetLogInfo(ctx, connect.NewRequest(&dlogpb.GetLogInfoRequest{Log: c.ref(log)}))
		if err == nil {
			m = r.Msg
		}
		return err
	})
	if err != nil {
		return LogInfo{}, err
	}
	info := LogInfo{LastTxID: m.GetLastTxid(), RecordCount: m.GetRecordCount(), Segments: int(m.GetSegments()), Owner: m.GetOwner(),
		EndOfStream: m.GetEndOfStream(), Created: time.UnixMilli(m.GetCreatedUnixMs()), Retention: time.Duration(m.GetRetentionMs()) * time.Millisecond}
	for _, f := range []struct {
		dst *dlog.DLSN
		s   string
	}{{&info.FirstDLSN, m.GetFirstDlsn()}, {&info.LastDLSN, m.GetLastDlsn()}, {&info.TruncatedTo, m.GetTruncatedTo()}} {
		if *f.dst, err = parseOptDLSN(f.s); err != nil {
			return LogInfo{}, err
		}
	}
	return info, nil
}

// Truncate deletes every record before d (asking the log's owner).
// It returns the log's truncation point afterwards.
func (c *Client) Truncate(ctx context.Context, log string, d dlog.DLSN) (dlog.DLSN, error) {
	return c.truncate(ctx, log, &dlogpb.TruncateRequest{Log: c.ref(log), To: &dlogpb.TruncateRequest_Dlsn{Dlsn: d.String()}})
}

// TruncateTxID deletes every record before the first one with txid >=
// txid.
func (c *Client) TruncateTxID(ctx context.Context, log string, txid int64) (dlog.DLSN, error) {
	return c.truncate(ctx, log, &dlogpb.TruncateRequest{Log: c.ref(log), To: &dlogpb.TruncateRequest_Txid{Txid: txid}})
}

func (c *Client) truncate(ctx context.Context, log string, req *dlogpb.TruncateRequest) (dlog.DLSN, error) {
	if err := checkLog(log); err != nil {
		return dlog.InvalidDLSN, err
	}
	var to string
	_, err := c.call(ctx, c.logKey(log), routeOwner, true, func(ctx context.Context, s *stubs) error {
		r, err := s.log.Truncate(ctx, connect.NewRequest(req))
		if err == nil {
			to = r.Msg.GetTruncatedTo()
		}
		return err
	})
	if err != nil {
		return dlog.InvalidDLSN, err
	}
	return parseOptDLSN(to)
}

// LastDLSN returns the position and txid of the log's last record
// (dlog.ErrNotFound when it has none).
func (c *Client) LastDLSN(ctx context.Context, log string) (dlog.DLSN, int64, error) {
	if err := checkLog(log); err != nil {
		return dlog.InvalidDLSN, 0, err
	}
	var m *dlogpb.GetLastDLSNResponse
	_, err := c.call(ctx, c.logKey(log), routeAny, true, func(ctx context.Context, s *stubs) error {
		r, err := s.log.GetLastDLSN(ctx, connect.NewRequest(&dlogpb.GetLastDLSNRequest{Log: c.ref(log)}))
		if err == nil {
			m = r.Msg
		}
		return err
	})
	if err != nil {
		return dlog.InvalidDLSN, 0, err
	}
	if m.GetDlsn() == "" {
		return dlog.InvalidDLSN, 0, fmt.Errorf("log %s: %w: no record", log, dlog.ErrNotFound)
	}
	d, err := parseOptDLSN(m.GetDlsn())
	return d, m.GetTxid(), err
}

// Subscription returns a subscription's stored position and when it was
// last updated (dlog.ErrNotFound for an unknown one).
func (c *Client) Subscription(ctx context.Context, log, name string) (dlog.DLSN, time.Time, error) {
	if err := checkLog(log); err != nil {
		return dlog.InvalidDLSN, time.Time{}, err
	}
	var m *dlogpb.GetSubscriptionResponse
	_, err := c.call(ctx, c.logKey(log), routeAny, true, func(ctx context.Context, s *stubs) error {
		r, err := s.log.GetSubscription(ctx, connect.NewRequest(&dlogpb.GetSubscriptionRequest{Log: c.ref(log), Name: name}))
		if err == nil {
			m = r.Msg
		}
		return err
	})
	if err != nil {
		return dlog.InvalidDLSN, time.Time{}, err
	}
	d, err := parseOptDLSN(m.GetDlsn())
	return d, time.UnixMilli(m.GetUpdatedUnixMs()), err
}

// CommitSubscription stores pos for a subscription, forward only (an
// earlier position is dlog.ErrInvalidArgument unless reset).
func (c *Client) CommitSubscription(ctx context.Context, log, name string, pos dlog.DLSN, reset bool) error {
	if err := checkLog(log); err != nil {
		return err
	}
	_, err := c.call(ctx, c.logKey(log), routeAny, true, func(ctx context.Context, s *stubs) error {
		_, err := s.log.CommitSubscription(ctx, connect.NewRequest(&dlogpb.CommitSubscriptionRequest{Log: c.ref(log), Name: name, Dlsn: pos.String(), Reset_: reset}))
		return err
	})
	return err
}

// Heartbeat makes the log's owner (taking it over if nobody owns it) make
// everything written visible to readers; it returns the owner's address.
func (c *Client) Heartbeat(ctx context.Context, log string) (string, error) {
	if err := checkLog(log); err != nil {
		return "", err
	}
	var owner string
	_, err := c.call(ctx, c.logKey(log), routeOwner, true, func(ctx context.Context, s *stubs) error {
		r, err := s.log.Heartbeat(ctx, connect.NewRequest(&dlogpb.HeartbeatRequest{Log: c.ref(log)}))
		if err == nil {
			owner = r.Msg.GetOwner()
		}
		return err
	})
	return owner, err
}

// Segment describes one segment of a log.
type Segment struct {
	LSSN, LedgerID      int64
	InProgress          bool
	FirstTxID, LastTxID int64
	LastEntryID         int64
	RecordCount         int64
	StartSequenceID     int64
	Created, Completed  time.Time
	Truncation          string // "active", "partial" or "truncated"
	EndOfStream         bool
}

// Segments lists a log's segments in lssn order.
func (c *Client) Segments(ctx context.Context, log string) ([]Segment, error) {
	if err := checkLog(log); err != nil {
		return nil, err
	}
	var m *dlogpb.ListSegmentsResponse
	_, err := c.call(ctx, c.logKey(log), routeAny, true, func(ctx context.Context, s *stubs) error {
		r, err := s.log.ListSegments(ctx, connect.NewRequest(&dlogpb.ListSegmentsRequest{Log: c.ref(log)}))
		if err == nil {
			m = r.Msg
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Segment, len(m.GetSegments()))
	for i, s := range m.GetSegments() {
		out[i] = Segment{LSSN: s.GetLssn(), LedgerID: s.GetLedgerId(), InProgress: s.GetState() == "in-progress",
			FirstTxID: s.GetFirstTxid(), LastTxID: s.GetLastTxid(), LastEntryID: s.GetLastEntryId(), RecordCount: s.GetRecordCount(),
			StartSequenceID: s.GetStartSequenceId(), Created: time.UnixMilli(s.GetCreatedUnixMs()), Truncation: s.GetTruncation(),
			EndOfStream: s.GetEndOfStream()}
		if ms := s.GetCompletedUnixMs(); ms != 0 {
			out[i].Completed = time.UnixMilli(ms)
		}
	}
	return out, nil
}
