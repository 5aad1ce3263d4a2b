package bookie

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/dlog-io/dlog/internal/pb/bookiepb"
)

// wireCodec is gRPC's proto codec with the batches of the data path
// encoded and decoded by hand (bookiepb.DecodeRequests, AppendResponses):
// one allocation per add instead of six, no reflection. The bytes on the
// wire are the same.
type wireCodec struct{}

var protoCodec = encoding.GetCodecV2(proto.Name)

func (wireCodec) Name() string { return proto.Name }

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*bookiepb.Responses)
	if !ok {
		return protoCodec.Marshal(v)
	}
	size := 0
	for _, r := range m.Responses {
		size += responseBytes(r)
	}
	b, err := bookiepb.AppendResponses(make([]byte, 0, size), m.Responses)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*bookiepb.Requests)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	// A private copy: decoded adds alias it (their payloads wait in it
	// for the journal callback), and gRPC reuses data's buffers.
	return bookiepb.DecodeRequests(data.Materialize(), m)
}
