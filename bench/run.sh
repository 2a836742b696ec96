#!/bin/sh
# `make bench`: the core benchmark (build/bench/bench_core: the kernel against memcpy and
# TensorFlow's Eigen expression), the HTTP benchmarks (bench/http_bench.sh: the server against
# the echo server and a cJSON round trip; bench/v2_bench.sh) and gRPC against HTTP
# (bench/grpc_bench.sh), whole checkpoints through the server and qdq (bench/checkpoint_bench.sh).
# Each prints its baselines and ratios from the same
# run and the machine's core count. Benchmarks are not tests: a missed target is reported, not
# failed; a wrong answer exits non-zero.
BUILD=${1:-build}
status=0
for b in "$BUILD"/bench/bench_*; do
    [ -f "$b" ] && [ -x "$b" ] || continue
    case "$b" in *bench_cjson) continue ;; esac # run by http_bench.sh
    echo "### $b"
    "$b" || { echo "### $b exited with status $?"; status=1; }
    echo
done
echo "### bench/http_bench.sh"
sh "$(dirname "$0")/http_bench.sh" "$BUILD" || status=1
echo "### bench/v2_bench.sh"
sh "$(dirname "$0")/v2_bench.sh" "$BUILD" || status=1
echo "### bench/grpc_bench.sh"
sh "$(dirname "$0")/grpc_bench.sh" "$BUILD" || status=1
echo "### bench/checkpoint_bench.sh"
sh "$(dirname "$0")/checkpoint_bench.sh" "$BUILD" || status=1
exit $status
