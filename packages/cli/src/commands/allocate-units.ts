// `lowbit allocate`'s allocation units besides one linear layer: --granularity block (all linears of
// a transformer block share a configuration) and --embed-buckets N (token embedding rows split by
// calibration frequency into N buckets, each with its own width), as in the low-bit NMT paper.
import {
  type AllocationMethod, applyAllocation, applyEmbeddingChoice, blockMeasurement, type CladoMeasurement, type EmbeddingMeasurement, expandBlockChoice,
  measureBlocks, measureEmbeddingBuckets, mergeMeasurements,
} from '@lowbit/quantizers';
import { type DecoderModel, bucketedBytes, embeddingFromBuckets } from '@lowbit/runtime';
import type { PackedIntTensor } from '@lowbit/formats';
import { UsageError } from '../command.js';

export const unitFlags = {
  granularity: { type: 'string', choices: ['layer', 'block', 'block-measured'], default: 'layer', description: 'allocation unit: each linear layer, or each transformer block (its linears share one configuration): G summed per block, or block ΔL measured' },
  'embed-buckets': { type: 'integer', min: 0, default: 0, placeholder: 'n', description: 'also allocate token_embd: n buckets of rows by token frequency (equal calibration mass), one INT-k width each, kept in --out (lowbit reads it)' },
} as const;

export interface Units {
  /** The measurement the allocator sees (blocks and/or embedding buckets included). */
  measurement: CladoMeasurement;
  /** Puts a choice (over `measurement`'s groups) into the model; returns the packed INT-k linears for the writer. */
  apply(choice: readonly number[]): Map<string, PackedIntTensor>;
  /** The embedding buckets' measurement (null without --embed-buckets). */
  embedding: EmbeddingMeasurement | null;
  /** Per-layer choice of the last `apply` (into the layer measurement). */
  layerChoice: number[];
  /** Layer indices (into the layer measurement) of each unit of `measurement`; an embedding bucket has none. */
  members: number[][];
}

export function checkUnits(v: { granularity: string; 'embed-buckets': number; formats?: string; method: string }): void {
  if ((v.granularity !== 'layer' || v['embed-buckets'] > 0) && v.method === 'predictor') throw new UsageError('--method predictor is fitted per linear layer: use it with --granularity layer and no --embed-buckets');
  if (v['embed-buckets'] > 0 && v.formats !== undefined) throw new UsageError('--embed-buckets allocates INT-k rows (--bits): ggml types are per tensor, a GGUF cannot mix them within token_embd');
}

/** The units of `m` the flags ask for; embedding buckets are measured here (same windows as `m`). */
export function allocationUnits(
  model: DecoderModel, m: CladoMeasurement,
  v: { granularity: string; 'embed-buckets': number; 'calib-ctx': number; 'calib-windows': number; method: string },
  o: { calibration: string; bits: number[]; group: number; onProgress?: (done: number, total: number) => void },
): Units {
  const e = v['embed-buckets'] > 0
    ? measureEmbeddingBuckets(model, {
      calibration: o.calibration, bits: o.bits, group: o.group, buckets: v['embed-buckets'], ctx: v['calib-ctx'], maxWindows: v['calib-windows'],
      pairs: (v.method as AllocationMethod) === 'clado', onProgress: o.onProgress,
    })
    : null;
  // block-measured: whole-block loss changes measured here (the layer measurement needs no pairs)
  const measured = v.granularity === 'block-measured' ? measureBlocks(model, m, { calibration: o.calibration, pairs: v.method === 'clado', onProgress: o.onProgress }) : null;
  const merged = measured ? (e ? mergeMeasurements(measured.measurement, e) : measured.measurement) : e ? mergeMeasurements(m, e) : m;
  const blocks = v.granularity === 'block' ? blockMeasurement(merged) : null;
  const L = m.layers.length;
  const units: Units = {
    measurement: blocks ? blocks.measurement : merged,
    embedding: e,
    layerChoice: [],
    // `blocks` runs over the merged measurement, whose units past L are embedding buckets
    members: blocks ? blocks.members.map((ls) => ls.filter((l) => l < L)) : [...(measured ? measured.members : m.layers.map((_, l) => [l])), ...(e ? e.rows.map(() => []) : [])],
    apply(choice) {
      const B = measured?.members.length ?? 0;
      const all = measured ? [...expandBlockChoice(measured, choice.slice(0, B)), ...choice.slice(B)] : blocks ? expandBlockChoice(blocks, choice) : [...choice];
      units.layerChoice = all.slice(0, L);
      const packed = applyAllocation(model, m, all.slice(0, L));
      if (e) {
        const chosen = all.slice(L);
        applyEmbeddingChoice(model, e, chosen);
        // the model then looks its rows up from the packed buckets, as the written file does
        const { vocabSize, dim } = model.config;
        const buckets = embeddingFromBuckets(`${model.name}: token embedding`, vocabSize, dim, e.rows.map((_, b) => e.candidates[b][chosen[b]].packed as PackedIntTensor), e.rows);
        model.weights.tokenEmbd = { type: 'buckets', buckets, rowBytes: bucketedBytes(buckets) / vocabSize };
      }
      return packed;
    },
  };
  return units;
}
