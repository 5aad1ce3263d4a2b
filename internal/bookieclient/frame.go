package bookieclient

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// frame is an encoded message, handed to gRPC as is: callers encode their
// requests on their own goroutines (so the request is theirs again when Go
// returns), and the sender only concatenates.
type frame struct{ data mem.BufferSlice }

// newFrame copies b into a buffer that gRPC frees once it is written (b
// is reused by the sender; gRPC may write after SendMsg returns).
func newFrame(b []byte) *frame {
	if mem.IsBelowBufferPoolingThreshold(len(b)) {
		return &frame{mem.BufferSlice{mem.SliceBuffer(append([]byte(nil), b...))}}
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(len(b))
	copy(*buf, b)
	return &frame{mem.BufferSlice{mem.NewBuffer(buf, pool)}}
}

// frameCodec is gRPC's proto codec that also sends frames and decodes
// Responses by hand. It keeps the
// name "proto", so the bookie decodes with its ordinary codec.
type frameCodec struct{}

var protoCodec = encoding.GetCodecV2(proto.Name)

func (frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*frame); ok {
		return f.data, nil
	}
	return protoCodec.Marshal(v)
}

// Unmarshal decodes Responses by hand (bookiepb.DecodeResponses), the
// rest with proto.
func (frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*bookiepb.Responses)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	if len(data) == 1 {
		// Nothing decoded aliases the input: no copy needed.
		return bookiepb.DecodeResponses(data[0].ReadOnlyData(), m)
	}
	return bookiepb.DecodeResponses(data.Materialize(), m)
}

func (frameCodec) Name() string { return proto.Name }
