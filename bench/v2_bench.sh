#!/bin/sh
# KServe v2 benchmarks, baselines in the same run (127.0.0.1 only, bounded):
#   1. v2 binary: a 64 MiB FP32 input with a binary output, with curl, against the echo server
#      moving the same bytes                                               (target ratio <= 1.3)
#   2. v2 JSON: 1M FP32 elements against the native JSON route with the same numbers
#                                                                           (target ratio <= 1.2)
# usage: sh bench/v2_bench.sh [BUILD_DIR]      environment: V2_RUNS (default 7)
set -u
cd "$(dirname "$0")/.." || exit 1
B=${1:-build}
RUNS=${V2_RUNS:-7}
SERVER="$B/qdq-server"
[ -x "$SERVER" ] || { echo "v2_bench: SKIP: no $SERVER"; exit 0; }
command -v python3 >/dev/null || { echo "v2_bench: SKIP: no python3"; exit 0; }
T=$(mktemp -d)
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT INT TERM
mkdir -p "$B/bench"
cc -O2 -pthread -o "$B/bench/echo_server" bench/echo_server.c || exit 1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$SERVER" --listen 127.0.0.1:0 --access-log off 2>"$T/srv.err" &
PIDS="$PIDS $!"
EPORT=$(free_port)
"$B/bench/echo_server" "$EPORT" &
PIDS="$PIDS $!"
for _ in $(seq 50); do grep -q "^listening on" "$T/srv.err" && break; sleep 0.1; done
QPORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$T/srv.err")
[ -n "$QPORT" ] || { echo "v2_bench: the server did not start"; cat "$T/srv.err"; exit 1; }

python3 - "$T" <<'PY'
import json, random, struct, sys
t = sys.argv[1]
n = 16 * 1024 * 1024
rnd = random.Random(7)
h = json.dumps({"inputs": [{"name": "input", "shape": [n], "datatype": "FP32",
                            "parameters": {"binary_data_size": n * 4}}],
                "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}).encode()
block = struct.pack("<4096f", *[rnd.uniform(-3, 3) for _ in range(4096)])
with open(t + "/v2.bin", "wb") as f:
    f.write(h)
    for _ in range(n // 4096):
        f.write(block)
open(t + "/v2.hlen", "w").write(str(len(h)))
vals = [round(rnd.uniform(-3, 3), 6) for _ in range(1000000)]
open(t + "/v2.json", "w").write(json.dumps({"inputs": [{"name": "input", "shape": [1000, 1000],
                                                         "datatype": "FP32", "data": vals}]}))
open(t + "/native.json", "w").write(json.dumps({"input": {"dtype": "float32",
                                                          "shape": [1000, 1000], "data": vals}}))
PY
HL=$(cat "$T/v2.hlen")
V2=http://127.0.0.1:$QPORT/v2/models/quantize_and_dequantize_v2/infer
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
t_v2bin() { curl -s -o /dev/null -w '%{time_total}\n' --data-binary @"$T/v2.bin" -H "Inference-Header-Content-Length: $HL" "$V2"; }
t_echo() { curl -s -o /dev/null -w '%{time_total}\n' --data-binary @"$T/v2.bin" "http://127.0.0.1:$EPORT/"; }
t_v2json() { curl -s -o /dev/null -w '%{time_total}\n' --data-binary @"$T/v2.json" "$V2"; }
t_native() { curl -s -o /dev/null -w '%{time_total}\n' -H 'Content-Type: application/json' --data-binary @"$T/native.json" "http://127.0.0.1:$QPORT/quantize-dequantize"; }
t_v2bin >/dev/null; t_echo >/dev/null; t_v2json >/dev/null; t_native >/dev/null # warm-up
: > "$T/a"; : > "$T/b"; : > "$T/c"; : > "$T/d"
for _ in $(seq "$RUNS"); do
    t_v2bin >> "$T/a"; t_echo >> "$T/b"; t_v2json >> "$T/c"; t_native >> "$T/d"
done
A=$(median < "$T/a"); E=$(median < "$T/b"); C=$(median < "$T/c"); D=$(median < "$T/d")
echo "v2_bench: $(nproc) cores, median of $RUNS"
awk -v a="$A" -v e="$E" 'BEGIN { r = a / e; printf "v2 binary 64 MiB FP32:  qdq %.4f s  echo %.4f s  ratio %.3f (<= 1.3) %s\n", a, e, r, r <= 1.3 ? "PASS" : "MISS" }'
awk -v c="$C" -v d="$D" 'BEGIN { r = c / d; printf "v2 JSON 1M FP32:        v2 %.4f s  native JSON %.4f s  ratio %.3f (<= 1.2) %s\n", c, d, r, r <= 1.2 ? "PASS" : "MISS" }'
