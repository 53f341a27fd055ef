#!/usr/bin/python3
"""PyTorch reference for lowbit's training backward (packages/runtime/test/backward-torch.test.ts).

Usage: torch_llama_grad.py DIR            (float64 loss and gradients as JSON)
       torch_llama_grad.py DIR --bench N [--threads T]  (float32, T threads (default 1): N AdamW steps
                                                   on the window, prints tokens/s and the CPU seconds)
DIR holds config.json ({dim, hiddenDim, nLayers, nHeads, nKvHeads, headDim, vocabSize, normEps,
ropeTheta, ropeDim}), tokens.json (the window: tokens[:-1] predict tokens[1:]), probe.json
({name: [flat indices]}) and one <GGUF tensor name>.npy per weight (linears [rows, cols], token_embd
[vocab, dim], norms [dim]; output.weight absent when tied to token_embd).

Builds the Llama forward from torch ops (independently of lowbit's code: RoPE on adjacent pairs
(2i, 2i+1) as GGUF stores Wq/Wk, causal GQA by repeating KV heads, SwiGLU), runs it in float64,
lets autograd take the gradient of the mean next-token cross-entropy and prints JSON:
{loss, norms: {name: ‖grad‖₂}, entries: {name: [grad at the probe indices]}}.
Test tooling only; never a dependency of the product.
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch


def main(d, bench=0, threads=1):
    cfg = json.load(open(os.path.join(d, 'config.json')))
    tokens = json.load(open(os.path.join(d, 'tokens.json')))
    names = [f[:-4] for f in os.listdir(d) if f.endswith('.npy')]
    dt = torch.float32 if bench else torch.float64
    W = {n: torch.tensor(np.load(os.path.join(d, n + '.npy')), dtype=dt, requires_grad=True) for n in names}

    dim, hd = cfg['dim'], cfg['headDim']
    nh, nkv, rd = cfg['nHeads'], cfg['nKvHeads'], cfg['ropeDim']
    eps = cfg['normEps']
    inp = torch.tensor(tokens[:-1])
    tgt = torch.tensor(tokens[1:])
    n = len(tokens) - 1

    def rms(x, w):
        return w * (x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps))

    pos = torch.arange(n, dtype=dt)[:, None]
    freq = cfg['ropeTheta'] ** (-torch.arange(0, rd, 2, dtype=dt) / rd)
    ang = pos * freq[None, :]  # (n, rd/2)
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]

    def rope(x, heads):
        x = x.view(n, heads, hd)
        r, rest = x[..., :rd], x[..., rd:]
        a, b = r[..., 0::2], r[..., 1::2]
        rot = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
        return torch.cat([rot, rest], dim=-1)

    def forward():
        return loss_of(W, inp, tgt, n, dim, hd, nh, nkv, cfg, rms, rope)

    if bench:
        torch.set_num_threads(threads)
        opt = torch.optim.AdamW(list(W.values()), lr=1e-4)
        for i in range(bench + 2):
            if i == 2:
                t0 = time.perf_counter()  # two warm-up steps
                c0 = time.process_time()  # CPU time of every thread of this process
            opt.zero_grad()
            forward().backward()
            opt.step()
        s = time.perf_counter() - t0
        cpu = time.process_time() - c0
        print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'tokens_per_step': n, 'steps': bench, 'seconds': s, 'cpu_seconds': cpu, 'tokens_per_s': n * bench / s}))
        return
    loss = forward()
    loss.backward()
    probe = json.load(open(os.path.join(d, 'probe.json')))
    res = {
        'torch': torch.__version__,
        'loss': loss.item(),
        'norms': {n_: W[n_].grad.norm().item() for n_ in names},
        'entries': {n_: [W[n_].grad.flatten()[i].item() for i in idx] for n_, idx in probe.items()},
    }
    print(json.dumps(res))


def loss_of(W, inp, tgt, n, dim, hd, nh, nkv, cfg, rms, rope):
    x = W['token_embd.weight'][inp]
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    for l in range(cfg['nLayers']):
        p = lambda t: W[f'blk.{l}.{t}.weight']
        xb = rms(x, p('attn_norm'))
        q = rope(xb @ p('attn_q').T, nh).transpose(0, 1)  # (nh, n, hd)
        k = rope(xb @ p('attn_k').T, nkv).transpose(0, 1)
        v = (xb @ p('attn_v').T).view(n, nkv, hd).transpose(0, 1)
        rep = nh // nkv
        k = k.repeat_interleave(rep, 0)
        v = v.repeat_interleave(rep, 0)
        s = (q @ k.transpose(1, 2)) / math.sqrt(hd)
        s = s.masked_fill(mask, float('-inf'))
        a = torch.softmax(s, -1) @ v  # (nh, n, hd)
        x = x + a.transpose(0, 1).reshape(n, dim) @ p('attn_output').T
        xb = rms(x, p('ffn_norm'))
        h = torch.nn.functional.silu(xb @ p('ffn_gate').T) * (xb @ p('ffn_up').T)
        x = x + h @ p('ffn_down').T
    xf = rms(x, W['output_norm.weight'])
    out = W['output.weight'] if 'output.weight' in W else W['token_embd.weight']
    logits = xf @ out.T
    return torch.nn.functional.cross_entropy(logits, tgt)


if __name__ == '__main__':
    a = sys.argv[2:]
    opt = lambda flag, default: int(a[a.index(flag) + 1]) if flag in a and a.index(flag) + 1 < len(a) else default
    main(sys.argv[1], opt('--bench', 0), opt('--threads', 1))
