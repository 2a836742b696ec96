#!/usr/bin/python3
"""Tensors from Python with requests and NumPy, in each native format.

    python3 examples/tensors.py     (server: $QDQ_URL, default http://127.0.0.1:8080)
"""
import io
import os

import numpy as np
import requests

URL = os.environ.get("QDQ_URL", "http://127.0.0.1:8080").rstrip("/") + "/quantize-dequantize"
x = np.array([[-1.0, -0.5, 0.0], [0.3125, 0.8, 0.555]], dtype=np.float32)


def values(a):
    """The elements as the shortest decimals that read back to them in a's dtype."""
    return [float(str(v)) for v in np.asarray(a).ravel()]


# JSON: the op's arguments as one object. The data object keeps the dtype; the answer holds the
# output and the six ranges (numbers, or lists per channel with an axis).
r = requests.post(URL, json={"input": {"dtype": "float32", "shape": list(x.shape),
                                       "data": x.ravel().tolist()},
                             "num_bits": 4, "axis": 1})
r.raise_for_status()
ans = r.json()
out = np.array(ans["output"]["data"], dtype=np.float32).reshape(ans["output"]["shape"])
print("json: ", out.shape, values(out), "scale", ans["scale"])

# Raw bytes: the tensor's bytes, its shape and the attributes in the query string; the answer
# is the output's bytes, the ranges in X-QDQ-* headers (comma-separated per channel).
r = requests.post(URL, data=x.tobytes(), params={"shape": "2,3", "num_bits": 4, "axis": 1},
                  headers={"Content-Type": "application/octet-stream"})
r.raise_for_status()
out = np.frombuffer(r.content, dtype="<f4").reshape(x.shape)
print("raw:  ", out.shape, values(out), "scale", r.headers["X-QDQ-Scale"])

# .npy: a file as numpy writes it, and the same back; any float16, float32 or float64 array.
# stats=true adds the error of the quantization (X-QDQ-SQNR-dB and friends).
buf = io.BytesIO()
np.save(buf, x.astype(np.float16))
r = requests.post(URL, data=buf.getvalue(), params={"num_bits": 4, "stats": "true"},
                  headers={"Content-Type": "application/x-npy"})
r.raise_for_status()
out = np.load(io.BytesIO(r.content))
print("npy:  ", out.shape, out.dtype, values(out), "sqnr_db", r.headers["X-QDQ-SQNR-dB"])

# Errors are JSON with a message that says what was wrong, and a code word.
r = requests.post(URL, json={"input": [1.0, 2.0], "num_bit": 8})
print("error:", r.status_code, r.json())
