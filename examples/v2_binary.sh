#!/bin/sh
# KServe v2 with Triton's binary tensor extension, as Triton's clients send it: a JSON header,
# then the tensor's bytes; Inference-Header-Content-Length says where the JSON ends. The answer
# is built the same way.
#   sh examples/v2_binary.sh       (server: $QDQ_URL, default http://127.0.0.1:8080)
set -eu
URL=${QDQ_URL:-http://127.0.0.1:8080}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# The input: 4 float32 values sent as 16 bytes; the output asked for as bytes too, the scale
# as JSON.
printf '%s' '{"inputs":[{"name":"input","shape":[4],"datatype":"FP32","parameters":{"binary_data_size":16}}],"outputs":[{"name":"output","parameters":{"binary_data":true}},{"name":"scale"}]}' >"$T/head.json"
python3 -c 'import struct, sys; sys.stdout.buffer.write(struct.pack("<4f", -1, -0.5, 0, 0.3))' >"$T/x.f32"
cat "$T/head.json" "$T/x.f32" >"$T/body"

curl -sS --fail-with-body -D "$T/headers" -o "$T/answer" --data-binary @"$T/body" \
    -H "Inference-Header-Content-Length: $(wc -c <"$T/head.json")" \
    -H 'Content-Type: application/octet-stream' \
    "$URL/v2/models/quantize_and_dequantize_v2/infer"

# The answer: its JSON (the length in its own Inference-Header-Content-Length), then the
# output's 16 bytes.
n=$(tr -d '\r' <"$T/headers" | sed -n 's/^[Ii]nference-[Hh]eader-[Cc]ontent-[Ll]ength: *//p')
head -c "$n" "$T/answer"
echo
tail -c +$((n + 1)) "$T/answer" | od -An -tf4 -v
