#!/bin/sh
# A whole checkpoint (Hugging Face safetensors) in one request, streamed with curl -T (any
# size: the server never holds it in memory), with a per-tensor policy; then the report of
# what quantization did to each tensor.
#   sh examples/checkpoint.sh [IN.safetensors [OUT.safetensors]]
# Without IN, a small demo checkpoint is made. OUT defaults to quantized.safetensors. Server:
# $QDQ_URL, default http://127.0.0.1:8080.
set -eu
URL=${QDQ_URL:-http://127.0.0.1:8080}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
IN=${1:-}
OUT=${2:-quantized.safetensors}

if [ -z "$IN" ]; then
    # The demo: a projection, a norm, a bias and an integer tensor, in safetensors' layout
    # (8-byte header length, JSON header, the tensors' bytes).
    IN=$T/model.safetensors
    python3 - "$IN" <<'PY'
import json, struct, sys
tensors = [  # name, dtype, shape, values (packed little-endian)
    ("layers.0.q_proj.weight", "F32", [4, 8], struct.pack("<32f", *[i / 15.5 - 1 for i in range(32)])),
    ("layers.0.norm.weight", "F32", [8], struct.pack("<8f", *[1.0] * 8)),
    ("layers.0.q_proj.bias", "F16", [4], struct.pack("<4e", -0.1, -0.05, 0.05, 0.1)),
    ("step", "I64", [1], struct.pack("<q", 1000)),
]
header, data = {}, b""
for name, dtype, shape, raw in tensors:
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + data)
PY
fi

# The policy: defaults from the query (8 bits), rules from X-QDQ-Rules, first match wins:
# norms and biases are left as they are, projections get 4 bits per output channel (axis 0).
# Tensors that are not F32, F64, F16 or BF16 always pass through.
RULES='[{"match": ["*norm*", "*.bias"], "skip": true}, {"match": "*_proj.weight", "num_bits": 4, "axis": 0}]'

# The quantized checkpoint: the same tensors, names, dtypes, shapes and offsets.
curl -sS --fail-with-body -X POST -T "$IN" -o "$OUT" \
    -H 'Content-Type: application/x-safetensors' -H "X-QDQ-Rules: $RULES" \
    "$URL/quantize-dequantize?num_bits=8"
echo "wrote $OUT ($(wc -c <"$OUT") bytes)"

# The report: the same request with Accept: application/json (no tensor data comes back).
curl -sS --fail-with-body -X POST -T "$IN" -o "$T/report.json" \
    -H 'Content-Type: application/x-safetensors' -H "X-QDQ-Rules: $RULES" \
    -H 'Accept: application/json' "$URL/quantize-dequantize?num_bits=8"
python3 - "$T/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for t in report["tensors"]:
    if t["action"] == "quantized":  # sqnr_db is null when the tensor did not change
        sqnr = t["stats"]["sqnr_db"]
        print("%-24s quantized   num_bits=%d axis=%d sqnr_db=%s" % (
            t["name"], t["attrs"]["num_bits"], t["attrs"]["axis"],
            "%.2f" % sqnr if sqnr is not None else "null"))
    else:
        print("%-24s %-11s %s" % (t["name"], t["action"], t["reason"]))
print("summary:", json.dumps(report["summary"]))
PY
