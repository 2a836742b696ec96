#!/usr/bin/python3
"""A whole checkpoint from Python: streamed from disk to the server, the answer streamed to
disk, then the report's summary. Memory stays small on both sides whatever the file's size.

    python3 examples/checkpoint.py IN.safetensors OUT.safetensors
    python3 examples/checkpoint.py            (a small demo checkpoint, out to quantized.safetensors)

Server: $QDQ_URL, default http://127.0.0.1:8080.
"""
import json
import os
import struct
import sys
import tempfile

import numpy as np
import requests

URL = os.environ.get("QDQ_URL", "http://127.0.0.1:8080").rstrip("/") + "/quantize-dequantize"
HEADERS = {
    "Content-Type": "application/x-safetensors",
    # The policy's rules, first match wins: norms and biases left as they are, projections
    # at 4 bits per output channel; every other float tensor gets the query's defaults.
    "X-QDQ-Rules": json.dumps([{"match": ["*norm*", "*.bias"], "skip": True},
                               {"match": "*_proj.weight", "num_bits": 4, "axis": 0}]),
}
PARAMS = {"num_bits": 8}


def demo_checkpoint(path):
    """A small safetensors file: 8-byte header length, JSON header, the tensors' bytes."""
    tensors = [  # name, dtype, shape, values (little-endian)
        ("layers.0.q_proj.weight", "F32", [4, 8], np.arange(32, dtype=np.float64) / 15.5 - 1),
        ("layers.0.norm.weight", "F32", [8], np.ones(8)),
        ("layers.0.q_proj.bias", "F16", [4], np.array([-0.1, -0.05, 0.05, 0.1])),
        ("step", "I64", [1], np.array([1000])),
    ]
    header, data = {}, b""
    for name, dtype, shape, values in tensors:
        raw = values.astype({"F32": "<f4", "F16": "<f2", "I64": "<i8"}[dtype]).tobytes()
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def main():
    tmp = tempfile.TemporaryDirectory()
    if len(sys.argv) > 1:
        src, dst = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "quantized.safetensors"
    else:
        src, dst = os.path.join(tmp.name, "model.safetensors"), "quantized.safetensors"
        demo_checkpoint(src)

    # A file object as data= is streamed (never read whole); stream=True writes the answer to
    # disk in pieces as it arrives.
    with open(src, "rb") as f, requests.post(URL, data=f, params=PARAMS, headers=HEADERS,
                                             stream=True, timeout=3600) as r:
        if r.status_code != 200:
            sys.exit("%d %s" % (r.status_code, r.text))
        with open(dst, "wb") as out:
            for chunk in r.iter_content(1 << 20):
                out.write(chunk)
    print("wrote %s (%d bytes)" % (dst, os.path.getsize(dst)))

    # The report: the same request with Accept: application/json (no tensor data comes back).
    with open(src, "rb") as f:
        r = requests.post(URL, data=f, params=PARAMS, timeout=3600,
                          headers=dict(HEADERS, Accept="application/json"))
    r.raise_for_status()
    report = r.json()
    s = report["summary"]
    print("%d tensors: %d quantized, %d skipped, %d passed through; %d elements quantized"
          % (s["tensors"], s["quantized"], s["skipped"], s["passthrough"], s["elements_quantized"]))
    if s["sqnr_db_min"] is None:  # no quantized tensor changed (or none was quantized)
        print("no quantization error")
    else:
        print("lowest SQNR %.2f dB, in %s" % (s["sqnr_db_min"], s["worst_tensor"]))


if __name__ == "__main__":
    main()
