"""Independent GPTQ reference in NumPy (paper Algorithm 1), for cross-checking `lowbit quantize-layer`.

    python3 scripts/gptq_reference.py W.npy X.npy --bits 4 [--group 32] [--sym] [--act-order] [--block 128] [--out Wq.npy]

Prints JSON with err_output = ||W X^T - Wq X^T||_F^2 for GPTQ and RTN. Not a product dependency.
Group scales are fitted on the columns as the block loop holds them (with --block equal to the
group size this is the exact sequential OBS order that lowbit implements for any block size).
"""
import argparse, json
import numpy as np

def f16(s):
    # scales are stored as IEEE binary16: rounded once from the f64 quotient (round to nearest even),
    # a quotient that rounds to 0 becomes the smallest subnormal, one past the range the largest finite
    h = s.astype(np.float16)
    h = np.where(h == 0, np.float16(2.0 ** -24), h)
    h = np.where(np.isinf(h), np.float16(65504.0), h)
    return h.astype(np.float64)

def fit(w, bits, sym):
    # per-row grid over the given columns; the range always contains 0 (as lowbit and gptq.py do)
    w = w.astype(np.float32)
    lo = np.minimum(w.min(axis=1), 0).astype(np.float64)
    hi = np.maximum(w.max(axis=1), 0).astype(np.float64)
    qmax = 2 ** bits - 1
    if sym:
        amax = np.maximum(-lo, hi)
        scale = np.where(amax > 0, f16(amax / (qmax / 2)), 1.0)
        zero = np.full_like(scale, 2 ** (bits - 1))
    else:
        scale = np.where(hi > lo, f16((hi - lo) / qmax), 1.0)
        zero = np.clip(np.round(-lo / scale), 0, qmax)
    return scale, zero

def quant(x, scale, zero, bits):
    u = np.clip(np.round(x.astype(np.float32) / scale) + zero, 0, 2 ** bits - 1)
    return (scale * (u - zero)).astype(np.float32).astype(np.float64)

def gptq(W, H, bits, group, sym, act_order, block, damp):
    W = W.astype(np.float64).copy(); H = H.copy(); cols = W.shape[1]
    dead = np.diag(H) == 0
    H[dead, dead] = 1; W[:, dead] = 0
    perm = np.argsort(-np.diag(H), kind='stable') if act_order else np.arange(cols)
    W = W[:, perm]; H = H[perm][:, perm]
    H[np.diag_indices(cols)] += damp * np.mean(np.diag(H))
    U = np.linalg.cholesky(np.linalg.inv(H)).T  # upper, U^T U = H^-1
    Q = np.zeros_like(W)
    params = fit(W, bits, sym) if group == 0 else None
    for i1 in range(0, cols, block):
        i2 = min(i1 + block, cols)
        W1 = W[:, i1:i2].copy(); E = np.zeros_like(W1)
        for i in range(i2 - i1):
            q = i1 + i
            if group and q % group == 0:
                cur = np.concatenate([W1[:, i:], W[:, i2:]], axis=1)[:, :group]
                params = fit(cur, bits, sym)
            w = W1[:, i]; d = U[q, q]
            qv = quant(w, *params, bits)
            Q[:, q] = qv
            e = (w - qv) / d
            W1[:, i:] -= np.outer(e, U[q, q:i2])
            E[:, i] = e
        W[:, i2:] -= E @ U[i1:i2, i2:]
    out = np.empty_like(Q); out[:, perm] = Q
    return out

def rtn(W, bits, group, sym):
    cols = W.shape[1]; g = group or cols; out = np.empty(W.shape)
    for c0 in range(0, cols, g):
        s, z = fit(W[:, c0:c0 + g], bits, sym)
        out[:, c0:c0 + g] = quant(W[:, c0:c0 + g].astype(np.float64), s[:, None], z[:, None], bits)
    return out

def main():
    p = argparse.ArgumentParser()
    p.add_argument('W'); p.add_argument('X')
    p.add_argument('--bits', type=int, default=4); p.add_argument('--group', type=int, default=0)
    p.add_argument('--sym', action='store_true'); p.add_argument('--act-order', action='store_true')
    p.add_argument('--block', type=int, default=128); p.add_argument('--damp', type=float, default=0.01)
    p.add_argument('--out', default='/tmp/gptq_reference_Wq.npy', help='where to save the GPTQ weights (f32 .npy)')
    a = p.parse_args()
    W = np.load(a.W); X = np.load(a.X).astype(np.float64)
    G = X.T @ X; H = 2 * G / X.shape[0]
    def err(Wq):
        D = W.astype(np.float64) - Wq
        return float(np.einsum('ij,jk,ik->', D, G, D))
    Wg = gptq(W, H, a.bits, a.group, a.sym, a.act_order, a.block, a.damp)
    Wr = rtn(W, a.bits, a.group, a.sym)
    print(json.dumps({'gptq_err_output': err(Wg), 'rtn_err_output': err(Wr), 'gptq_err_weight': float(((W - Wg) ** 2).sum())}))
    np.save(a.out, Wg.astype(np.float32))

if __name__ == '__main__':
    main()
