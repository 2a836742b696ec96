#!/bin/sh
# Runs every test program of each build directory given (default: build) and prints the total
# as the last line: "N passed, N failed, N skipped". Each program prints its own such line; a
# program that crashes or prints none counts as one failure. A skip is a check that could not
# run here (each is listed under its program's "ok:" line, with the reason); with QDQ_CI=1 (as
# .ci/run sets) a check skipped for want of a tool of scripts/install-deps.sh --dev fails instead.
# Black-box tests find the server binary through QDQ_SERVER (set here per build); tests/grpc/run.sh
# (the gRPC tests, a Python client) and tests/checkpoint/run.sh run against each build too.
# Every answer the black-box tests get (the C client's and the checkpoint tests' requests) is
# logged to DIR/contract.log (QDQ_CONTRACT_LOG) and checked against docs/openapi.yaml at the end
# of each build (tests/contract/run.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
[ $# -gt 0 ] || set -- build
. tests/lib/tally.sh
# Servers that tests start side by side must not all take gRPC's default port (8081).
QDQ_GRPC_LISTEN=${QDQ_GRPC_LISTEN:-127.0.0.1:0}
export QDQ_GRPC_LISTEN
for dir in "$@"; do
    QDQ_CONTRACT_LOG=$PWD/$dir/contract.log
    export QDQ_CONTRACT_LOG
    rm -f "$QDQ_CONTRACT_LOG"
    for t in "$dir"/tests/test_*; do
        [ -x "$t" ] || continue
        out=$(QDQ_SERVER="$PWD/$dir/qdq-server" QDQ_TESTDATA="$PWD/tests" "$t" 2>&1)
        tally "$t" $? "$out"
    done
    # gRPC with a real client (Python grpcio), against this build's server.
    out=$(QDQ_SERVER="$PWD/$dir/qdq-server" sh tests/grpc/run.sh 2>&1)
    tally "$dir: tests/grpc" $? "$out"
    # Whole checkpoints, the server's and qdq's (Python: numpy, requests).
    out=$(QDQ_SERVER="$PWD/$dir/qdq-server" PYTHONPATH="$PWD/tests/contract/py" \
        sh tests/checkpoint/run.sh 2>&1)
    tally "$dir: tests/checkpoint" $? "$out"
    out=$(sh tests/contract/run.sh "$QDQ_CONTRACT_LOG" 2>&1)
    tally "$dir: contract (docs/openapi.yaml)" $? "$out"
done
unset QDQ_CONTRACT_LOG
# Deployment checks (shell scripts, each ending in "N passed, N failed, N skipped"), against the
# first build.
for t in tests/deploy/test_*.sh; do
    [ -f "$t" ] || continue
    out=$(BUILD="$1" QDQ_SERVER="$PWD/$1/qdq-server" sh "$t" 2>&1)
    tally "$t" $? "$out"
done
tally_total
