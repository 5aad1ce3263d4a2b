package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/dlog-io/dlog"
	"github.com/dlog-io/dlog/api/dlogpb"
	"github.com/dlog-io/dlog/api/dlogpb/dlogpbconnect"
	"github.com/dlog-io/dlog/client"
	"github.com/dlog-io/dlog/internal/proxy/status"
)

// TestBadInput: oversized frames, invalid names, malformed requests and
// too many streams on one connection each get a clear error, and the
// proxy keeps serving everyone else.
func TestBadInput(t *testing.T) {
	e := newEnv(t, 3, "memory:")
	p := e.proxy(func(c *Config) {
		c.MaxMessageBytes = 2 << 20
		c.MaxConcurrentStreams = 4
		c.MaxReaders = 8
	})
	addr := p.AdvertiseAddr()
	c := newClient(t, []string{addr}, func(c *client.Config) { c.MaxMessageBytes = 64 << 20 })
	ctx := t.Context()
	if err := c.CreateLog(ctx, "victim", 0); err != nil {
		t.Fatal(err)
	}
	serving := func(what string) {
		t.Helper()
		if _, err := c.Write(ctx, "victim", dlog.Record{Payload: []byte("still here")}); err != nil {
			t.Fatalf("after %s the proxy does not serve: %v", what, err)
		}
	}
	serving("start")

	t.Run("oversized frame", func(t *testing.T) {
		_, err := c.Write(ctx, "victim", dlog.Record{Payload: bytes.Repeat([]byte{'a'}, 8<<20)})
		if !errors.Is(err, dlog.ErrRecordTooLarge) || !dlog.IsDefinite(err) {
			t.Fatalf("8 MiB message: %v (definite %v)", err, dlog.IsDefinite(err))
		}
		serving("an oversized frame")
	})
	t.Run("oversized record", func(t *testing.T) {
		_, err := c.Write(ctx, "victim", dlog.Record{Payload: bytes.Repeat([]byte{'a'}, 1<<20+1)})
		if !errors.Is(err, dlog.ErrRecordTooLarge) || !dlog.IsDefinite(err) {
			t.Fatalf("record over 1 MiB: %v", err)
		}
	})
	t.Run("oversized HTTP body", func(t *testing.T) {
		// 64 MiB announced, streamed: the proxy cuts it off instead of
		// reading it all.
		body := io.LimitReader(zeros{}, 64<<20)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/dlog.api.v1.LogService/Write", body)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 || !strings.Contains(string(b), "resource_exhausted") {
				t.Fatalf("64 MiB body: %d %s", resp.StatusCode, b)
			}
		}
		serving("an oversized body")
	})
	t.Run("invalid names", func(t *testing.T) {
		raw := dlogpbconnect.NewLogServiceClient(http.DefaultClient, "http://"+addr)
		for _, ref := range []*dlogpb.LogRef{{Log: ""}, {Log: "a/b"}, {Log: ".."}, {Log: "x\x00y"}, {Log: strings.Repeat("n", 300)}, {Namespace: "ns/../x", Log: "ok"}} {
			_, err := raw.Write(ctx, connect.NewRequest(&dlogpb.WriteRequest{Log: ref, Record: &dlogpb.Record{}}))
			got := clientErr(err)
			if !errors.Is(got, dlog.ErrInvalidName) || !dlog.IsDefinite(got) {
				t.Fatalf("write to %q/%q: %v", ref.GetNamespace(), ref.GetLog(), got)
			}
		}
		serving("invalid names")
	})
	t.Run("malformed requests", func(t *testing.T) {
		raw := dlogpbconnect.NewLogServiceClient(http.DefaultClient, "http://"+addr)
		cases := []*dlogpb.WriteRequest{
			{Log: &dlogpb.LogRef{Log: "victim"}},                                                 // no record
			{Log: &dlogpb.LogRef{Log: "victim"}, Record: &dlogpb.Record{}, Sequence: 3},          // sequence without producer
			{Log: &dlogpb.LogRef{Log: "victim"}, Record: &dlogpb.Record{}, ProducerId: "bad id"}, // space in producer id
			{Log: &dlogpb.LogRef{Log: "victim"}, Record: &dlogpb.Record{Txid: ptr(int64(-5))}},   // reserved txid
			{Log: &dlogpb.LogRef{Log: "victim"}, Record: &dlogpb.Record{}, ProducerId: "p", Sequence: -1},
		}
		for i, m := range cases {
			_, err := raw.Write(ctx, connect.NewRequest(m))
			got := clientErr(err)
			if !errors.Is(got, dlog.ErrInvalidArgument) || !dlog.IsDefinite(got) {
				t.Fatalf("case %d: %v", i, got)
			}
		}
		st, err := raw.Read(ctx, connect.NewRequest(&dlogpb.ReadRequest{Log: &dlogpb.LogRef{Log: "victim"}}))
		if err == nil {
			for st.Receive() {
			}
			err = st.Err()
			st.Close()
		}
		if got := clientErr(err); !errors.Is(got, dlog.ErrInvalidArgument) {
			t.Fatalf("read without a start: %v", got)
		}
		serving("malformed requests")
	})
	t.Run("too many streams on one connection", func(t *testing.T) {
		refused := openStreams(t, addr, 12)
		if refused == 0 {
			t.Fatal("12 concurrent streams on a connection limited to 4: none refused")
		}
		t.Logf("%d of 12 streams refused", refused)
		serving("too many streams")
	})
	t.Run("too many readers", func(t *testing.T) {
		var rs []*client.Reader
		defer func() {
			for _, r := range rs {
				r.Close()
			}
		}()
		for range 8 {
			r, err := c.OpenReader(ctx, "victim", client.AtEnd(), client.ReadOptions{Follow: true})
			if err != nil {
				t.Fatal(err)
			}
			rs = append(rs, r)
		}
		waitFor(t, time.Minute, "8 readers", func() bool { return p.readers.Load() == 8 })
		raw := dlogpbconnect.NewLogServiceClient(http.DefaultClient, "http://"+addr)
		st, err := raw.Read(ctx, connect.NewRequest(&dlogpb.ReadRequest{Log: &dlogpb.LogRef{Log: "victim"}, From: &dlogpb.ReadRequest_Start{Start: true}}))
		if err == nil {
			for st.Receive() {
			}
			err = st.Err()
			st.Close()
		}
		if got := clientErr(err); !errors.Is(got, dlog.ErrOverCapacity) || !dlog.IsDefinite(got) {
			t.Fatalf("ninth reader: %v", got)
		}
		serving("too many readers")
	})
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

func ptr[T any](v T) *T { return &v }

// clientErr maps a raw Connect error as the Go client does.
func clientErr(err error) error {
	if err == nil {
		return nil
	}
	return status.FromConnect(err, "")
}

// openStreams opens n concurrent requests on ONE HTTP/2 connection,
// ignoring the server's stream limit as an abusive client would, and
// returns how many the server refused with RST_STREAM.
func openStreams(t *testing.T, addr string, n int) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	// Wait for the server's settings and acknowledge them, so that the
	// limit is in force.
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			if err := fr.WriteSettingsAck(); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i := range n {
		hb.Reset()
		for _, h := range [][2]string{
			{":method", "POST"}, {":scheme", "http"}, {":authority", addr},
			{":path", "/dlog.api.v1.LogService/Read"}, {"content-type", "application/grpc"}, {"te", "trailers"},
		} {
			enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
		}
		// No END_STREAM: each request stays open, waiting for its body.
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			t.Fatal(err)
		}
	}
	refused := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			break
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			if f.ErrCode == http2.ErrCodeRefusedStream || f.ErrCode == http2.ErrCodeProtocol {
				refused++
			}
		case *http2.GoAwayFrame:
			return refused + 1
		}
		if refused >= n-4 {
			break
		}
	}
	return refused
}
