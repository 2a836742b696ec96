#!/bin/sh
# Whole-checkpoint benchmarks, every baseline measured in the same run (127.0.0.1 only):
#
#   1. server   a 1 GiB checkpoint (largest tensor 128 MiB; BF16 and F32 weights, norms
#               excluded) with `curl -X POST -T file -o out` through qdq-server, against the same
#               body through the echo server                                  (target <= 1.2)
#               peak RSS above idle                       (target <= largest tensor + 64 MiB)
#   2. report   the same with Accept: application/json (no tensor data back)  (target <= 0.7)
#   3. qdq      qdq on the file against cp of the file, both from a warm page cache
#                                                                             (target <= 1.3)
#               peak RSS                                  (target <= largest tensor + 64 MiB)
#   4. numpy    the same per-tensor fake quantization written with NumPy over the same file:
#               the user's alternative, its time against qdq's                  (information)
#   5. stats    a 64 MiB raw float32 request with stats=true against without  (target <= 1.1)
#
# usage: sh bench/checkpoint_bench.sh [BUILD_DIR]   environment: CKPT_RUNS (default 3)
set -u
cd "$(dirname "$0")/.." || exit 1
B=${1:-build}
RUNS=${CKPT_RUNS:-3}
SERVER="$B/qdq-server"
QDQ="$B/qdq"
[ -x "$SERVER" ] && [ -x "$QDQ" ] || { echo "checkpoint_bench: SKIP: no $SERVER or $QDQ"; exit 0; }
. tests/lib/python.sh
PY=$(python_with numpy) || { echo "checkpoint_bench: SKIP: no python3 with numpy"; exit 0; }
T=$(mktemp -d "${TMPDIR:-/tmp}/qdq-ckpt-bench.XXXXXX") || exit 1
PIDS=
trap 'for p in $PIDS; do kill $p 2>/dev/null; done; rm -rf "$T"' EXIT INT TERM
mkdir -p "$B/bench"
cc -O2 -pthread -o "$B/bench/echo_server" bench/echo_server.c || exit 1

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "nan" }'; }
verdict() { awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { print ((op == "<=") ? v <= l : v >= l) ? "PASS" : "MISS" }'; }
now() { date +%s.%N; }
kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "checkpoint_bench: $(nproc) cores, build dir $B, $RUNS runs each"
"$PY" - "$T" <<'PY'
import json, struct, sys
import numpy as np
t = sys.argv[1]
rng = np.random.default_rng(7)
def bf16(a):
    u = a.view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
tensors = [("model.embed_tokens.weight", "BF16", (32768, 2048))]
for i in range(16):
    for p in ("q", "k", "v", "o"):
        tensors.append(("model.layers.%d.self_attn.%s_proj.weight" % (i, p), "BF16", (2048, 2048)))
    tensors.append(("model.layers.%d.mlp.down_proj.weight" % i, "F32", (2048, 2048)))
    tensors.append(("model.layers.%d.input_layernorm.weight" % i, "F32", (2048,)))
    tensors.append(("model.layers.%d.post_attention_layernorm.weight" % i, "F32", (2048,)))
tensors.append(("lm_head.weight", "F32", (16384, 2048)))
hdr, off = {"__metadata__": {"format": "pt"}}, 0
size = {"BF16": 2, "F32": 4}
for name, dt, shape in tensors:
    n = int(np.prod(shape)) * size[dt]
    hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + n]}
    off += n
h = json.dumps(hdr, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
block = (rng.standard_normal(1 << 22) * 0.02).astype(np.float32)  # 16 MiB, repeated
with open(t + "/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for name, dt, shape in tensors:
        n = int(np.prod(shape))
        for i in range(0, n, block.size):
            v = block[: min(block.size, n - i)] * (1 + (i // block.size) % 7)
            f.write(bf16(v).tobytes() if dt == "BF16" else v.tobytes())
print("generated %.0f MiB, %d tensors, largest 128 MiB" % ((8 + len(h) + off) / 2**20, len(tensors)))
PY
F="$T/model.safetensors"
BYTES=$(stat -c %s "$F")
LARGEST=$((128 << 20))
cat "$F" >/dev/null # warm

# ---- 1, 2: the server against the echo server ----
EPORT=$(free_port)
"$B/bench/echo_server" "$EPORT" &
PIDS="$PIDS $!"
"$SERVER" --listen 127.0.0.1:0 --access-log off --grpc-listen none --spool-dir "$T" \
    --max-memory 4G 2>"$T/srv.err" &
QPID=$!
PIDS="$PIDS $QPID"
for _ in $(seq 100); do grep -q "^listening on" "$T/srv.err" && break; sleep 0.1; done
QPORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$T/srv.err")
[ -n "$QPORT" ] || { echo "checkpoint_bench: the server did not start"; cat "$T/srv.err"; exit 1; }
sleep 0.3
IDLE=$(kb "$QPID" VmRSS)
echo 5 >"/proc/$QPID/clear_refs" 2>/dev/null
Q="http://127.0.0.1:$QPORT/quantize-dequantize?num_bits=8&exclude=*norm*"
post() { # URL OUT [HEADER...]: prints seconds; fails unless 200
    url=$1 out=$2
    shift 2
    code=$(curl -s -X POST -T "$F" -H 'Expect:' -o "$out" -w '%{http_code}' "$@" "$url") || return 1
    [ "$code" = 200 ] || { echo "error: $url answered $code: $(head -c 300 "$out")" >&2; return 1; }
}
timed() { t0=$(now); "$@" || return 1; t1=$(now); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f\n", b - a }'; }
: >"$T/t_echo"; : >"$T/t_qdq"; : >"$T/t_rep"
CT='Content-Type: application/x-safetensors'
post "$Q" "$T/out.safetensors" -H "$CT" || exit 1 # warm-up, and the answer to check
# Each answer goes to a new file (the last one removed and written back first, outside the
# time): the client's writes cost the same for both servers.
clean() { rm -f "$1"; sync; }
r=0
while [ $r -lt "$RUNS" ]; do
    clean "$T/echo.out"
    timed post "http://127.0.0.1:$EPORT/" "$T/echo.out" >>"$T/t_echo" || exit 1
    clean "$T/out.safetensors"
    timed post "$Q" "$T/out.safetensors" -H "$CT" >>"$T/t_qdq" || exit 1
    timed post "$Q" "$T/report.json" -H "$CT" -H 'Accept: application/json' >>"$T/t_rep" || exit 1
    r=$((r + 1))
done
PEAK=$(kb "$QPID" VmHWM)
cmp -s "$T/echo.out" "$F" || { echo "error: the echo server's answer differs"; exit 1; }
me=$(median <"$T/t_echo"); mq=$(median <"$T/t_qdq"); mr=$(median <"$T/t_rep")
ra=$(ratio "$mq" "$me"); rr=$(ratio "$mr" "$me")
above=$(( (PEAK - IDLE) * 1024 ))
lim=$((LARGEST + (64 << 20)))
echo ""
echo "== server: $((BYTES >> 20)) MiB checkpoint, curl -T, $RUNS runs each, alternating =="
echo "echo server:      median $me s"
echo "qdq-server:       median $mq s   ratio $ra (target <= 1.2) $(verdict "$ra" "<=" 1.2)"
echo "report only:      median $mr s   ratio $rr (target <= 0.7) $(verdict "$rr" "<=" 0.7)"
echo "peak RSS above idle: $((above >> 20)) MiB (largest tensor + 64 MiB = $((lim >> 20)) MiB) $(verdict "$above" "<=" "$lim")"
kill "$QPID" 2>/dev/null

# ---- 3, 4: qdq against cp, and NumPy ----
: >"$T/t_cp"; : >"$T/t_cli"; : >"$T/t_np"
"$QDQ" --num-bits 8 --exclude '*norm*' --quiet "$F" "$T/cli.safetensors" || exit 1
cmp -s "$T/cli.safetensors" "$T/out.safetensors" || { echo "error: qdq's output differs from the server's"; exit 1; }
cat > "$T/fake_quant.py" <<'PY'
import json, struct, sys
import numpy as np
src, dst = sys.argv[1], sys.argv[2]
raw = np.memmap(src, np.uint8, mode="r")
n = struct.unpack("<Q", raw[:8].tobytes())[0]
hdr = json.loads(raw[8:8 + n].tobytes())
data = raw[8 + n:]
out = open(dst, "wb")
out.write(raw[:8 + n].tobytes())
for name, e in sorted(((k, v) for k, v in hdr.items() if k != "__metadata__"),
                      key=lambda kv: kv[1]["data_offsets"][0]):
    b, end = e["data_offsets"]
    chunk = data[b:end]
    if e["dtype"] not in ("F32", "BF16") or "norm" in name:
        out.write(chunk.tobytes())
        continue
    if e["dtype"] == "BF16":
        x = (chunk.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        x = chunk.view(np.float32)
    lo, hi = float(x.min()), float(x.max())
    scale = 127.0 / max(-lo, hi) if max(-lo, hi) > 0 else 1.0
    y = (np.clip(np.rint(x * scale), -128, 127) / scale).astype(np.float32)
    if e["dtype"] == "BF16":
        u = y.view(np.uint32).astype(np.uint64)
        y = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    out.write(y.tobytes())
out.close()
PY
# Both write a new file each time (qdq's output is made under another name and renamed): the
# last run's output is removed and written back first, outside the time.
fresh() { rm -f "$T/cp.out" "$T/cli.safetensors" "$T/np.out"; sync; }
r=0
while [ $r -lt "$RUNS" ]; do
    fresh
    timed cp "$F" "$T/cp.out" >>"$T/t_cp" || exit 1
    fresh
    /usr/bin/time -f %M -o "$T/cli.rss" sh -c "t0=\$(date +%s.%N); '$QDQ' --num-bits 8 --exclude '*norm*' --quiet '$F' '$T/cli.safetensors' || exit 1; t1=\$(date +%s.%N); awk -v a=\$t0 -v b=\$t1 'BEGIN { printf \"%.4f\\n\", b - a }' >>'$T/t_cli'" || exit 1
    fresh
    timed "$PY" "$T/fake_quant.py" "$F" "$T/np.out" >>"$T/t_np" || exit 1
    r=$((r + 1))
done
mc=$(median <"$T/t_cp"); ml=$(median <"$T/t_cli"); mn=$(median <"$T/t_np")
rl=$(ratio "$ml" "$mc")
crss=$(( $(cat "$T/cli.rss") * 1024 ))
echo ""
echo "== qdq: the same file, warm page cache, $RUNS runs each, alternating =="
echo "cp:               median $mc s"
echo "qdq:              median $ml s   ratio $rl (target <= 1.3) $(verdict "$rl" "<=" 1.3)"
echo "qdq peak RSS:     $((crss >> 20)) MiB (largest tensor + 64 MiB = $((lim >> 20)) MiB) $(verdict "$crss" "<=" "$lim")"
echo "NumPy fake quantization (the user's alternative, not TensorFlow's arithmetic): median $mn s, $(ratio "$mn" "$ml")x qdq's time"

# ---- 5: stats on a tensor route ----
"$SERVER" --listen 127.0.0.1:0 --access-log off --grpc-listen none 2>"$T/srv2.err" &
SPID=$!
PIDS="$PIDS $SPID"
for _ in $(seq 100); do grep -q "^listening on" "$T/srv2.err" && break; sleep 0.1; done
SPORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$T/srv2.err")
head -c $((64 << 20)) "$F" | tail -c $((16 << 20)) >/dev/null
"$PY" -c "
import numpy as np
np.random.default_rng(3).standard_normal(1 << 24).astype(np.float32).tofile('$T/in64.f32')"
S="http://127.0.0.1:$SPORT/quantize-dequantize?shape=16777216"
rawpost() { code=$(curl -s -H 'Expect:' -H 'Content-Type: application/octet-stream' --data-binary @"$T/in64.f32" -o /dev/null -w '%{http_code}' "$1") && [ "$code" = 200 ]; }
: >"$T/t_plain"; : >"$T/t_stats"
rawpost "$S" && rawpost "$S&stats=true" || { echo "error: the raw route failed"; exit 1; }
r=0
while [ $r -lt $((RUNS * 3)) ]; do
    timed rawpost "$S" >>"$T/t_plain"
    timed rawpost "$S&stats=true" >>"$T/t_stats"
    r=$((r + 1))
done
mp=$(median <"$T/t_plain"); ms=$(median <"$T/t_stats"); rs=$(ratio "$ms" "$mp")
echo ""
echo "== stats: 64 MiB raw float32, $((RUNS * 3)) runs each, alternating =="
echo "without:          median $mp s"
echo "stats=true:       median $ms s   ratio $rs (target <= 1.1) $(verdict "$rs" "<=" 1.1)"
