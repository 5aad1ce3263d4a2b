#!/usr/bin/env bash
# Regenerates every *.pb.go from proto/. Needs protoc (Debian: apt-get install
# -y protobuf-compiler); the Go plugins are built from tools/go.mod at pinned
# versions.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.bin"
mkdir -p "$bin"
(cd "$root/tools" && GOBIN="$bin" go install \
  google.golang.org/protobuf/cmd/protoc-gen-go \
  google.golang.org/grpc/cmd/protoc-gen-go-grpc \
  connectrpc.com/connect/cmd/protoc-gen-connect-go)
cd "$root/proto"
export PATH="$bin:$PATH"
mod=github.com/dlog-io/dlog
for f in $(find . -name '*.proto' | sort); do
  protoc -I . \
    --go_out="$root" --go_opt=module=$mod \
    --go-grpc_out="$root" --go-grpc_opt=module=$mod \
    "$f"
done
# The public service API also gets Connect handlers (gRPC + HTTP/JSON).
for f in $(find . -path '*/api/*' -name '*.proto' | sort); do
  protoc -I . --connect-go_out="$root" --connect-go_opt=module=$mod "$f"
done
