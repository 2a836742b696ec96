#!/bin/sh
# Every file of examples/, run as a user runs it against a real server started here (HTTP and
# gRPC on free ports of 127.0.0.1, QDQ_URL and QDQ_GRPC pointing there), each in a scratch
# directory, with Debian's python3 first on PATH (numpy, requests, grpcio, grpc_tools: the
# installer's --dev list). Each example's output must be exactly the one below (the numbers are
# the server's; the rate of load.sh aside), and the two checkpoint examples must write the same
# checkpoint. examples/ must hold exactly the examples run here, and an example pointed at no
# server must fail. Prints "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
SERVER=${QDQ_SERVER:-build/qdq-server}
case $SERVER in /*) ;; *) SERVER=$ROOT/$SERVER ;; esac
. tests/lib/checks.sh
T=$(mktemp -d)
SPID=
trap '[ -n "$SPID" ] && kill -9 $SPID 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
trap 'exit 1' INT TERM

EXAMPLES="checkpoint.py checkpoint.sh grpc_client.py json.sh load.sh npy.sh raw.sh tensors.py v2_binary.sh"
check '[ "$(ls examples | tr "\n" " ")" = "$EXAMPLES " ]' \
    "examples/ holds exactly the examples run here: $(ls examples | tr '\n' ' ')"

PY=$(python_with numpy requests grpc grpc_tools)
if ! need '[ -n "$PY" ]' "python3 with numpy, requests, grpcio and grpc_tools (python3-numpy, python3-requests, python3-grpcio, python3-grpc-tools)"; then
    finish
fi
mkdir -p "$T/bin" "$T/work"
ln -s "$PY" "$T/bin/python3"
PATH=$T/bin:$PATH

"$SERVER" --listen 127.0.0.1:0 --grpc-listen 127.0.0.1:0 --access-log off --shutdown-grace 0 \
    2>"$T/server.err" >/dev/null &
SPID=$!
server_ports "$T/server.err" $SPID grpc
PORT=$HPORT
if [ -z "$PORT" ] || [ -z "$GPORT" ]; then
    bad "the server did not start: $(cat "$T/server.err")"
    finish
fi
QDQ_URL=http://127.0.0.1:$PORT
QDQ_GRPC=127.0.0.1:$GPORT
export QDQ_URL QDQ_GRPC

# example FILE [ARGS]: runs examples/FILE in its own scratch directory; its output, then
# "exit N", in $T/FILE.out (stderr in $T/FILE.err).
example() {
    f=$1
    shift
    mkdir -p "$T/work/$f"
    case $f in
    *.sh) (cd "$T/work/$f" && sh "$ROOT/examples/$f" "$@") >"$T/$f.out" 2>"$T/$f.err" ;;
    *.py) (cd "$T/work/$f" && "$PY" "$ROOT/examples/$f" "$@") >"$T/$f.out" 2>"$T/$f.err" ;;
    esac
    echo "exit $?" >>"$T/$f.out"
}
# expect FILE: its output must be standard input, exactly.
expect() {
    x=$1
    cat >"$T/$x.want"
    check 'cmp -s "$T/$x.want" "$T/$x.out"' "examples/$x: output as expected$(cmp -s "$T/$x.want" "$T/$x.out" ||
        { echo; diff "$T/$x.want" "$T/$x.out" | head -n 20; head -c 2000 "$T/$x.err"; })"
}

example json.sh
expect json.sh <<'EOF'
{"output":[[-1.0,-0.5],[0.0,0.296875]],"input_min":-1.0,"input_max":0.3,"output_min":-1.0,"output_max":0.9921875,"scale":128.0,"inverse_scale":0.0078125}
{"output":{"dtype":"float64","shape":[2,2],"data":[1.0078740157480315,2.0,2.9921259842519685,4.0]},"input_min":[1.0,3.0],"input_max":[2.0,4.0],"output_min":[-2.015748031496063,-4.031496062992126],"output_max":[2.0,4.0],"scale":[63.5,31.75],"inverse_scale":[0.015748031496062992,0.031496062992125984],"stats":{"max_abs_error":0.007874015748031482,"rmse":0.005567769930602726,"sqnr_db":53.836987009675966,"nonfinite":0}}
exit 0
EOF

example raw.sh
expect raw.sh <<'EOF'
X-QDQ-Dtype: float32
X-QDQ-Shape: 2,3
X-QDQ-Input-Min: -1.0,-0.5,0.0
X-QDQ-Input-Max: 0.3125,0.8,0.555
X-QDQ-Output-Min: -1.0,-0.9142857,-0.63428575
X-QDQ-Output-Max: 0.875,0.8,0.555
X-QDQ-Scale: 8.0,8.75,12.612613
X-QDQ-Inverse-Scale: 0.125,0.114285715,0.07928572
              -1     -0.45714286               0            0.25
             0.8           0.555
exit 0
EOF

example npy.sh
expect npy.sh <<'EOF'
X-QDQ-Dtype: float32
X-QDQ-Shape: 2,4
X-QDQ-Input-Min: -1.0,0.14285715
X-QDQ-Input-Max: -0.14285715,1.0
X-QDQ-Output-Min: -1.0,-1.3333334
X-QDQ-Output-Max: 0.75,1.0
X-QDQ-Scale: 4.0,3.0
X-QDQ-Inverse-Scale: 0.25,0.33333334
X-QDQ-Max-Abs-Error: 0.1428571492433548
X-QDQ-RMSE: 0.07874259638461399
X-QDQ-SQNR-dB: 18.396037608359986
X-QDQ-Nonfinite: 0
float32 (2, 4) [-1.0, -0.75, -0.5, -0.25, 0.0, 0.33333334, 0.6666667, 1.0]
exit 0
EOF

example v2_binary.sh
expect v2_binary.sh <<'EOF'
{"model_name":"quantize_and_dequantize_v2","model_version":"1","outputs":[{"name":"output","datatype":"FP32","shape":[4],"parameters":{"binary_data_size":16}},{"name":"scale","datatype":"FP32","shape":[1],"data":[128.0]}]}
              -1            -0.5               0        0.296875
exit 0
EOF

REPORT='layers.0.q_proj.weight   quantized   num_bits=4 axis=0 sqnr_db=25.97
layers.0.norm.weight     skipped     rules[0] says skip
layers.0.q_proj.bias     skipped     rules[0] says skip
step                     passthrough dtype I64 is not quantized (only F32, F64, F16 and BF16 are)
summary: {"tensors": 4, "quantized": 1, "skipped": 2, "passthrough": 1, "bytes": 176, "elements_quantized": 32, "sqnr_db_min": 25.971638223858356, "worst_tensor": "layers.0.q_proj.weight"}'
example checkpoint.sh
expect checkpoint.sh <<EOF
wrote quantized.safetensors (992 bytes)
$REPORT
exit 0
EOF
example checkpoint.py
expect checkpoint.py <<'EOF'
wrote quantized.safetensors (992 bytes)
4 tensors: 1 quantized, 2 skipped, 1 passed through; 32 elements quantized
lowest SQNR 25.97 dB, in layers.0.q_proj.weight
exit 0
EOF
check 'cmp -s "$T/work/checkpoint.sh/quantized.safetensors" "$T/work/checkpoint.py/quantized.safetensors"' \
    "examples/checkpoint.sh and checkpoint.py write the same checkpoint"
# Given IN and OUT: an answer of the server, quantized again the same way (its policy metadata
# is replaced by the new policy's, the same size; the values are on the grid already, so
# nothing changes and there is no SQNR); and checkpoint.sh given it too.
example checkpoint.py "$T/work/checkpoint.sh/quantized.safetensors" again.safetensors
expect checkpoint.py <<'EOF'
wrote again.safetensors (992 bytes)
4 tensors: 1 quantized, 2 skipped, 1 passed through; 32 elements quantized
no quantization error
exit 0
EOF
check 'cmp -s "$T/work/checkpoint.py/again.safetensors" "$T/work/checkpoint.sh/quantized.safetensors"' \
    "examples/checkpoint.py IN OUT: quantizing its answer again changes nothing"
example checkpoint.sh "$T/work/checkpoint.py/again.safetensors" again.safetensors
check 'grep -q "^layers.0.q_proj.weight   quantized   num_bits=4 axis=0 sqnr_db=null$" "$T/checkpoint.sh.out" &&
       grep -qx "exit 0" "$T/checkpoint.sh.out"' "examples/checkpoint.sh IN OUT: $(sed -n 2p "$T/checkpoint.sh.out")"

example tensors.py
expect tensors.py <<'EOF'
json:  (2, 3) [-1.0, -0.45714286, 0.0, 0.25, 0.8, 0.555] scale [8.0, 8.75, 12.612613]
raw:   (2, 3) [-1.0, -0.45714286, 0.0, 0.25, 0.8, 0.555] scale 8.0,8.75,12.612613
npy:   (2, 3) float16 [-1.0, -0.5, 0.0, 0.25, 0.75, 0.5] sqnr_db 23.863259505711678
error: 400 {'error': "unknown key 'num_bit' in the request at byte 22 (expected one of: input, num_bits, signed_input, range_given, round_mode, narrow_range, axis, input_min, input_max, stats)", 'code': 'INVALID_ARGUMENT'}
exit 0
EOF

example grpc_client.py
expect grpc_client.py <<'EOF'
server ready: True
output        [2, 3] [-1.0, -0.45714286, 0.0, 0.25, 0.8, 0.555]
input_min     [3] [-1.0, -0.5, 0.0]
input_max     [3] [0.3125, 0.8, 0.555]
output_min    [3] [-1.0, -0.9142857, -0.63428575]
output_max    [3] [0.875, 0.8, 0.555]
scale         [3] [8.0, 8.75, 12.612613]
inverse_scale [3] [0.125, 0.114285715, 0.07928572]
exit 0
EOF

QDQ_LOAD_REQUESTS=300 QDQ_LOAD_PARALLEL=4 example load.sh
check 'sed -n 1p "$T/load.sh.out" | grep -Eq "^300 requests, 4 parallel: [0-9.]+ s, [0-9]+ requests/s$" &&
       [ "$(sed 1d "$T/load.sh.out")" = "status 200: 300
exit 0" ]' "examples/load.sh: $(tr '\n' ' ' <"$T/load.sh.out")$(head -c 500 "$T/load.sh.err")"

# Pointed at no server, an example fails (curl --fail-with-body, set -e).
QDQ_URL=http://127.0.0.1:1 example json.sh
check '! grep -q "^exit 0" "$T/json.sh.out"' "examples/json.sh with no server: $(tail -n 1 "$T/json.sh.out"), $(head -n 1 "$T/json.sh.err")"

kill -TERM $SPID
wait $SPID
rc=$?
SPID=
check '[ $rc -eq 0 ]' "the server exits 0 on SIGTERM after the examples"
finish
