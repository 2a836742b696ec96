#!/bin/sh
# The gRPC tests (tests/grpc/test_grpc.py) with Debian's python3-grpcio: generates the Python
# messages from the tree's .proto files into a temporary directory (protoc --python_out, from
# protobuf-compiler), then runs the tests against $QDQ_SERVER (default build/qdq-server).
# The last line is "N passed, N failed".
set -u
cd "$(dirname "$0")/../.." || exit 1
SERVER=${QDQ_SERVER:-build/qdq-server}
case $SERVER in /*) ;; *) SERVER=$PWD/$SERVER ;; esac
. tests/lib/python.sh
python_or_fail "grpc, protobuf and numpy (Debian packages python3-grpcio, python3-protobuf, python3-numpy)" \
    grpc google.protobuf numpy
if ! command -v protoc >/dev/null 2>&1; then
    echo "FAIL: protoc is not installed (Debian package protobuf-compiler)"
    echo "0 passed, 1 failed"
    exit 1
fi
T=$(mktemp -d) || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 1' INT TERM
if ! protoc --python_out="$T" -Iproto proto/grpc_predict_v2.proto proto/health.proto; then
    echo "FAIL: protoc cannot compile proto/*.proto"
    echo "0 passed, 1 failed"
    exit 1
fi
QDQ_SERVER=$SERVER QDQ_TESTDATA=$PWD/tests PYTHONPATH=$T TMPDIR=$T "$PY" tests/grpc/test_grpc.py
