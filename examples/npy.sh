#!/bin/sh
# A NumPy .npy file in, a .npy of the same dtype and shape out (ranges in X-QDQ-* headers).
#   sh examples/npy.sh             (server: $QDQ_URL, default http://127.0.0.1:8080)
set -eu
URL=${QDQ_URL:-http://127.0.0.1:8080}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# Any float32, float64 or float16 array saved by numpy will do.
python3 -c 'import numpy as np; np.save("'"$T"'/w.npy", np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4))'

# 3 bits, one range per row (axis 0), with the error statistics (stats=true).
curl -sS --fail-with-body -D "$T/headers" -o "$T/out.npy" --data-binary @"$T/w.npy" \
    -H 'Content-Type: application/x-npy' \
    "$URL/quantize-dequantize?num_bits=3&axis=0&stats=true"
tr -d '\r' <"$T/headers" | grep -i '^x-qdq-'
python3 -c 'import numpy as np; a = np.load("'"$T"'/out.npy"); print(a.dtype, a.shape, [float(str(v)) for v in a.ravel()])'
