import { dequantizeInt } from '@lowbit/formats';
import { describe, expect, it } from 'vitest';
import { Gptq, type GridParams, IntGrid, gptqQuantize, gramMatrix, isLowbitError, outputError, rtnQuantize } from '../src/index.js';
import { rng } from './helpers.js';

/** Correlated inputs with unequal channel scales, like real activations (so act-order matters). */
function layer(rows: number, cols: number, samples: number, seed: number) {
  const r = rng(seed);
  const w = Float32Array.from({ length: rows * cols }, r);
  const mix = Float64Array.from({ length: cols * cols }, () => r() * 0.5);
  const x = new Float32Array(samples * cols);
  for (let s = 0; s < samples; s++) {
    const z = Float64Array.from({ length: cols }, r);
    for (let c = 0; c < cols; c++) {
      let v = z[c];
      for (let k = 0; k < cols; k++) v += mix[c * cols + k] * z[k];
      x[s * cols + c] = v * (1 + (c % 5));
    }
  }
  return { w, x };
}

/** Gauss–Jordan inverse with partial pivoting: independent of the Cholesky code under test. */
function inverse(A: Float64Array, n: number): Float64Array {
  const a = Float64Array.from(A);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r * n + c]) > Math.abs(a[p * n + c])) p = r;
    for (let k = 0; k < n; k++) {
      [a[c * n + k], a[p * n + k]] = [a[p * n + k], a[c * n + k]];
      [inv[c * n + k], inv[p * n + k]] = [inv[p * n + k], inv[c * n + k]];
    }
    const d = a[c * n + c];
    for (let k = 0; k < n; k++) {
      a[c * n + k] /= d;
      inv[c * n + k] /= d;
    }
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = a[r * n + c];
      for (let k = 0; k < n; k++) {
        a[r * n + k] -= f * a[c * n + k];
        inv[r * n + k] -= f * inv[c * n + k];
      }
    }
  }
  return inv;
}

/**
 * OBS written from the GPTQ paper, slowly: quantize columns one at a time in the chosen order;
 * after each, re-invert the Hessian of the remaining columns F and apply
 *   δ_F = −(w_q − quant(w_q)) / [H_F⁻¹]_qq · (H_F⁻¹)_{:,q}   (eq. 2)
 * to every row. Groups get their grid from the current weights when their first column comes
 * up (act-order: in quantization order), or from the original weights with static groups.
 */
function slowObs(w: Float32Array, rows: number, cols: number, H0: Float64Array, o: { bits: number; sym: boolean; group: number; actOrder: boolean; staticGroups: boolean; damp: number; ic?: boolean }) {
  const grid = new IntGrid({ bits: o.bits, symmetric: o.sym });
  const G = o.group || cols;
  const H = Float64Array.from(H0);
  const W = Float64Array.from(w);
  for (let c = 0; c < cols; c++) if (H[c * cols + c] === 0) {
    H[c * cols + c] = 1;
    for (let r = 0; r < rows; r++) W[r * cols + c] = 0;
  }
  let mean = 0;
  for (let c = 0; c < cols; c++) mean += H[c * cols + c] / cols;
  for (let c = 0; c < cols; c++) H[c * cols + c] += o.damp * mean;
  const order = Array.from({ length: cols }, (_, i) => i);
  if (o.actOrder) order.sort((a, b) => H0[b * cols + b] - H0[a * cols + a] || a - b);
  const staticP: GridParams[] = [];
  for (let g = 0; g < Math.ceil(cols / G); g++) staticP.push(grid.findParams(W, rows, cols, g * G, Math.min(cols, (g + 1) * G)));
  const Q = new Float64Array(rows * cols);
  let p: GridParams = staticP[0];
  for (let i = 0; i < cols; i++) {
    const q = order[i];
    const F = order.slice(i); // remaining columns, q first
    const m = F.length;
    const HF = new Float64Array(m * m);
    for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) HF[a * m + b] = H[F[a] * cols + F[b]];
    const Hinv = inverse(HF, m);
    if (o.ic) {
      // per-input-channel: this column's rows in groups of `group`, fitted on their current values
      const gr = o.group || rows;
      const col = Float64Array.from({ length: rows }, (_, r) => W[r * cols + q]);
      const sc = new Float64Array(rows);
      const zr = new Float64Array(rows);
      for (let r0 = 0; r0 < rows; r0 += gr) {
        const one = grid.findParams(col.slice(r0, Math.min(rows, r0 + gr)), 1, Math.min(rows, r0 + gr) - r0, 0, Math.min(rows, r0 + gr) - r0);
        sc.fill(one.scale[0], r0, r0 + gr);
        zr.fill(one.zero[0], r0, r0 + gr);
      }
      p = { scale: sc, zero: zr };
    } else if (o.staticGroups && o.group) p = staticP[Math.floor(q / G)];
    else if (i % G === 0) {
      const cur = new Float64Array(rows * Math.min(G, m));
      const width = Math.min(G, m);
      for (let r = 0; r < rows; r++) for (let k = 0; k < width; k++) cur[r * width + k] = W[r * cols + F[k]];
      p = grid.findParams(cur, rows, width, 0, width);
    }
    for (let r = 0; r < rows; r++) {
      const x = W[r * cols + q];
      const qv = grid.value(grid.code(x, r, p), r, p);
      Q[r * cols + q] = qv;
      const e = (x - qv) / Hinv[0];
      for (let k = 0; k < m; k++) W[r * cols + F[k]] -= e * Hinv[k];
    }
  }
  return Q;
}

const relDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / n);
};

describe('GPTQ against a direct OBS implementation', () => {
  const rows = 12;
  const cols = 40;
  const { w, x } = layer(rows, cols, 200, 1);
  const gram = gramMatrix(x, 200, cols);
  const acc = new Gptq(cols);
  acc.addBatch(x, 120);
  acc.addBatch(x.subarray(120 * cols), 80);
  const H = acc.hessian();

  it('accumulates H = (2/N)·XᵀX over batches', () => {
    for (let i = 0; i < cols * cols; i++) expect(H[i]).toBeCloseTo((2 / 200) * gram[i], 9);
    expect(acc.samples).toBe(200);
  });

  const cases = [
    { name: 'per-channel 4-bit sym', bits: 4, sym: true, group: 0, actOrder: false, staticGroups: false },
    { name: '3-bit asym, group 8', bits: 3, sym: false, group: 8, actOrder: false, staticGroups: false },
    { name: '4-bit group 8 + act-order', bits: 4, sym: true, group: 8, actOrder: true, staticGroups: false },
    { name: '4-bit group 16 + act-order + static groups', bits: 4, sym: false, group: 16, actOrder: true, staticGroups: true },
    { name: '2-bit group 12 (partial last group) + act-order', bits: 2, sym: false, group: 12, actOrder: true, staticGroups: false },
  ];
  for (const c of cases) {
    // Block size 7 so lazy batches cut through groups: the result must not depend on B.
    for (const blockSize of [7, 128]) {
      it(`${c.name}, block ${blockSize}: same codes as sequential OBS`, () => {
        const grid = new IntGrid({ bits: c.bits, symmetric: c.sym });
        const r = gptqQuantize(w, [rows, cols], H, { grid, group: c.group, actOrder: c.actOrder, staticGroups: c.staticGroups, damp: 0.01, blockSize });
        const ref = slowObs(w, rows, cols, H, { ...c, damp: 0.01 });
        // Same algorithm, different float association (Cholesky vs Gauss–Jordan): an f64 difference
        // of ~1e-13 can flip a value sitting on a rounding midpoint, which then propagates; allow none here.
        expect(relDiff(r.weights, ref)).toBeLessThan(1e-6);
        if (r.packed) expect(dequantizeInt(r.packed)).toEqual(r.weights);
        expect(r.packed === null).toBe(c.actOrder && !c.staticGroups && c.group > 0);
      });
    }
  }

  it('the order matters: act-order gives other codes than the natural order (so the comparison above can fail)', () => {
    const grid = new IntGrid({ bits: 4 });
    const a = gptqQuantize(w, [rows, cols], H, { grid, group: 8, actOrder: true });
    const b = gptqQuantize(w, [rows, cols], H, { grid, group: 8 });
    expect(relDiff(a.weights, b.weights)).toBeGreaterThan(1e-2);
  });

  for (const ic of [{ group: 0, actOrder: false }, { group: 5, actOrder: true }]) {
    it(`per-input-channel groups (AdaDim), rows per group ${ic.group || 'all'}${ic.actOrder ? ', act-order' : ''}: same as sequential OBS, packed as formats group-rows`, () => {
      const grid = new IntGrid({ bits: 3, symmetric: false });
      const r = gptqQuantize(w, [rows, cols], H, { grid, dim: 'ic', group: ic.group, actOrder: ic.actOrder, blockSize: 7 });
      const ref = slowObs(w, rows, cols, H, { bits: 3, sym: false, group: ic.group, actOrder: ic.actOrder, staticGroups: false, damp: 0.01, ic: true });
      expect(relDiff(r.weights, ref)).toBeLessThan(1e-6);
      expect(r.packed?.granularity).toBe('group-rows');
      expect(dequantizeInt(r.packed!)).toEqual(r.weights);
      const rt = rtnQuantize(w, [rows, cols], { bits: 3, symmetric: false, granularity: ic.group ? 'group-rows' : 'per-ic', group: ic.group || undefined });
      expect(outputError(w, r.weights, [rows, cols], gram)).toBeLessThan(outputError(w, rt.weights, [rows, cols], gram));
    });
  }

  it('act-order without static groups records the permuted group of each column', () => {
    const r = gptqQuantize(w, [rows, cols], H, { grid: new IntGrid({ bits: 4 }), group: 8, actOrder: true });
    const order = Array.from({ length: cols }, (_, i) => i).sort((a, b) => H[b * cols + b] - H[a * cols + a] || a - b);
    order.forEach((col, pos) => expect(r.groupIndex[col]).toBe(Math.floor(pos / 8)));
    for (let rr = 0; rr < rows; rr++) {
      for (let cc = 0; cc < cols; cc++) {
        const s = rr * 5 + r.groupIndex[cc];
        expect(r.weights[rr * cols + cc]).toBe(Math.fround(r.scales[s] * (r.codes[rr * cols + cc] - 8)));
      }
    }
  });

  it('beats RTN on the output error at every setting', () => {
    for (const c of cases) {
      const grid = new IntGrid({ bits: c.bits, symmetric: c.sym });
      const g = gptqQuantize(w, [rows, cols], H, { grid, group: c.group, actOrder: c.actOrder, staticGroups: c.staticGroups });
      const rt = rtnQuantize(w, [rows, cols], { bits: c.bits, symmetric: c.sym, group: c.group || undefined });
      expect(outputError(w, g.weights, [rows, cols], gram)).toBeLessThan(outputError(w, rt.weights, [rows, cols], gram));
    }
  });

  it('RTN is GPTQ with H = I (no error to spread), per channel', () => {
    const I = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++) I[i * cols + i] = 1;
    const g = gptqQuantize(w, [rows, cols], I, { grid: new IntGrid({ bits: 3 }), damp: 0 });
    expect(g.weights).toEqual(rtnQuantize(w, [rows, cols], { bits: 3 }).weights);
  });

  it('dead inputs: zero weights, counted', () => {
    const x2 = Float32Array.from(x);
    for (let s = 0; s < 200; s++) x2[s * cols + 3] = 0;
    const a = new Gptq(cols);
    a.addBatch(x2, 200);
    const r = a.quantize(w, rows, { grid: new IntGrid({ bits: 4 }), group: 8 });
    expect(r.deadColumns).toBe(1);
    for (let rr = 0; rr < rows; rr++) expect(r.weights[rr * cols + 3]).toBe(0);
  });

  it('bad input: NaN weights, no calibration, wrong shapes', () => {
    const bad = Float32Array.from(w);
    bad[5] = Number.NaN;
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isLowbitError(e) ? e.code : 'other';
      }
      return 'none';
    };
    expect(err(() => gptqQuantize(bad, [rows, cols], H, { grid: new IntGrid({ bits: 4 }) }))).toBe('E_NAN');
    expect(err(() => new Gptq(cols).quantize(w, rows, { grid: new IntGrid({ bits: 4 }) }))).toBe('E_ARG');
    expect(err(() => gptqQuantize(w, [rows, cols + 1], H, { grid: new IntGrid({ bits: 4 }) }))).toBe('E_SHAPE');
    expect(err(() => new IntGrid({ bits: 9 }))).toBe('E_ARG');
  });
});
