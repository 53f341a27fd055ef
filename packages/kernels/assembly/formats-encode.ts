// Encoders for @lowbit/formats' packed tensors (INT-k groups, OCP MX blocks, absmax codebooks such as
// NF4). The TypeScript encoders of that package are the definition: they compute in f64 (f32 inputs
// widened exactly) and round half to even; these loops do the same f64 operations in the same order,
// so codes and scales agree bit for bit. Math.log2 there is only used to find a binary exponent (with
// guards for its rounding near powers of two); here the exponent is read from the f64 bits, which is
// the value those guarded expressions have for every input that comes from f32 data.

// floor(log2(a)) for a finite a > 0 that is a normal f64 (every f32, widened, and every value below
// times a power of two inside f64's normal range).
// @ts-ignore: decorator
@inline function exponentOf(a: f64): i32 {
  return <i32>((reinterpret<u64>(a) >> 52) & 0x7ff) - 1023;
}

// 2^e for -1022 <= e <= 1023, exactly.
// @ts-ignore: decorator
@inline function pow2(e: i32): f64 {
  return reinterpret<f64>(<u64>(e + 1023) << 52);
}

// Not NaN and not ±Inf.
// @ts-ignore: decorator
@inline function isFiniteF64(v: f64): bool {
  return v - v == 0;
}

// Per-group scales (and zero points) of INT-k groups along cols, @lowbit/formats' findIntParams:
// lo/hi start at 0, symmetric scale = clip·max(−lo, hi) / ((2^k − 1)/2) (1 for an all-zero group),
// asymmetric scale = clip·(hi − lo)/(2^k − 1), zero = clamp(roundEven(−clip·lo / f32(scale)), 0, 2^k − 1).
// Returns −1, or the index of the first non-finite value (row-major) and writes nothing more.
export function int_group_params(data: usize, rows: i32, cols: i32, group: i32, bits: i32, symmetric: i32, clip: f64,
  scales: usize, zeros: usize): i32 {
  const ng = (cols + group - 1) / group;
  const qmax = <f64>((1 << bits) - 1);
  for (let r = 0; r < rows; r++) {
    const row = data + ((<usize>r * <usize>cols) << 2);
    for (let g = 0; g < ng; g++) {
      let lo: f64 = 0;
      let hi: f64 = 0;
      const c1 = min<i32>(cols, (g + 1) * group);
      for (let c = g * group; c < c1; c++) {
        const v = <f64>load<f32>(row + (<usize>c << 2));
        if (!isFiniteF64(v)) return r * cols + c;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const si = (<usize>r * <usize>ng + <usize>g) << 2;
      if (symmetric) {
        const amax = max<f64>(-lo, hi) * clip;
        store<f32>(scales + si, <f32>(amax > 0 ? amax / (qmax / 2) : 1));
      } else {
        const mn = lo * clip;
        const mx = hi * clip;
        const s = <f32>(mx > mn ? (mx - mn) / qmax : 1);
        store<f32>(scales + si, s);
        store<f32>(zeros + si, <f32>min<f64>(qmax, max<f64>(0, nearest<f64>(-mn / <f64>s))));
      }
    }
  }
  return -1;
}

// INT-k codes for given per-group scales/zeros (zeros 0: symmetric, zero = 2^(k−1)), @lowbit/formats'
// encodeIntWith: u = clamp(roundEven(v / scale) + zero, 0, 2^k − 1), truncated to an integer as the
// JS bit writer's `>>` does (NaN → 0), packed little-endian per row, each row on a byte boundary.
export function encode_int_groups(data: usize, rows: i32, cols: i32, group: i32, bits: i32, scales: usize, zeros: usize,
  codes: usize): void {
  const ng = (cols + group - 1) / group;
  const qmax = <f64>((1 << bits) - 1);
  const zsym = <f64>(1 << (bits - 1));
  const rowBytes = <usize>((cols * bits + 7) >> 3);
  for (let r = 0; r < rows; r++) {
    const row = data + ((<usize>r * <usize>cols) << 2);
    let dst = codes + <usize>r * rowBytes;
    let acc: u32 = 0;
    let nacc: u32 = 0;
    for (let g = 0; g < ng; g++) {
      const si = (<usize>r * <usize>ng + <usize>g) << 2;
      const s = <f64>load<f32>(scales + si);
      const z = zeros != 0 ? <f64>load<f32>(zeros + si) : zsym;
      const c1 = min<i32>(cols, (g + 1) * group);
      for (let c = g * group; c < c1; c++) {
        const u = min<f64>(qmax, max<f64>(0, nearest<f64>(<f64>load<f32>(row + (<usize>c << 2)) / s) + z));
        const code: u32 = u != u ? 0 : <u32>(<i32>u);
        acc |= code << nacc;
        nacc += <u32>bits;
        if (nacc >= 8) {
          store<u8>(dst++, <u8>acc);
          acc >>= 8;
          nacc -= 8;
        }
      }
    }
    if (nacc > 0) store<u8>(dst, <u8>acc);
  }
}

// One element of an MX block: @lowbit/formats' encodeMinifloat(spec, x, saturate = true) for finite x.
// @ts-ignore: decorator
@inline function encodeMinifloatSat(x: f64, mbits: i32, emin: i32, bias: i32, maxNormal: f64, minNormal: f64, signBit: u32): u32 {
  const sign: u32 = <u32>(reinterpret<u64>(x) >> 63) ? signBit : 0;
  const a = abs<f64>(x);
  // Quantum of a's binade (the subnormal quantum below the normal range), then RNE on that grid.
  const e = a == 0 ? emin : max<i32>(exponentOf(a), emin);
  let r = nearest<f64>(a * pow2(mbits - e)) * pow2(e - mbits);
  if (r > maxNormal) r = maxNormal;
  if (r == 0) return sign;
  if (r < minNormal) return sign | <u32>(<i32>nearest<f64>(r * pow2(mbits - emin)));
  const er = exponentOf(r);
  const m = <u32>(<i32>nearest<f64>((r * pow2(-er) - 1) * <f64>(1 << mbits)));
  return sign | (<u32>(er + bias) << <u32>mbits) | m;
}

// OCP MX v1.0 blocks of 32, @lowbit/formats' quantizeMx: a block holding NaN/±Inf gets scale 0xFF and
// codes 0; otherwise e = clamp(floor(log2 amax) − emaxElem, −127, 127) (−127 for an all-zero block),
// scale byte e + 127, and each element v·2^−e encoded by RNE with saturation (isInt: MXINT8,
// clamp(roundEven(64·x), −127, 127) as a two's-complement byte). One code per byte.
export function quantize_mx(values: usize, n: i32, isInt: i32, mbits: i32, emaxElem: i32, emin: i32, bias: i32, bits: i32,
  maxNormal: f64, scales: usize, codes: usize): void {
  const minNormal = pow2(emin);
  const signBit: u32 = 1 << <u32>(bits - 1);
  for (let b = 0; b < n; b += 32) {
    const end = min<i32>(n, b + 32);
    let amax: f64 = 0;
    let special = false;
    for (let i = b; i < end; i++) {
      const v = <f64>load<f32>(values + (<usize>i << 2));
      if (!isFiniteF64(v)) special = true;
      else amax = max<f64>(amax, abs<f64>(v));
    }
    if (special) {
      store<u8>(scales + <usize>(b >> 5), 0xff);
      for (let i = b; i < end; i++) store<u8>(codes + <usize>i, 0);
      continue;
    }
    let e = amax == 0 ? -127 : exponentOf(amax) - emaxElem;
    e = min<i32>(127, max<i32>(-127, e));
    store<u8>(scales + <usize>(b >> 5), <u8>(e + 127));
    const inv = pow2(-e);
    if (isInt) {
      for (let i = b; i < end; i++) {
        const q = min<f64>(127, max<f64>(-127, nearest<f64>(<f64>load<f32>(values + (<usize>i << 2)) * inv * 64)));
        store<u8>(codes + <usize>i, <u8>(<i32>q));
      }
    } else {
      for (let i = b; i < end; i++) {
        const x = <f64>load<f32>(values + (<usize>i << 2)) * inv;
        store<u8>(codes + <usize>i, <u8>encodeMinifloatSat(x, mbits, emin, bias, maxNormal, minNormal, signBit));
      }
    }
  }
}

// Absmax groups along cols with a sorted table of 2^bits values (NF4 and the like), @lowbit/formats'
// quantizeNf4: scale = max |v| of the group (1 if 0), code = nearestIndex(table, v / scale) in f64
// (the same binary search, ties to the lower index). Returns −1, or the index of the first non-finite
// value (row-major), having written nothing reliable.
export function quantize_absmax_lut(data: usize, rows: i32, cols: i32, group: i32, bits: i32, table: usize,
  scales: usize, codes: usize): i32 {
  const ng = (cols + group - 1) / group;
  const size = 1 << bits;
  const rowBytes = <usize>((cols * bits + 7) >> 3);
  const t0 = <f64>load<f32>(table);
  const tn = <f64>load<f32>(table + (<usize>(size - 1) << 2));
  for (let r = 0; r < rows; r++) {
    const row = data + ((<usize>r * <usize>cols) << 2);
    let dst = codes + <usize>r * rowBytes;
    let acc: u32 = 0;
    let nacc: u32 = 0;
    for (let g = 0; g < ng; g++) {
      const c0 = g * group;
      const c1 = min<i32>(cols, c0 + group);
      let amax: f64 = 0;
      for (let c = c0; c < c1; c++) {
        const v = <f64>load<f32>(row + (<usize>c << 2));
        if (!isFiniteF64(v)) return r * cols + c;
        amax = max<f64>(amax, abs<f64>(v));
      }
      const s = amax > 0 ? amax : 1;
      store<f32>(scales + ((<usize>r * <usize>ng + <usize>g) << 2), <f32>s);
      for (let c = c0; c < c1; c++) {
        const v = <f64>load<f32>(row + (<usize>c << 2)) / s;
        let idx = 0;
        if (v <= t0) idx = 0;
        else if (v >= tn) idx = size - 1;
        else {
          let lo = 0;
          let hi = size - 1;
          while (hi - lo > 1) {
            const mid = (lo + hi) >> 1;
            if (<f64>load<f32>(table + (<usize>mid << 2)) <= v) lo = mid;
            else hi = mid;
          }
          idx = v - <f64>load<f32>(table + (<usize>lo << 2)) <= <f64>load<f32>(table + (<usize>hi << 2)) - v ? lo : hi;
        }
        acc |= <u32>idx << nacc;
        nacc += <u32>bits;
        if (nacc >= 8) {
          store<u8>(dst++, <u8>acc);
          acc >>= 8;
          nacc -= 8;
        }
      }
    }
    if (nacc > 0) store<u8>(dst, <u8>acc);
  }
  return -1;
}
