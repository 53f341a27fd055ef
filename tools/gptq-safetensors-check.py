#!/usr/bin/env python3
"""Independent reader of GPTQ checkpoint tensors (NumPy only), for checking lowbit's writer.

Usage: gptq-safetensors-check.py model.safetensors OUT_DIR

For every layer with a `qweight`, writes OUT_DIR/<layer prefix>.f32: the dequantized weight W [out, in]
as raw little-endian float32, computed the way GPTQ kernels define it:

    W[o, i] = scales[g_idx[i], o] * (q[i, o] - z[g_idx[i], o])

where q unpacks `qweight` [in*bits/32, out] (int32 words along the input dimension, 32//bits codes per
word for 2/4/8 bits; for 3 bits 32 codes per 3 words, codes 10 and 21 straddling words), z unpacks
`qzeros` [groups, out*bits/32] the same way along the output dimension, plus one for the original
'gptq' checkpoint_format (which stores zero - 1) and as stored for 'gptq_v2'. quantize_config comes
from the file's __metadata__. Written from the layout description, not from lowbit's TypeScript.
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "U8": np.uint8, "I8": np.int8}


def read(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        tensors[name] = np.frombuffer(raw[base + b : base + e], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
    return meta, tensors


def unpack_rows(words, bits, n):
    """words: uint32 [W, cols] packed along axis 0 -> codes [n, cols]."""
    words = words.astype(np.uint64)
    cols = words.shape[1]
    if bits in (2, 4, 8):
        per = 32 // bits
        shifts = (np.arange(per, dtype=np.uint64) * bits)[None, :, None]
        codes = (words[:, None, :] >> shifts) & np.uint64((1 << bits) - 1)
        return codes.reshape(-1, cols)[:n].astype(np.int64)
    assert bits == 3
    out = np.zeros((words.shape[0] // 3 * 32, cols), dtype=np.int64)
    for blk in range(words.shape[0] // 3):
        w0, w1, w2 = (words[3 * blk + k].astype(np.int64) for k in range(3))
        v = out[32 * blk : 32 * blk + 32]
        for j in range(10):
            v[j] = (w0 >> (3 * j)) & 7
        v[10] = ((w0 >> 30) & 3) | ((w1 & 1) << 2)
        for j in range(10):
            v[11 + j] = (w1 >> (3 * j + 1)) & 7
        v[21] = ((w1 >> 31) & 1) | ((w2 & 3) << 1)
        for j in range(10):
            v[22 + j] = (w2 >> (3 * j + 2)) & 7
    return out[:n]


def main():
    path, out_dir = sys.argv[1], Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    meta, t = read(path)
    q = json.loads(meta["quantize_config"])
    bits, v2 = q["bits"], q.get("checkpoint_format") == "gptq_v2"
    for name in t:
        if not name.endswith(".qweight"):
            continue
        p = name[: -len(".qweight")]
        g_idx = t[p + ".g_idx"].astype(np.int64)
        n_in = g_idx.shape[0]
        scales = t[p + ".scales"].astype(np.float32)  # [groups, out]
        n_out = scales.shape[1]
        qw = unpack_rows(t[p + ".qweight"].view(np.uint32), bits, n_in)  # [in, out]
        # qzeros [groups, out*bits/32]: packed along the output, so unpack the transpose
        qz = unpack_rows(np.ascontiguousarray(t[p + ".qzeros"].view(np.uint32).T), bits, n_out).T  # [groups, out]
        zeros = qz if v2 else qz + 1
        w = scales[g_idx] * (qw - zeros[g_idx]).astype(np.float32)  # [in, out], f32 product like lowbit's
        np.ascontiguousarray(w.T, dtype="<f4").tofile(out_dir / f"{p}.f32")
    print(json.dumps({"layers": sum(1 for n in t if n.endswith(".qweight")), "bits": bits, "v2": v2}))


if __name__ == "__main__":
    main()
