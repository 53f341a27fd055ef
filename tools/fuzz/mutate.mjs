// Mutators of the fuzz harness: byte-level (bit flips, interesting integers at header offsets,
// cuts, splices) and structure-aware (JSON headers of safetensors / LBPT / tokenizer.json /
// config.json, GGUF metadata values). Every choice comes from a seeded PRNG, so input i of reader r
// under seed s is the same bytes on every run and in every child process.

/** mulberry32: a small, fast, well-mixed 32-bit generator. */
export function prng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r = {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (xs) => xs[Math.floor(next() * xs.length)],
    chance: (p) => next() < p,
  };
  return r;
}

/** A 32-bit hash of the parts (FNV-1a over their text), to seed input i of a reader. */
export function hashSeed(...parts) {
  let h = 0x811c9dc5;
  for (const ch of parts.join('\u0000')) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const INTERESTING_U32 = [0, 1, 2, 3, 7, 8, 31, 32, 33, 63, 64, 127, 128, 255, 256, 1023, 4096, 65535, 65536, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 1e9 >>> 0, 2 ** 22, 2 ** 24];
const INTERESTING_U64 = [0n, 1n, 8n, 0x7fffffffn, 0xffffffffn, 0x100000000n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, 1000000000n, 1000000000000n];

/** Byte offsets are drawn mostly from the first `hot` bytes: headers are where parsers decide. */
function offset(r, n, hot) {
  if (n === 0) return 0;
  return r.chance(0.75) ? r.int(Math.min(n, hot)) : r.int(n);
}

/** One to four stacked byte-level mutations of `input` (a copy; the input is not changed). */
export function mutateBytes(input, r, hot = 4096) {
  let b = input.slice();
  const rounds = 1 + r.int(4);
  for (let k = 0; k < rounds; k++) {
    const n = b.length;
    switch (r.int(10)) {
      case 0: { // flip a bit
        if (!n) break;
        const o = offset(r, n, hot);
        b[o] ^= 1 << r.int(8);
        break;
      }
      case 1: { // an interesting byte
        if (!n) break;
        b[offset(r, n, hot)] = r.pick([0, 1, 0x7f, 0x80, 0xff, 0x20, 0x22, 0x2d, 0x30, 0x39, 0x5b, 0x7b]);
        break;
      }
      case 2: case 3: { // an interesting u32 (LE), at an aligned or unaligned offset
        if (n < 4) break;
        let o = offset(r, n - 3, hot);
        if (r.chance(0.6)) o -= o % 4;
        new DataView(b.buffer).setUint32(o, r.pick(INTERESTING_U32) >>> 0, true);
        break;
      }
      case 4: { // an interesting u64 (LE)
        if (n < 8) break;
        let o = offset(r, n - 7, hot);
        if (r.chance(0.6)) o -= o % 8;
        new DataView(b.buffer).setBigUint64(o, r.pick(INTERESTING_U64), true);
        break;
      }
      case 5: { // cut the tail
        b = b.slice(0, r.int(n + 1));
        break;
      }
      case 6: { // delete a chunk
        if (!n) break;
        const o = offset(r, n, hot);
        const len = 1 + r.int(Math.min(64, n - o));
        b = concat(b.subarray(0, o), b.subarray(o + len));
        break;
      }
      case 7: { // duplicate a chunk somewhere else
        if (!n) break;
        const o = offset(r, n, hot);
        const len = 1 + r.int(Math.min(64, n - o));
        const at = offset(r, n, hot);
        b = concat(b.subarray(0, at), b.slice(o, o + len), b.subarray(at));
        break;
      }
      case 8: { // random bytes over a short run
        if (!n) break;
        const o = offset(r, n, hot);
        const len = 1 + r.int(Math.min(16, n - o));
        for (let i = 0; i < len; i++) b[o + i] = r.int(256);
        break;
      }
      default: { // add or subtract a small amount from a byte (counts off by one)
        if (!n) break;
        const o = offset(r, n, hot);
        b[o] = (b[o] + r.pick([1, -1, 2, -2, 16, -16])) & 0xff;
      }
    }
  }
  return b;
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__', 'length'];

function interestingValue(r) {
  switch (r.int(16)) {
    case 0: return null;
    case 1: return -1;
    case 2: return 0;
    case 3: return 1.5;
    case 4: return 2 ** 32;
    case 5: return 1e9;
    case 6: return 2 ** 53;
    case 7: return -(2 ** 31);
    case 8: return r.pick(['', 'x', 'NaN', 'Infinity', '-1', '1e999', '__proto__', 'toString', 'constructor']);
    case 9: return [];
    case 10: return {};
    case 11: return r.chance(0.5);
    case 12: return 'A'.repeat(r.pick([1000, 100000]));
    case 13: return [r.pick([null, -1, 'x', 2.5, 1e9])];
    case 14: return { polluted: 1 };
    default: return r.int(4) - 1;
  }
}

/** Every (parent, key) slot of a JSON value, up to `limit` of them (large vocabularies are sampled). */
function slots(root, r, limit = 4000) {
  const out = [];
  const stack = [[null, null, root]];
  while (stack.length) {
    const [parent, key, v] = stack.pop();
    if (parent !== null) out.push([parent, key]);
    if (v && typeof v === 'object') {
      const keys = Object.keys(v);
      // a vocabulary of thousands of entries: visit a sample, so deep fields stay likely picks
      const chosen = keys.length > 64 ? Array.from({ length: 64 }, () => keys[r.int(keys.length)]) : keys;
      for (const k of chosen) stack.push([v, Array.isArray(v) ? Number(k) : k, v[k]]);
    }
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * One to three structure-aware edits of a JSON value: replace a value with an interesting one, negate
 * or scale a number, delete a key or an element, add a hostile key (`__proto__`, `constructor`, …)
 * as an own property, or turn a number into a string. Returns the new JSON text.
 */
export function mutateJson(text, r) {
  let root;
  try {
    root = JSON.parse(text);
  } catch {
    return text;
  }
  const rounds = 1 + r.int(3);
  for (let k = 0; k < rounds; k++) {
    const all = slots(root, r);
    if (!all.length) {
      root = interestingValue(r);
      continue;
    }
    const [parent, key] = r.pick(all);
    const v = parent[key];
    switch (r.int(8)) {
      case 0: case 1:
        parent[key] = interestingValue(r);
        break;
      case 2:
        if (typeof v === 'number') parent[key] = r.pick([-v, v * 1e6, v + 1, v - 1, v / 2, String(v)]);
        else parent[key] = interestingValue(r);
        break;
      case 3:
        if (Array.isArray(parent)) parent.splice(key, 1);
        else delete parent[key];
        break;
      case 4: {
        const target = v && typeof v === 'object' && !Array.isArray(v) ? v : parent;
        if (!Array.isArray(target)) Object.defineProperty(target, r.pick(HOSTILE_KEYS), { value: interestingValue(r), enumerable: true, configurable: true, writable: true });
        break;
      }
      case 5:
        if (Array.isArray(v) && v.length) v.push(v[r.int(v.length)]);
        else parent[key] = interestingValue(r);
        break;
      case 6:
        if (Array.isArray(v)) v.length = r.int(v.length + 1);
        else parent[key] = interestingValue(r);
        break;
      default:
        if (typeof v === 'string' && v.length) parent[key] = r.pick([v + v, v.slice(1), `${v}\u0000`, v.toUpperCase(), '(' + v, `[${v}`]);
        else parent[key] = interestingValue(r);
    }
  }
  return JSON.stringify(root);
}
