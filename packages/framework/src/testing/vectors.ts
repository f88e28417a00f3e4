/**
 * Float64 vector arithmetic for comparing embeddings in tests, written the direct way (one loop, no
 * kernels) so it can serve as a reference. Free of test-runner imports, so scripts can use it too.
 */

import { dot } from '../gallery/vectors.js';

export { dot };

/**
 * `raw` as a model's output (normalised in float32: squares summed and divided in float32), and that output as
 * facerec versions before 2026-12-07 stored it, divided by its norm once more (in doubles, rounded to float32):
 * where the two differ, so do their bytes and example ids. Written out here, not taken from the code that finds
 * such examples.
 */
export function modelAndLegacyEmbedding(raw: readonly number[]): {
  model: Float32Array;
  legacy: Float32Array;
} {
  let squares = 0;
  for (const v of raw) squares = Math.fround(squares + Math.fround(v * v));
  const length = Math.fround(Math.sqrt(squares));
  const model = Float32Array.from(raw, (v) => Math.fround(v) / length);
  let n = 0;
  for (const v of model) n += v * v;
  return { model, legacy: Float32Array.from(model, (v) => v / Math.sqrt(n)) };
}

/** Cosine similarity of `a` and `b`: the dot product of their L2-normalised versions. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
}

/** Subtracts the mean vector over all rows: random-weight nets map every face to nearly one direction. */
export function centred(rows: readonly ArrayLike<number>[]): Float64Array[] {
  const mean = new Float64Array(rows[0]!.length);
  for (const r of rows) for (let i = 0; i < r.length; i++) mean[i]! += r[i]! / rows.length;
  return rows.map((r) => Float64Array.from(r, (v, i) => v - mean[i]!));
}

/** Correlation of two sets of vectors after centring each set on its own mean (all values pooled). */
export function centredCorrelation(
  ours: readonly ArrayLike<number>[],
  theirs: readonly ArrayLike<number>[],
): number {
  return cosine(
    Float64Array.from(centred(ours).flatMap((r) => [...r])),
    Float64Array.from(centred(theirs).flatMap((r) => [...r])),
  );
}

/** How closely two sets of embeddings of the same inputs agree, row by row; see {@link embeddingAgreement}. */
export interface EmbeddingAgreement {
  /** Cosine similarity of each pair of rows. */
  readonly cosines: readonly number[];
  /** The smallest of {@link EmbeddingAgreement.cosines}. */
  readonly minCosine: number;
  /** {@link centredCorrelation} of the two sets. */
  readonly correlation: number;
  /** The smallest cosine between a pair of rows after centring each set on its own mean. */
  readonly minCentredCosine: number;
  /** The largest absolute difference between two corresponding values. */
  readonly maxAbsDifference: number;
}

/**
 * Compares embeddings `ours` with reference embeddings `theirs` of the same inputs, in the same order: the
 * figures the parity tests print and bound. Random-weight nets map every face to nearly one direction, so
 * the centred figures are the ones that tell a wrong network from a right one.
 */
export function embeddingAgreement(
  ours: readonly ArrayLike<number>[],
  theirs: readonly ArrayLike<number>[],
): EmbeddingAgreement {
  const cosines = ours.map((o, i) => cosine(o, theirs[i]!));
  const ourCentred = centred(ours);
  const theirCentred = centred(theirs);
  let maxAbsDifference = 0;
  ours.forEach((o, i) => {
    for (let k = 0; k < o.length; k++)
      maxAbsDifference = Math.max(maxAbsDifference, Math.abs(o[k]! - theirs[i]![k]!));
  });
  return {
    cosines,
    minCosine: Math.min(...cosines),
    correlation: centredCorrelation(ours, theirs),
    minCentredCosine: Math.min(...ourCentred.map((o, i) => cosine(o, theirCentred[i]!))),
    maxAbsDifference,
  };
}
