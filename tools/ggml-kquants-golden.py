"""Golden bytes of llama.cpp's own K-quant and MXFP4 reference quantizers (quantize_row_{q2_K..q6_K,
q8_K, mxfp4}_ref) and dequantizers (dequantize_row_*) from the libggml-base.so node-llama-cpp ships, on
fixed inputs with edge super-blocks, for packages/runtime/test/kquants.test.ts.
Usage: python3 tools/ggml-kquants-golden.py packages/runtime/test/fixtures/ggml-kquants-golden.json"""
import ctypes, struct, math, json, sys, glob
lib = ctypes.CDLL(glob.glob('tools/llama-cpp/node_modules/@node-llama-cpp/linux-x64/bins/*/libggml-base.so')[0])
QK = 256
def vals():
    v = []
    for i in range(QK * 4): v.append(math.sin(i * 1.7) * (1 + (i % 7)) * (0.02 if i < QK else 1))
    v += [0.0] * QK                                          # all zero
    v += [3.25] * QK                                         # all equal (positive: min clamps to 0)
    v += [-0.5 - 0.001 * i for i in range(QK)]               # all negative
    v += [1000.0 if i == 77 else 0.001 * (i % 13 - 6) for i in range(QK)]  # one outlier
    v += [1e-30 * (i - 128) for i in range(QK)]              # tiny (below GROUP_MAX_EPS)
    v += [(i % 16 - 8) * 0.25 for i in range(QK)]            # exact grid points (ties)
    return v
x = vals()
n = len(x)
arr = (ctypes.c_float * n)(*x)
out = {'x': [struct.unpack('f', struct.pack('f', v))[0] for v in x]}
# q8_K: ggml's activation type; only its decoder is compared (lowbit writes no Q8_K weights)
for name, bs, qk in [('q2_K', 84, QK), ('q3_K', 110, QK), ('q4_K', 144, QK), ('q5_K', 176, QK), ('q6_K', 210, QK), ('q8_K', 292, QK), ('mxfp4', 17, 32)]:
    buf = ctypes.create_string_buffer(n // qk * bs)
    getattr(lib, f'quantize_row_{name}_ref')(arr, buf, ctypes.c_int64(n))
    y = (ctypes.c_float * n)()
    getattr(lib, f'dequantize_row_{name}')(buf, y, ctypes.c_int64(n))
    out[name] = {'bytes': buf.raw.hex(), 'dequant': list(y)}
json.dump(out, open(sys.argv[1], 'w'))
print(n, {k: len(v) for k, v in out.items()})
