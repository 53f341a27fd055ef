"""Independent reference for GPTQ on llama.cpp's K-quant grid (lowbit's gptqKQuantize), in NumPy.

    python3 tools/reference/gptq_kquant.py W.npy X.npy --type q4_K [--act-order] [--static-groups]
        [--block 128] [--damp 0.01] [--out Wq.npy] [--check ours.bin]

The OBS sweep is the GPTQ paper's Algorithm 1 (Frantar et al. 2023: H = 2 X^T X / n, dampening, the
upper Cholesky factor of H^-1, lazy batches of --block columns). The quantizer is llama.cpp itself:
when the sweep enters a 256-column super-block (or, with --act-order / --static-groups, once for the
original weights) the super-block scales are chosen by ggml's own quantize_row_<type>_ref from the
libggml-base.so node-llama-cpp ships, read from the block bytes by the layouts of ggml-common.h, and
each weight is rounded to the nearest code of its sub-block in f32 (x + m)/d, as ggml's final
requantization does. --check reads lowbit's bytes for the same tensor, decodes them with ggml's
dequantize_row_<type> and reports how many weights differ from this reference.

Prints JSON: Hessian-weighted output errors tr((W-Q) X^T X (W-Q)^T) of GPTQ and of ggml's RTN, and the
--check counts. Not a product dependency (lowbit's tests run it when NumPy and llama.cpp are present).
"""
import argparse, ctypes, glob, json, os
import numpy as np

QK = 256
BLOCK = {'q2_K': 84, 'q3_K': 110, 'q4_K': 144, 'q5_K': 176, 'q6_K': 210}
SUB = {'q2_K': 16, 'q3_K': 16, 'q4_K': 8, 'q5_K': 8, 'q6_K': 16}
NMAX = {'q2_K': 3, 'q3_K': 7, 'q4_K': 15, 'q5_K': 31, 'q6_K': 63}
OFFSET = {'q3_K': 4, 'q6_K': 32}  # symmetric types: value = d * (q - offset); the others d * q - m

def ggml():
    here = os.path.dirname(os.path.abspath(__file__))
    libs = glob.glob(os.path.join(here, '..', 'llama-cpp', 'node_modules', '@node-llama-cpp', '*', 'bins', '*', 'libggml-base.so'))
    if not libs:
        raise SystemExit('libggml-base.so not found under tools/llama-cpp (npm run llama-cpp)')
    return ctypes.CDLL(libs[0])

LIB = None

def ggml_quantize(t, x):
    """ggml's quantize_row_<t>_ref over rows of whole super-blocks: returns the bytes [rows, nblocks * BLOCK]."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = ctypes.create_string_buffer(x.size // QK * BLOCK[t])
    getattr(LIB, f'quantize_row_{t}_ref')(x.ctypes.data_as(ctypes.c_void_p), out, ctypes.c_int64(x.size))
    return np.frombuffer(out.raw, dtype=np.uint8).reshape(x.shape[0], -1)

def ggml_dequantize(t, raw, n):
    y = np.zeros(n, dtype=np.float32)
    buf = ctypes.create_string_buffer(bytes(raw), len(raw))
    getattr(LIB, f'dequantize_row_{t}')(buf, y.ctypes.data_as(ctypes.c_void_p), ctypes.c_int64(n))
    return y

def f16(lo, hi):
    return (lo.astype(np.uint16) | (hi.astype(np.uint16) << 8)).view(np.float16).astype(np.float32)

def sub_scales(t, b):
    """Per sub-block (a, m) of blocks b [rows, BLOCK] from ggml-common.h: value = a*q - m (m = 0 for q3_K, q6_K)."""
    b = b.astype(np.int32)
    rows = b.shape[0]
    m = np.zeros((rows, SUB[t]), dtype=np.float32)
    if t == 'q2_K':
        d, dmin = f16(b[:, 80], b[:, 81]), f16(b[:, 82], b[:, 83])
        sc = b[:, 0:16]
        a = (d[:, None] * (sc & 15).astype(np.float32)).astype(np.float32)
        m = (dmin[:, None] * (sc >> 4).astype(np.float32)).astype(np.float32)
    elif t == 'q3_K':
        d = f16(b[:, 108], b[:, 109])
        s = b[:, 96:108]
        j = np.arange(16)
        low = np.where(j < 8, s[:, j % 8] & 15, s[:, j % 8] >> 4)
        high = (s[:, 8 + j % 4] >> (2 * (j // 4))) & 3
        a = (d[:, None] * ((low | (high << 4)) - 32).astype(np.float32)).astype(np.float32)
    elif t in ('q4_K', 'q5_K'):
        d, dmin = f16(b[:, 0], b[:, 1]), f16(b[:, 2], b[:, 3])
        q = b[:, 4:16]
        sc = np.zeros((rows, 8), dtype=np.int32); mn = np.zeros((rows, 8), dtype=np.int32)
        for j in range(8):
            if j < 4:
                sc[:, j] = q[:, j] & 63; mn[:, j] = q[:, j + 4] & 63
            else:
                sc[:, j] = (q[:, j + 4] & 15) | ((q[:, j - 4] >> 6) << 4)
                mn[:, j] = (q[:, j + 4] >> 4) | ((q[:, j] >> 6) << 4)
        a = (d[:, None] * sc.astype(np.float32)).astype(np.float32)
        m = (dmin[:, None] * mn.astype(np.float32)).astype(np.float32)
    else:
        d = f16(b[:, 208], b[:, 209])
        sc = b[:, 192:208].astype(np.uint8).view(np.int8).astype(np.float32)
        a = (d[:, None] * sc).astype(np.float32)
    return a, m

def quant(t, x, a, m):
    """Nearest code of x under (a, m), all in f32 as ggml's requantization; returns the decoded values (f64)."""
    x = x.astype(np.float32)
    safe = np.where(a == 0, np.float32(1), a)
    if t in OFFSET:
        o = OFFSET[t]
        q = np.clip(np.rint((x / safe).astype(np.float32)), -o, NMAX[t] - o) + o
        v = (a * (q - o).astype(np.float32)).astype(np.float32)
    else:
        q = np.clip(np.rint(((x + m).astype(np.float32) / safe).astype(np.float32)), 0, NMAX[t])
        v = ((a * q.astype(np.float32)).astype(np.float32) - m).astype(np.float32)
    # a = 0: every code decodes to -m (affine) or 0
    return v.astype(np.float64)

def gptq(t, W, H, act_order, static, block, damp):
    rows, cols = W.shape
    W = W.astype(np.float64).copy(); H = H.copy()
    dead = np.diag(H) == 0
    H[dead, dead] = 1; W[:, dead] = 0
    nsub = SUB[t]; width = QK // nsub
    A = np.zeros((rows, cols // width), dtype=np.float32); M = np.zeros_like(A)
    def fit(cur, s):  # cur [rows, 256]: the super-block's weights now; ggml chooses its scales
        a, m = sub_scales(t, ggml_quantize(t, cur))
        A[:, s * nsub:(s + 1) * nsub] = a; M[:, s * nsub:(s + 1) * nsub] = m
    if static:
        for s in range(cols // QK): fit(W[:, s * QK:(s + 1) * QK], s)
    perm = np.argsort(-np.diag(H), kind='stable') if act_order else np.arange(cols)
    W = W[:, perm]; H = H[perm][:, perm]
    H[np.diag_indices(cols)] += damp * np.mean(np.diag(H))
    U = np.linalg.cholesky(np.linalg.inv(H)).T  # upper: U^T U = H^-1
    Q = np.zeros_like(W)
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        if not static and i1 % QK == 0:
            fit(W[:, i1:i1 + QK], i1 // QK)
        W1 = W[:, i1:i2].copy(); E = np.zeros_like(W1)
        for i in range(i2 - i1):
            q = i1 + i; g = perm[q] // width
            w = W1[:, i]
            Q[:, q] = quant(t, w, A[:, g], M[:, g])
            e = (w - Q[:, q]) / U[q, q]
            W1[:, i:] -= np.outer(e, U[q, q:i2])
            E[:, i] = e
        W[:, i2:] -= E @ U[i1:i2, i2:]
    out = np.empty_like(Q); out[:, perm] = Q
    return out

def main():
    global LIB
    p = argparse.ArgumentParser()
    p.add_argument('W'); p.add_argument('X')
    p.add_argument('--type', required=True, choices=sorted(BLOCK))
    p.add_argument('--act-order', action='store_true'); p.add_argument('--static-groups', action='store_true')
    p.add_argument('--block', type=int, default=128); p.add_argument('--damp', type=float, default=0.01)
    p.add_argument('--out', help='where to save the GPTQ weights (f32 .npy)')
    p.add_argument('--check', help="lowbit's bytes of the same tensor, to decode with ggml and compare")
    a = p.parse_args()
    LIB = ggml()
    W = np.load(a.W).astype(np.float32); X = np.load(a.X).astype(np.float64)
    rows, cols = W.shape
    if cols % QK or (not (a.act_order or a.static_groups) and QK % a.block):
        raise SystemExit(f'cols {cols} must be whole super-blocks and --block divide {QK}')
    G = X.T @ X; H = 2 * G / X.shape[0]
    def err(Wq):
        D = W.astype(np.float64) - Wq
        return float(np.einsum('ij,jk,ik->', D, G, D))
    Wg = gptq(a.type, W, H, a.act_order, a.static_groups or a.act_order, a.block, a.damp)
    Wr = ggml_dequantize(a.type, ggml_quantize(a.type, W).tobytes(), W.size).reshape(W.shape).astype(np.float64)
    res = {'gptq_err_output': err(Wg), 'rtn_err_output': err(Wr)}
    if a.check:
        ours = ggml_dequantize(a.type, open(a.check, 'rb').read(), W.size).reshape(W.shape)
        res['check_differing'] = int(np.sum(ours.astype(np.float64) != Wg))
        res['check_max_abs'] = float(np.max(np.abs(ours.astype(np.float64) - Wg)))
        res['check_err_output'] = err(ours.astype(np.float64))
    if a.out:
        np.save(a.out, Wg.astype(np.float32))
    print(json.dumps(res))

if __name__ == '__main__':
    main()
