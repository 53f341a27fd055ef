"""Golden bytes of llama.cpp's own quantize_row_{q8_0,q4_0,q4_1,q5_0,q5_1,iq4_nl}_ref (libggml-base.so
shipped by node-llama-cpp) and of quantize_iq4_nl (what llama-quantize writes) on fixed inputs with
edge cases, and the values its dequantize_row_{q5_0,q5_1,iq4_nl} give for those bytes, for packages/runtime/test/ggml-quants.test.ts.
Usage: python3 tools/ggml-quants-golden.py packages/runtime/test/fixtures/ggml-quants-golden.json"""
import ctypes, struct, math, json, sys, glob
lib = ctypes.CDLL(glob.glob('tools/llama-cpp/node_modules/@node-llama-cpp/linux-x64/bins/*/libggml-base.so')[0])
def vals():
    v = []
    for i in range(32 * 6): v.append(math.sin(i * 1.7) * (1 + (i % 7)))
    # edge blocks: zeros; exact ties for q8 (x/d = k + 0.5); negative max; tiny; one big outlier; all equal
    v += [0.0] * 32
    v += [127.0] + [(k + 0.5) for k in range(-15, 16)]
    v += [-8.0] + [(k * 0.5) for k in range(-15, 16)]
    v += [1e-30 * (i - 16) for i in range(32)]
    v += [1000.0] + [0.001 * i for i in range(31)]
    v += [3.25] * 32
    return v
x = vals()
n = len(x)
arr = (ctypes.c_float * n)(*x)
out = {}
for name, bs in [('q8_0', 34), ('q4_0', 18), ('q4_1', 20), ('q5_0', 22), ('q5_1', 24), ('iq4_nl', 18)]:
    buf = ctypes.create_string_buffer(n // 32 * bs)
    getattr(lib, f'quantize_row_{name}_ref')(arr, buf, ctypes.c_int64(n))
    out[name] = buf.raw.hex()
    if name in ('q5_0', 'q5_1', 'iq4_nl'):
        y = (ctypes.c_float * n)()
        getattr(lib, f'dequantize_row_{name}')(buf, y, ctypes.c_int64(n))
        out[f'{name}_dequant'] = list(y)
# IQ4_NL as llama-quantize writes it: quantize_iq4_nl (7 scale tries either side; without an importance
# matrix each weight is x²), not quantize_row_iq4_nl_ref (no search)
buf = ctypes.create_string_buffer(n // 32 * 18)
lib.quantize_iq4_nl(arr, buf, ctypes.c_int64(1), ctypes.c_int64(n), None)
out['iq4_nl_quantize'] = buf.raw.hex()
out['x'] = [struct.unpack('f', struct.pack('f', v))[0] for v in x]
json.dump(out, open(sys.argv[1], 'w'))
print(n, {k: len(v) for k, v in out.items()})
