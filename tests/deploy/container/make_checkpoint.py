#!/usr/bin/python3
"""A safetensors checkpoint shaped like a decoder model's, written to a file tensor by tensor (the
client holds one tensor at a time, never the file): make_checkpoint.py OUT HIDDEN LAYERS.

Per layer: attention projections (F32), MLP projections (F16 up, F32 down), a BF16 norm weight;
then a BF16 embedding of 8 x HIDDEN rows, an I64 buffer (passes through) and a BF16 bias. Values
are a seeded normal times 0.05, so every run writes the same bytes. HIDDEN 2048 and LAYERS 3:
358 MiB (the largest tensor 64 MiB); HIDDEN 64 and LAYERS 2: 263 KiB. The header is written as the reference
writer writes it (tests/checkpoint/test_checkpoint.py make_st): JSON without spaces, padded with
spaces to a multiple of 8 bytes.
"""
import json
import struct
import sys

import numpy as np


def bf16(a):
    """float32 values to bfloat16 bits, rounded to nearest even."""
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def main():
    out, hidden, layers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    inter = hidden * 11 // 4
    plan = []  # (name, dtype, shape)
    for i in range(layers):
        p = f"model.layers.{i}."
        plan += [(p + "self_attn.q_proj.weight", "F32", (hidden, hidden)),
                 (p + "self_attn.o_proj.weight", "F32", (hidden, hidden)),
                 (p + "mlp.up_proj.weight", "F16", (inter, hidden)),
                 (p + "mlp.down_proj.weight", "F32", (hidden, inter)),
                 (p + "input_layernorm.weight", "BF16", (hidden,))]
    plan += [("model.embed_tokens.weight", "BF16", (8 * hidden, hidden)),
             ("model.rotary_emb.positions", "I64", (hidden,)),
             ("lm_head.bias", "BF16", (8 * hidden,))]
    size = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
    hdr, off = {"__metadata__": {"format": "pt"}}, 0
    for name, dt, shape in plan:
        n = size[dt] * int(np.prod(shape))
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    rng = np.random.default_rng(17)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for name, dt, shape in plan:
            if dt == "I64":
                f.write(np.arange(shape[0], dtype=np.int64).tobytes())
                continue
            v = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.05)
            f.write((bf16(v) if dt == "BF16" else v.astype(np.float16 if dt == "F16" else np.float32))
                    .tobytes())
    print(f"{out}: {len(plan)} tensors, {8 + len(h) + off} bytes")


if __name__ == "__main__":
    main()
