//go:build tools

// Package tools pins the code generators used by scripts/genproto.sh. It is a
// separate module so the generators' dependencies stay out of dlog's go.mod.
package tools

import (
	_ "connectrpc.com/connect/cmd/protoc-gen-connect-go"
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
)
