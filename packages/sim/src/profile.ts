// Turning a published profile (one precision per conv profile unit, optional FC precisions) or a
// user's list into one {act, wgt} pair per layer, with the checks that make a wrong count an error.
import { LowbitError } from '@lowbit/core';
import { type LayerPrecision, checkPrecision } from './layers.js';
import type { Network, NetworkProfile } from './networks.js';

export function convUnits(net: Network): number[] {
  const convs = net.layers.filter((l) => l.type !== 'fc').length;
  const units = net.units ?? Array.from({ length: convs }, (_, i) => i);
  if (units.length !== convs) throw new LowbitError('E_SHAPE', `network ${net.name}: ${units.length} profile units for ${convs} conv layers`);
  return units;
}

export function unitCount(net: Network): number {
  const u = convUnits(net);
  return u.length === 0 ? 0 : Math.max(...u) + 1;
}

/** Per-layer precisions from a profile; every value checked to lie in 1..16. */
export function resolvePrecisions(net: Network, profile: NetworkProfile): LayerPrecision[] {
  const units = convUnits(net);
  const n = unitCount(net);
  const fcs = net.layers.filter((l) => l.type === 'fc').length;
  const where = `network ${net.name} profile ${profile.name}`;
  if (profile.convAct.length !== n) throw new LowbitError('E_SHAPE', `${where}: ${profile.convAct.length} activation precisions for ${n} conv layers${n !== units.length ? ' (profile units)' : ''}`);
  if (profile.convWgt && profile.convWgt.length !== n) throw new LowbitError('E_SHAPE', `${where}: ${profile.convWgt.length} weight precisions for ${n} conv layers`);
  for (const [k, v] of [['fcAct', profile.fcAct], ['fcWgt', profile.fcWgt]] as const) {
    if (v && v.length !== fcs) throw new LowbitError('E_SHAPE', `${where}: ${k} has ${v.length} entries for ${fcs} fc layers`);
  }
  const out: LayerPrecision[] = [];
  let ci = 0;
  let fi = 0;
  for (const l of net.layers) {
    let p: LayerPrecision;
    if (l.type === 'fc') {
      p = { act: profile.fcAct?.[fi] ?? 16, wgt: profile.fcWgt?.[fi] ?? 16 };
      fi++;
    } else {
      const u = units[ci++];
      p = { act: profile.convAct[u], wgt: profile.convWgt?.[u] ?? 16 };
    }
    checkPrecision(p.act, `${where} layer ${l.name} activations`);
    checkPrecision(p.wgt, `${where} layer ${l.name} weights`);
    out.push(p);
  }
  return out;
}

/** `--profile 9,8,5,5,7`: one activation precision per conv profile unit, weights 16-bit. */
export function parseProfileList(net: Network, text: string): NetworkProfile {
  const convAct = text.split(',').map((s) => Number(s.trim()));
  for (const p of convAct) checkPrecision(p, `--profile for ${net.name}`);
  const profile: NetworkProfile = { name: 'user', tag: 'V', source: 'command line', convAct };
  resolvePrecisions(net, profile);
  return profile;
}

/** A profile file: JSON {convAct, convWgt?, fcAct?, fcWgt?}, checked against the network. */
export function parseProfileJson(net: Network, text: string, file: string): NetworkProfile {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new LowbitError('E_BAD_FILE', `profile ${file}: not JSON (${(e as Error).message})`);
  }
  const o = obj as Partial<NetworkProfile>;
  const arr = (v: unknown, k: string, required: boolean): number[] | undefined => {
    if (v === undefined && !required) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new LowbitError('E_BAD_FILE', `profile ${file}: field ${k} must be an array of numbers`);
    return v as number[];
  };
  const profile: NetworkProfile = {
    name: file, tag: 'V', source: file, convAct: arr(o.convAct, 'convAct', true)!,
    convWgt: arr(o.convWgt, 'convWgt', false), fcAct: arr(o.fcAct, 'fcAct', false), fcWgt: arr(o.fcWgt, 'fcWgt', false),
  };
  resolvePrecisions(net, profile);
  return profile;
}
