#!/bin/sh
# A tensor as raw bytes: little-endian float32 in, the same out; the ranges come back in
# X-QDQ-* headers, and the attributes go in the query string.
#   sh examples/raw.sh             (server: $QDQ_URL, default http://127.0.0.1:8080)
set -eu
URL=${QDQ_URL:-http://127.0.0.1:8080}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# Two rows of three float32 values.
python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<6f", -1, -0.5, 0, 0.3125, 0.8, 0.555))' >"$T/x.f32"

# 4 bits, one range per column (axis 1): headers to $T/headers, the output's bytes to $T/out.f32.
curl -sS --fail-with-body -D "$T/headers" -o "$T/out.f32" --data-binary @"$T/x.f32" \
    -H 'Content-Type: application/octet-stream' \
    "$URL/quantize-dequantize?shape=2,3&num_bits=4&axis=1"
tr -d '\r' <"$T/headers" | grep -i '^x-qdq-'
od -An -tf4 -v "$T/out.f32"
