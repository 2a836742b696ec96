#!/bin/sh
# gRPC benchmarks, baselines in the same run and from the same server process (127.0.0.1 only):
#   1. ModelInfer with a 64 MiB FP32 tensor in raw_input_contents against the HTTP v2 binary
#      route with the same tensor (all seven outputs, binary, on both). One client for both,
#      h2load (nghttp2-client), sending a prebuilt request: HTTP/2 with gRPC framing, and
#      HTTP/1.1 (--h1) for the HTTP route. One request at a time, the two alternating; the
#      median time of each, and the server's CPU time per request (from /proc: steadier than
#      wall time on a shared machine).                                     (target ratio <= 1.3)
#   2. 4 KiB (1024 FP32) ModelInfer with h2load -t2 -c64 (one stream per connection) against
#      the HTTP raw route under wrk -t2 -c64 (bench/wrk_raw.lua, the same bytes): requests/s.
#                                                                           (target ratio >= 0.7)
# Each prebuilt gRPC request is first sent once with Debian's python3-grpcio, and its answer
# checked (status OK, the outputs' sizes), so that h2load's numbers count real answers; h2load
# sees HTTP status 200 for every gRPC call, so its requests must all succeed at the HTTP level
# too. Benchmarks are not tests: a missed target is reported, not failed; a wrong answer exits
# non-zero.
# usage: sh bench/grpc_bench.sh [BUILD_DIR]
# environment: GRPC_BIG_RUNS (default 7), GRPC_SECONDS (length of each 4 KiB run, default 10)
set -u
cd "$(dirname "$0")/.." || exit 1
B=${1:-build}
RUNS=${GRPC_BIG_RUNS:-7}
SECS=${GRPC_SECONDS:-10}
SERVER="$B/qdq-server"
[ -x "$SERVER" ] || { echo "grpc_bench: SKIP: no $SERVER"; exit 0; }
for tool in h2load wrk protoc; do
    command -v $tool >/dev/null 2>&1 || { echo "grpc_bench: SKIP: no $tool"; exit 0; }
done
. tests/lib/python.sh
PY=$(python_with grpc google.protobuf numpy) || { echo "grpc_bench: SKIP: no python3 with grpcio, protobuf and numpy"; exit 0; }
T=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

protoc --python_out="$T" -Iproto proto/grpc_predict_v2.proto proto/health.proto || exit 1
"$SERVER" --listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 --access-log off 2>"$T/srv.err" &
PID=$!
for _ in $(seq 100); do grep -q "^grpc serving on" "$T/srv.err" && break; sleep 0.1; done
HPORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$T/srv.err")
GPORT=$(sed -n 's/^grpc serving on .*:\([0-9]*\)$/\1/p' "$T/srv.err")
[ -n "$HPORT" ] && [ -n "$GPORT" ] || { echo "grpc_bench: the server did not start"; cat "$T/srv.err"; exit 1; }

# The requests, and one checked call of each gRPC one.
PYTHONPATH=$T "$PY" - "$T" "$GPORT" <<'PY' || { echo "grpc_bench: a prebuilt request is not answered right"; exit 1; }
import json, struct, sys
import grpc
import numpy as np
import grpc_predict_v2_pb2 as pb
t, port = sys.argv[1], sys.argv[2]

def grpc_request(n, seed):
    v = np.random.default_rng(seed).uniform(-3, 3, n).astype("<f4")
    r = pb.ModelInferRequest(model_name="quantize_and_dequantize_v2")
    r.inputs.add(name="input", datatype="FP32", shape=[n])
    r.raw_input_contents.append(v.tobytes())
    return r, v

ch = grpc.insecure_channel("127.0.0.1:" + port, options=[
    ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
call = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                      request_serializer=lambda m: m.SerializeToString(),
                      response_deserializer=pb.ModelInferResponse.FromString)
for name, n in (("big", 16 << 20), ("small", 1024)):
    r, v = grpc_request(n, 7)
    msg = r.SerializeToString()
    # A gRPC message on the wire: flag 0 (not compressed), 4-byte big-endian length, message.
    open(f"{t}/grpc_{name}.bin", "wb").write(b"\0" + struct.pack(">I", len(msg)) + msg)
    resp = call(r, timeout=120)
    sizes = [len(b) for b in resp.raw_output_contents]
    assert [o.name for o in resp.outputs][0] == "output" and sizes == [4 * n] + [4] * 6, sizes
    if name == "big":
        h = json.dumps({"inputs": [{"name": "input", "shape": [n], "datatype": "FP32",
                                    "parameters": {"binary_data_size": 4 * n}}],
                        "parameters": {"binary_data_output": True}}).encode()
        open(f"{t}/http_big.bin", "wb").write(h + v.tobytes())
        open(f"{t}/http_big.hlen", "w").write(str(len(h)))
    else:
        open(f"{t}/raw_small.bin", "wb").write(v.tobytes())
PY
HL=$(cat "$T/http_big.hlen")
GURL=http://127.0.0.1:$GPORT/inference.GRPCInferenceService/ModelInfer
HURL=http://127.0.0.1:$HPORT/v2/models/quantize_and_dequantize_v2/infer

# One request with h2load; prints its time in ms after checking that it succeeded.
h2_one() { # OUTFILE h2load-arguments...
    out=$1
    shift
    h2load -n 1 -c 1 -m 1 "$@" >"$out" 2>&1
    grep -q "1 succeeded, 0 failed, 0 errored" "$out" && grep -q " 1 2xx" "$out" || {
        echo "grpc_bench: h2load request failed:" >&2; cat "$out" >&2; return 1; }
    awk '/^time for request:/ { v = $5; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
         print (u == "us" ? v / 1000 : u == "s" ? v * 1000 : v) }' "$out"
}
g_big() { h2_one "$T/g.out" -d "$T/grpc_big.bin" -H 'content-type: application/grpc' -H 'te: trailers' "$GURL"; }
h_big() { h2_one "$T/h.out" --h1 -d "$T/http_big.bin" -H "Inference-Header-Content-Length: $HL" "$HURL"; }
cpu() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; } # user + system, in clock ticks
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
g_big >/dev/null && h_big >/dev/null && g_big >/dev/null && h_big >/dev/null || exit 1 # warm-up
: >"$T/gt"; : >"$T/ht"; GC=0; HC=0
for _ in $(seq "$RUNS"); do
    c0=$(cpu); g_big >>"$T/gt" || exit 1
    c1=$(cpu); h_big >>"$T/ht" || exit 1
    c2=$(cpu); GC=$((GC + c1 - c0)); HC=$((HC + c2 - c1))
done
G=$(median <"$T/gt"); H=$(median <"$T/ht"); TCK=$(getconf CLK_TCK)

h2load -t 2 -c 64 -m 1 -n 20000 -d "$T/grpc_small.bin" -H 'content-type: application/grpc' \
    -H 'te: trailers' "$GURL" >/dev/null 2>&1 # warm-up
c0=$(cpu)
h2load -t 2 -c 64 -m 1 -D "$SECS" -d "$T/grpc_small.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' "$GURL" >"$T/gs.out" 2>&1
grep -q " 0 failed, 0 errored" "$T/gs.out" || { echo "grpc_bench: h2load 4 KiB requests failed:"; cat "$T/gs.out"; exit 1; }
GRPS=$(awk '/^finished in/ { gsub(/,/, ""); print $4 }' "$T/gs.out")
GN=$(sed -n 's/^requests: \([0-9]*\) total.*/\1/p' "$T/gs.out")
c1=$(cpu)
WRK_BODY_FILE=$T/raw_small.bin wrk -t2 -c64 -d"${SECS}s" --timeout 5s -s bench/wrk_raw.lua \
    "http://127.0.0.1:$HPORT/quantize-dequantize" >"$T/w.out" 2>&1
c2=$(cpu)
WRPS=$(sed -n 's/^WRK_RESULT rps=\([0-9.]*\) .*errors=0 status_errors=0$/\1/p' "$T/w.out")
WN=$(sed -n 's/^WRK_RESULT rps=[0-9.]* requests=\([0-9]*\) .*/\1/p' "$T/w.out")
[ -n "$WRPS" ] || { echo "grpc_bench: wrk failed:"; cat "$T/w.out"; exit 1; }

echo "grpc_bench: $(nproc) cores; 64 MiB: median of $RUNS alternating; 4 KiB: ${SECS} s each"
awk -v g="$G" -v h="$H" 'BEGIN { r = g / h; printf "grpc 64 MiB FP32 ModelInfer  %.1f ms  HTTP v2 binary %.1f ms (h2load --h1)  ratio %.3f (<= 1.3) %s\n", g, h, r, (r <= 1.3 ? "PASS" : "MISS") }'
awk -v g="$GC" -v h="$HC" -v n="$RUNS" -v t="$TCK" 'BEGIN { printf "  server CPU per 64 MiB request: grpc %.0f ms  HTTP %.0f ms  ratio %.3f\n", g * 1000 / t / n, h * 1000 / t / n, (h ? g / h : 0) }'
awk -v g="$GRPS" -v w="$WRPS" 'BEGIN { r = g / w; printf "grpc 4 KiB ModelInfer (h2load -c64)  %.0f r/s  HTTP raw (wrk -c64) %.0f r/s  ratio %.3f (>= 0.7) %s\n", g, w, r, (r >= 0.7 ? "PASS" : "MISS") }'
awk -v g="$((c1 - c0))" -v gn="$GN" -v w="$((c2 - c1))" -v wn="$WN" -v t="$TCK" 'BEGIN { printf "  server CPU per 4 KiB request: grpc %.1f us  HTTP raw %.1f us\n", g * 1e6 / t / gn, w * 1e6 / t / wn }'
