#!/bin/sh
# A tensor as JSON: the op's arguments in, the quantized tensor and its ranges out.
#   sh examples/json.sh            (server: $QDQ_URL, default http://127.0.0.1:8080)
set -eu
URL=${QDQ_URL:-http://127.0.0.1:8080}

# Nested arrays are float32; unnamed attributes keep TensorFlow's defaults (8 bits, signed, one
# range for the whole tensor, taken from the data).
curl -sS --fail-with-body "$URL/quantize-dequantize" -H 'Content-Type: application/json' \
    -d '{"input": [[-1.0, -0.5], [0.0, 0.3]], "num_bits": 8}'
echo

# The object form names the dtype and shape; axis 0 gives one range per row. "stats": true
# adds the error of the quantization (max abs error, RMSE, SQNR in dB).
curl -sS --fail-with-body "$URL/quantize-dequantize" -H 'Content-Type: application/json' \
    -d '{"input": {"dtype": "float64", "shape": [2, 2], "data": [1, 2, 3, 4]}, "axis": 0, "stats": true}'
echo
