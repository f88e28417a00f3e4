/**
 * Threshold calibration: from genuine distances (a face against its own identity) and impostor distances (a
 * face against everyone else) to a ROC curve and the threshold at a target false-accept rate.
 *
 * Conventions, matching {@link FileGallery.match} (a query is accepted when `distance ≤ threshold`):
 * - FAR(t) = impostor pairs with distance ≤ t / impostor pairs; TAR(t) = genuine pairs with distance ≤ t /
 *   genuine pairs; FRR = 1 − TAR.
 * - Candidate thresholds are 0 and every observed distance. The threshold for a target FAR is the largest
 *   candidate whose FAR is at most the target.
 * - The equal error rate is taken at the candidate where |FAR − FRR| is smallest (the lowest such threshold
 *   on ties), as the mean of the two rates there.
 */
import { z } from 'zod';
import { EMBEDDER_PRECISIONS, type EmbedderPrecision } from '../contracts/embedder.js';
import { InvalidInputError } from '../errors.js';
import { parseOptions } from '../options.js';
import { seededRandom } from '../testing/random.js';
import type { FileGallery } from './gallery.js';
import type { CalibrationPoint, GalleryCalibration } from './types.js';
import { distanceFromDot, dot, norm } from './vectors.js';

/** The ROC curve: parallel arrays, one entry per candidate threshold, thresholds ascending. */
export interface RocCurve {
  readonly thresholds: Float64Array;
  readonly far: Float64Array;
  readonly tar: Float64Array;
  readonly genuinePairs: number;
  readonly impostorPairs: number;
}

/** A threshold and the error rates it gives. */
export interface OperatingPoint {
  readonly threshold: number;
  readonly far: number;
  readonly tar: number;
  readonly frr: number;
}

/** Fewer genuine pairs than this behind a threshold get a warning: its false-reject rate is a rough estimate. */
export const MIN_GENUINE_PAIRS = 20;

/** False-accept rates reported as the curve's key points: 0.1%, 1%, 5%, 10%. */
export const KEY_FARS: readonly number[] = Object.freeze([0.001, 0.01, 0.05, 0.1]);

/**
 * Impostor distances kept for a calibration: every one up to this many, beyond it a uniform sample of this many
 * (FARs down to 0.001 then still rest on 5,000 accepted impostors). Keeping all of them made a leave-one-out
 * calibration of 3,000 identities with two examples each end the process (V8's heap limit, which nothing
 * catches): 18 million distances as JavaScript numbers, then copies to sort.
 */
export const MAX_IMPOSTOR_PAIRS = 5_000_000;
/** Probes whose distances to the gallery are computed at a time (calibrateThreshold). */
const PROBE_CHUNK = 256;

/**
 * Impostor distances: all of them up to {@link MAX_IMPOSTOR_PAIRS}, beyond it a uniform sample of that many
 * (reservoir sampling, seeded, so that the same gallery calibrates the same way every time).
 */
class ImpostorSample {
  readonly #kept: Float64Array;
  #seen = 0;
  /** The project's seeded PRNG (mulberry32), with a fixed seed: the same sample every run. */
  readonly #random = seededRandom(0x2545f491);

  /** `expected`: how many distances will be added (the buffer is sized for the smaller of it and the cap). */
  constructor(expected: number) {
    this.#kept = new Float64Array(Math.min(expected, MAX_IMPOSTOR_PAIRS));
  }

  add(distance: number): void {
    const i = this.#seen++;
    if (i < this.#kept.length) {
      this.#kept[i] = distance;
      return;
    }
    // Kept with probability cap / (i + 1), in place of a uniformly chosen one (Algorithm R).
    const j = Math.floor(this.#random() * (i + 1));
    if (j < this.#kept.length) this.#kept[j] = distance;
  }

  /** How many were added. */
  get total(): number {
    return this.#seen;
  }

  /** The distances kept. */
  values(): Float64Array {
    return this.#kept.subarray(0, Math.min(this.#seen, this.#kept.length));
  }
}

/**
 * The ROC curve of a verifier that accepts a pair when its distance is ≤ the threshold.
 *
 * @throws {@link InvalidInputError} when there is no genuine or no impostor distance, or a distance is NaN.
 */
export function rocCurve(genuine: ArrayLike<number>, impostor: ArrayLike<number>): RocCurve {
  if (genuine.length === 0 || impostor.length === 0) {
    throw new InvalidInputError(
      `calibration needs at least one genuine and one impostor pair (got ${genuine.length} genuine, ${impostor.length} impostor)`,
    );
  }
  const g = Float64Array.from(genuine).sort();
  const im = Float64Array.from(impostor).sort();
  if (Number.isNaN(g[g.length - 1]!) || Number.isNaN(im[im.length - 1]!)) {
    throw new InvalidInputError('calibration: a distance is NaN');
  }
  const candidates = new Float64Array(g.length + im.length + 1);
  candidates.set(g, 1);
  candidates.set(im, g.length + 1);
  candidates.sort();
  // Typed arrays of the largest size, cut to the distinct candidates: JavaScript arrays of millions of numbers
  // took several times the memory.
  const thresholds = new Float64Array(candidates.length);
  const far = new Float64Array(candidates.length);
  const tar = new Float64Array(candidates.length);
  let n = 0;
  let gi = 0;
  let ii = 0;
  for (let c = 0; c < candidates.length; c++) {
    const t = candidates[c]!;
    if (c > 0 && t === candidates[c - 1]) continue;
    while (gi < g.length && g[gi]! <= t) gi++;
    while (ii < im.length && im[ii]! <= t) ii++;
    thresholds[n] = t;
    far[n] = ii / im.length;
    tar[n] = gi / g.length;
    n++;
  }
  return {
    thresholds: thresholds.slice(0, n),
    far: far.slice(0, n),
    tar: tar.slice(0, n),
    genuinePairs: g.length,
    impostorPairs: im.length,
  };
}

/**
 * The operating point with the highest TAR whose FAR is at most `targetFar`, or `undefined` when even the
 * smallest candidate (0, or a negative distance) accepts more impostors than that (impostors at distance 0).
 * Every threshold from that point's distance up to the next measured distance gives the same FAR and TAR; the
 * threshold is the middle of that gap, the most margin to both sides (on sparse data the gap is wide, e.g.
 * from the largest genuine distance to the nearest impostor, and its lower end would reject faces a hair
 * farther than the calibration's own).
 */
export function operatingPointAtFar(roc: RocCurve, targetFar: number): OperatingPoint | undefined {
  // FAR never decreases as the threshold grows: the answer is the last index with far ≤ target.
  let lo = 0;
  let hi = roc.far.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (roc.far[mid]! <= targetFar) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  if (found < 0) return undefined;
  const point = pointAt(roc, found);
  const next = roc.thresholds[found + 1];
  return next === undefined ? point : { ...point, threshold: (point.threshold + next) / 2 };
}

/** The equal error rate: where |FAR − FRR| is smallest (lowest threshold on ties); rate = (FAR + FRR) / 2. */
export function equalErrorRate(roc: RocCurve): OperatingPoint & { readonly rate: number } {
  let best = 0;
  let gap = Number.POSITIVE_INFINITY;
  for (let i = 0; i < roc.thresholds.length; i++) {
    const d = Math.abs(roc.far[i]! - (1 - roc.tar[i]!));
    if (d < gap) {
      gap = d;
      best = i;
    }
  }
  const point = pointAt(roc, best);
  return { ...point, rate: (point.far + point.frr) / 2 };
}

function pointAt(roc: RocCurve, i: number): OperatingPoint {
  return { threshold: roc.thresholds[i]!, far: roc.far[i]!, tar: roc.tar[i]!, frr: 1 - roc.tar[i]! };
}

/** A labelled probe: an embedding of a known person, who may or may not be enrolled. */
export interface LabelledProbe {
  readonly identity: string;
  readonly embedding: Float32Array;
  /**
   * The file it came from, relative to its folder of labelled probes (`alice/3.jpg`), as enrollment records
   * a gallery example's `source`: a probe with the source of an enrolled example of its identity is that example.
   */
  readonly source?: string;
}

/** A probe that is an enrolled example (see {@link calibrateThreshold}). */
export interface ProbeOverlap {
  /** Index of the probe. */
  readonly probe: number;
  /** `same file`: the probe's source is an enrolled example's of its identity; `same pixels`: identical embedding. */
  readonly kind: 'same file' | 'same pixels';
  readonly identity: string;
  /** The enrolled example it overlaps: its identity and source. */
  readonly enrolled: { readonly identity: string; readonly source: string };
}

/**
 * A genuine pair the threshold rejects (a false reject): a probe (or, leave-one-out, an enrolled example) farther
 * from its own identity than the threshold.
 */
export interface RejectedPair {
  /** The identity it is labelled with. */
  readonly identity: string;
  /** Its file (the probe's `source`, the example's), when known. */
  readonly source?: string;
  /** Its distance to its own identity. */
  readonly distance: number;
  /** The nearest other identity and its distance (absent with one identity only). */
  readonly nearest?: { readonly identity: string; readonly distance: number };
  /**
   * Nearer to another identity than to its own, and within the threshold of it: likely labelled with the wrong
   * name (it also counts as an accepted impostor pair, which pulls the threshold down).
   */
  readonly likelyMislabelled: boolean;
}

/** Where a genuine distance came from, for {@link RejectedPair}. */
interface GenuineOrigin {
  readonly identity: string;
  readonly source: string | undefined;
  readonly nearest: { readonly identity: string; readonly distance: number } | undefined;
}

/** The nearest identity of `row` other than `own`. */
function nearestOther(row: ArrayLike<number>, own: number, names: readonly string[]) {
  let best = -1;
  for (let i = 0; i < row.length; i++) if (i !== own && (best < 0 || row[i]! < row[best]!)) best = i;
  return best < 0 ? undefined : { identity: names[best]!, distance: row[best]! };
}

/** Options of {@link calibrateThreshold} and {@link calibrateThresholdLeaveOneOut}. */
export interface CalibrationOptions {
  /** False-accept rate to calibrate for, in (0, 1). Default 0.01. */
  readonly targetFar?: number;
  /** Rates for {@link CalibrationResult.keyPoints}. Default {@link KEY_FARS}. */
  readonly keyFars?: readonly number[];
  /** Date recorded as `calibratedAt`. Default now. */
  readonly now?: Date;
  /**
   * The embedder precision the embeddings were made at, recorded as the calibration's `precision` so that
   * serving at the other precision can warn (an embedder's own `precision`, which may be absent, can be
   * passed as it is). Default: not recorded.
   */
  readonly precision?: EmbedderPrecision | undefined;
}

/** Options of {@link calibrateThresholdLeaveOneOut}. */
export interface LeaveOneOutOptions extends CalibrationOptions {
  /**
   * Called after each identity's examples were held out, with the examples done and the gallery's count: the
   * work grows with the square of the gallery (seconds for 10,000 examples, minutes beyond 30,000), and it runs
   * without a pause.
   */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Options of {@link calibrateThreshold}. */
export interface ProbeCalibrationOptions extends CalibrationOptions {
  /**
   * Calibrate even when probes are enrolled examples (listed in {@link CalibrationResult.overlaps} and a
   * warning). Default false: refused.
   */
  readonly allowOverlap?: boolean;
}

/** What calibration found, and the gallery with the threshold stored. */
export interface CalibrationResult {
  /** A copy of the gallery with `threshold` and `calibration` set. */
  readonly gallery: FileGallery;
  /** The threshold at the target FAR, with its FAR, TAR and FRR on the calibration data. */
  readonly point: OperatingPoint;
  /** The metadata stored in the gallery. */
  readonly calibration: GalleryCalibration;
  readonly roc: RocCurve;
  /** Genuine distances, one per probe of an enrolled identity (ascending order is not guaranteed). */
  readonly genuine: Float64Array;
  /** Impostor distances, one per probe and other identity. */
  readonly impostor: Float64Array;
  /** Things that make the result less trustworthy (too few pairs for the target FAR, ...). */
  readonly warnings: readonly string[];
  /** Probes that are enrolled examples, calibrated on anyway with `allowOverlap` (empty otherwise). */
  readonly overlaps: readonly ProbeOverlap[];
  /**
   * The genuine pairs rejected at the threshold (its false rejects), farthest first: where to look when the FRR
   * is not 0. They are named in a warning (up to 5), those likely labelled wrong first and said so.
   */
  readonly rejected: readonly RejectedPair[];
}

const optionsSchema = z.strictObject({
  targetFar: z.number().gt(0).lt(1).default(0.01),
  keyFars: z.array(z.number().gt(0).lt(1)).default([...KEY_FARS]),
  now: z.date().optional(),
  precision: z.enum(EMBEDDER_PRECISIONS).optional(),
});

const probeOptionsSchema = optionsSchema.extend({ allowOverlap: z.boolean().default(false) });
const leaveOneOutOptionsSchema = optionsSchema.extend({
  onProgress: z.custom<(done: number, total: number) => void>((v) => typeof v === 'function').optional(),
});

/**
 * Calibrates `gallery`'s threshold on labelled probes that were **not** enrolled (a probe identical to an
 * enrolled example has genuine distance ~0 and makes the threshold meaningless; use
 * {@link calibrateThresholdLeaveOneOut} to calibrate on the enrolled examples themselves).
 *
 * Probes that are enrolled examples are refused, naming them, unless `allowOverlap`: a probe whose `source` is
 * the source of an enrolled example of its identity (the same file), or whose embedding is identical to any
 * enrolled example's (the same pixels: a copy of the file, under any name or identity; the embedder is
 * deterministic, so this also catches a re-encoded copy that a byte hash would miss).
 *
 * Each probe of an enrolled identity gives one genuine distance (to its own identity, aggregated as the
 * gallery aggregates) and one impostor distance per other identity; a probe of someone not enrolled gives
 * impostor distances to every identity. Needs at least one of each.
 *
 * @throws {@link InvalidInputError} without genuine or impostor pairs, or when no threshold reaches the
 *   target FAR (impostors at distance 0, i.e. the same face under two names).
 *
 * @example
 * const { gallery: calibrated, point } = calibrateThreshold(gallery, probes, { targetFar: 0.001 });
 * console.log(`threshold ${point.threshold.toFixed(3)}: FAR ${point.far}, TAR ${point.tar}`);
 * await calibrated.save('team.gallery.json');
 */
export function calibrateThreshold(
  gallery: FileGallery,
  probes: readonly LabelledProbe[],
  options: ProbeCalibrationOptions = {},
): CalibrationResult {
  const resolved = parseOptions(probeOptionsSchema, options, 'calibrateThreshold');
  probes.forEach((probe, i) => {
    if (typeof probe?.identity !== 'string') {
      throw new InvalidInputError(`calibrateThreshold: probe ${i} has no identity string`);
    }
  });
  const names = gallery.names;
  const indexOf = new Map(names.map((n, i) => [n, i]));
  const overlaps = findOverlaps(gallery, probes);
  if (overlaps.length && !resolved.allowOverlap) {
    const listed = overlaps
      .slice(0, 5)
      .map(
        (o) =>
          `${probes[o.probe]!.source ?? `probe ${o.probe}`} (${o.kind} as enrolled ${o.enrolled.source})`,
      )
      .join(', ');
    throw new InvalidInputError(
      `calibrateThreshold: ${overlaps.length} of ${probes.length} probes are enrolled examples: ${listed}` +
        `${overlaps.length > 5 ? `, and ${overlaps.length - 5} more` : ''}. Calibrate with photos that are not in ` +
        "the gallery, or leave-one-out on the enrolled ones (calibrateThresholdLeaveOneOut; the CLI's " +
        '--leave-one-out, without probes); allowOverlap (--allow-overlap) calibrates anyway',
    );
  }
  const genuine: number[] = [];
  const origins: GenuineOrigin[] = [];
  const impostor = new ImpostorSample(
    probes.reduce((n, p) => n + (indexOf.has(p.identity) ? names.length - 1 : names.length), 0),
  );
  // The distances of a few probes at a time: all of them at once is probes × identities numbers.
  for (let start = 0; start < probes.length; start += PROBE_CHUNK) {
    const chunk = probes.slice(start, start + PROBE_CHUNK);
    const distances = gallery.distancesTo(chunk.map((p) => p.embedding));
    chunk.forEach((probe, p) => {
      const own = indexOf.get(probe.identity) ?? -1;
      const row = distances[p]!;
      for (let i = 0; i < row.length; i++) {
        if (i === own) genuine.push(row[i]!);
        else impostor.add(row[i]!);
      }
      if (own >= 0) {
        origins.push({
          identity: probe.identity,
          source: probe.source,
          nearest: nearestOther(row, own, names),
        });
      }
    });
  }
  const result = finish(gallery, 'probes', Float64Array.from(genuine), origins, impostor, resolved);
  if (!overlaps.length) return result;
  const warning =
    `${overlaps.length} of ${probes.length} probes are enrolled examples (allowed): their pairs make the ` +
    'threshold look better than it is';
  return { ...result, overlaps, warnings: [warning, ...result.warnings] };
}

/**
 * Probes that are enrolled examples: the same file (same source under the same identity) or the same pixels
 * (an embedding identical to any enrolled example's). Genuine pairs at distance 0 would make any threshold
 * look perfect (an "EER of 0 %" that says nothing). Cost: one dot product per probe and enrolled example.
 */
function findOverlaps(gallery: FileGallery, probes: readonly LabelledProbe[]): ProbeOverlap[] {
  const enrolled = gallery.names.flatMap((identity) =>
    gallery.examples(identity).map((e) => ({ identity, source: e.source, embedding: e.embedding })),
  );
  const overlaps: ProbeOverlap[] = [];
  probes.forEach((probe, p) => {
    const sameFile =
      probe.source === undefined
        ? undefined
        : enrolled.find((e) => e.identity === probe.identity && e.source === probe.source);
    const n = norm(probe.embedding) || 1;
    // Enrolled examples are unit vectors; a probe of the same pixels has cosine 1 up to float error.
    const samePixels = sameFile
      ? undefined
      : enrolled.find((e) => dot(e.embedding, probe.embedding) / n >= 1 - 1e-6);
    const found = sameFile ?? samePixels;
    if (found) {
      overlaps.push({
        probe: p,
        kind: sameFile ? 'same file' : 'same pixels',
        identity: probe.identity,
        enrolled: { identity: found.identity, source: found.source },
      });
    }
  });
  return overlaps;
}

/**
 * Calibrates on the enrolled examples themselves, leaving each out in turn: every example of an identity
 * with at least two examples is compared with the rest of its identity (genuine: the nearest other example,
 * or the centroid of the others re-normalised, as the gallery aggregates) and with every other identity
 * (impostor: its nearest example there, or its centroid). Examples of single-example identities give impostor
 * comparisons only.
 *
 * A genuine pair of examples counts once (`genuinePairs`, and the warning when fewer than
 * {@link MIN_GENUINE_PAIRS} back the threshold, count distinct pairs): two examples that are each other's
 * nearest, as a two-example identity's always are, are one comparison whichever is held out, in both
 * aggregations for two examples. Impostor comparisons count per example held out, but two single-example
 * identities count once (each is the other's only example); across larger identities, two examples that are
 * each other's nearest can count from both sides.
 *
 * Cost: one match per example, O(examples × gallery rows × dimension) — meant for galleries of up to a few
 * thousand examples (10,000 take seconds, 30,000 about a minute); `onProgress` tells how far it is.
 *
 * @throws {@link InvalidInputError} when no identity has two examples or there is only one identity.
 */
export function calibrateThresholdLeaveOneOut(
  gallery: FileGallery,
  options: LeaveOneOutOptions = {},
): CalibrationResult {
  const { onProgress, ...resolved } = parseOptions(
    leaveOneOutOptionsSchema,
    options,
    'calibrateThresholdLeaveOneOut',
  );
  let done = 0;
  const names = gallery.names;
  const dim = gallery.embedder.dimension;
  const genuine: number[] = [];
  const origins: GenuineOrigin[] = [];
  const impostor = new ImpostorSample(gallery.exampleCount * (names.length - 1));
  const single = names.map((name) => gallery.examples(name).length === 1);
  names.forEach((name, own) => {
    const examples = gallery.examples(name);
    const others = gallery.distancesTo(examples.map((e) => e.embedding));
    const sum = new Float64Array(dim);
    if (gallery.aggregation === 'centroid') {
      for (const e of examples) for (let j = 0; j < dim; j++) sum[j]! += e.embedding[j]!;
    }
    // The genuine pairs of this identity taken so far (nearest example): `k:j` with k < j → index in `genuine`.
    const pairs = new Map<string, number>();
    examples.forEach((example, k) => {
      const row = others[k]!;
      for (let i = 0; i < row.length; i++) {
        // Two single examples: the same comparison from either side, taken from the first.
        if (i !== own && !(single[own] && single[i] && i < own)) impostor.add(row[i]!);
      }
      if (examples.length < 2) return;
      const nearestIdentity = nearestOther(row, own, names);
      // The nearest other example (the only other, for two: the centroid of one example is that example).
      if (gallery.aggregation === 'nearest' || examples.length === 2) {
        let bestDot = Number.NEGATIVE_INFINITY;
        let partner = -1;
        examples.forEach((other, j) => {
          const d = j === k ? Number.NEGATIVE_INFINITY : dot(example.embedding, other.embedding);
          if (d > bestDot) [bestDot, partner] = [d, j];
        });
        const key = k < partner ? `${k}:${partner}` : `${partner}:${k}`;
        const at = pairs.get(key);
        if (at !== undefined) {
          // The same pair from its other side: counted once, under the example nearer another identity (the
          // one a wrong label would more likely be on), as a false reject names it.
          const named = origins[at]!.nearest;
          if (nearestIdentity && (!named || nearestIdentity.distance < named.distance)) {
            origins[at] = { identity: name, source: example.source, nearest: nearestIdentity };
          }
          return;
        }
        pairs.set(key, genuine.length);
        genuine.push(distanceFromDot(gallery.metric, bestDot));
        origins.push({ identity: name, source: example.source, nearest: nearestIdentity });
        return;
      }
      let d = 0;
      let n2 = 0;
      for (let j = 0; j < dim; j++) {
        const c = sum[j]! - example.embedding[j]!;
        d += c * example.embedding[j]!;
        n2 += c * c;
      }
      // The others summing to zero leave no direction: count the pair as maximally distant.
      genuine.push(distanceFromDot(gallery.metric, n2 > 0 ? d / Math.sqrt(n2) : -1));
      origins.push({ identity: name, source: example.source, nearest: nearestIdentity });
    });
    done += examples.length;
    onProgress?.(done, gallery.exampleCount);
  });
  return finish(gallery, 'leave-one-out', Float64Array.from(genuine), origins, impostor, resolved);
}

function finish(
  gallery: FileGallery,
  method: GalleryCalibration['method'],
  genuine: Float64Array,
  origins: readonly GenuineOrigin[],
  sample: ImpostorSample,
  options: {
    targetFar: number;
    keyFars: number[];
    now?: Date | undefined;
    precision?: EmbedderPrecision | undefined;
  },
): CalibrationResult {
  const impostor = sample.values();
  if (genuine.length === 0 || impostor.length === 0) {
    throw new InvalidInputError(
      `${method === 'probes' ? 'calibrateThreshold' : 'calibrateThresholdLeaveOneOut'}: need at least one genuine ` +
        `and one impostor pair, got ${genuine.length} genuine and ${impostor.length} impostor ` +
        (method === 'probes'
          ? '(genuine pairs need probes of enrolled identities; impostor pairs need two identities or a probe of someone not enrolled)'
          : '(genuine pairs need an identity with two examples; impostor pairs need two identities)'),
    );
  }
  const roc = rocCurve(genuine, impostor);
  const point = operatingPointAtFar(roc, options.targetFar);
  if (!point) {
    throw new InvalidInputError(
      `no threshold reaches FAR ${options.targetFar}: ${Math.round(roc.far[0]! * roc.impostorPairs)} impostor pairs are at ` +
        `distance ${roc.thresholds[0]} (the same face under two names?)`,
    );
  }
  const keyPoints: CalibrationPoint[] = [];
  for (const target of options.keyFars) {
    const p = operatingPointAtFar(roc, target);
    if (p) {
      keyPoints.push({
        targetFar: target,
        threshold: p.threshold,
        far: p.far,
        tar: p.tar,
        resolved: roc.impostorPairs * target >= 1,
      });
    }
  }
  const eer = equalErrorRate(roc);
  const calibration: GalleryCalibration = {
    method,
    targetFar: options.targetFar,
    achievedFar: point.far,
    achievedFrr: point.frr,
    genuinePairs: roc.genuinePairs,
    impostorPairs: roc.impostorPairs,
    calibratedAt: (options.now ?? new Date()).toISOString(),
    equalErrorRate: { threshold: eer.threshold, rate: eer.rate },
    keyPoints,
    ...(options.precision === undefined ? {} : { precision: options.precision }),
  };
  const warnings: string[] = [];
  if (sample.total > impostor.length) {
    warnings.push(
      `${sample.total} impostor pairs: the curve rests on a uniform sample of ${impostor.length} of them (the same ` +
        'each run), which bounds the memory; its figures are estimates to about ±1/√(accepted impostors)',
    );
  }
  if (roc.impostorPairs * options.targetFar < 1) {
    warnings.push(
      `only ${roc.impostorPairs} impostor pairs: a FAR of ${options.targetFar} cannot be told from 0 (that needs at ` +
        `least ${Math.ceil(1 / options.targetFar)}); the threshold is midway between the largest genuine distance it ` +
        'accepts and the nearest impostor',
    );
  }
  if (roc.genuinePairs < MIN_GENUINE_PAIRS) {
    warnings.push(
      `only ${roc.genuinePairs} genuine pair${roc.genuinePairs === 1 ? '' : 's'} back${roc.genuinePairs === 1 ? 's' : ''} ` +
        `the threshold (fewer than ${MIN_GENUINE_PAIRS}): the false-reject rate is a rough estimate; add labelled ` +
        'photos of enrolled people',
    );
  }
  const rejected = rejectedPairs(genuine, origins, point.threshold);
  if (rejected.length > 0) warnings.push(describeRejected(rejected, method, point.threshold));
  if (point.tar === 0) {
    warnings.push(
      'no genuine pair is accepted at this threshold (FRR 100 %): every enrolled person would be unknown. Is a ' +
        'probe labelled with the wrong name, or are the probes of other people than their folders say?',
    );
  }
  return {
    gallery: gallery.withThreshold(point.threshold, calibration),
    point,
    calibration,
    roc,
    genuine,
    impostor,
    warnings,
    overlaps: [],
    rejected,
  };
}

/** The genuine pairs above `threshold`, farthest first. */
function rejectedPairs(
  genuine: Float64Array,
  origins: readonly GenuineOrigin[],
  threshold: number,
): RejectedPair[] {
  const rejected: RejectedPair[] = [];
  genuine.forEach((distance, i) => {
    if (distance <= threshold) return;
    const { identity, source, nearest } = origins[i]!;
    rejected.push({
      identity,
      ...(source === undefined ? {} : { source }),
      distance,
      ...(nearest === undefined ? {} : { nearest }),
      likelyMislabelled:
        nearest !== undefined && nearest.distance < distance && nearest.distance <= threshold,
    });
  });
  return rejected.sort((a, b) => b.distance - a.distance);
}

/**
 * A distance as a message shows it: rounded to `digits` decimals (default 4), or to as many more (up to 9) as it
 * takes to stay on the same side of `threshold` as the distance itself, so that a face 0.40003 from its nearest
 * example is not shown "unknown 0.4" against a threshold of 0.4.
 */
export function shownDistance(distance: number, threshold?: number, digits = 4): number {
  for (let d = digits; d <= 9; d++) {
    const rounded = Math.round(distance * 10 ** d) / 10 ** d;
    if (threshold === undefined || rounded <= threshold === distance <= threshold) return rounded;
  }
  return distance;
}

/** The warning naming the false rejects (at most 5), the likely mislabelled ones first. */
function describeRejected(
  rejected: readonly RejectedPair[],
  method: GalleryCalibration['method'],
  threshold: number,
): string {
  const what = method === 'probes' ? 'probe' : 'enrolled example';
  const shown = [
    ...rejected.filter((r) => r.likelyMislabelled),
    ...rejected.filter((r) => !r.likelyMislabelled),
  ]
    .slice(0, 5)
    .map((r) => {
      const name = r.source ?? `a ${what} of ${r.identity}`;
      const hint = r.likelyMislabelled
        ? `; nearer to ${r.nearest!.identity}, ${shownDistance(r.nearest!.distance, threshold)}: labelled with the wrong name?`
        : '';
      return `${name} (${shownDistance(r.distance, threshold)} from ${r.identity}${hint})`;
    });
  const more = rejected.length > shown.length ? `, and ${rejected.length - shown.length} more` : '';
  const mislabelled = rejected.filter((r) => r.likelyMislabelled).length;
  return (
    `${rejected.length} ${what}${rejected.length === 1 ? ' is' : 's are'} farther from ${rejected.length === 1 ? 'its' : 'their'} own identity than the threshold (false rejects): ${shown.join(', ')}${more}` +
    (mislabelled > 0
      ? `. ${method === 'probes' ? 'A probe' : 'An enrolled example'} labelled with the wrong name also counts as an accepted impostor and pulls the threshold down: fix or remove ${mislabelled === 1 ? 'it' : 'them'} and calibrate again`
      : '')
  );
}

/**
 * A plain-text report of a calibration for a terminal: the chosen threshold, the key points of the curve
 * and the equal error rate.
 */
export function formatCalibration(result: Pick<CalibrationResult, 'calibration' | 'warnings'>): string {
  const c = result.calibration;
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const lines = [
    `calibration (${c.method}${c.precision ? `, ${c.precision} embeddings` : ''}): ${c.genuinePairs} genuine pairs, ${c.impostorPairs} impostor pairs`,
    `threshold at target FAR ${pct(c.targetFar)}: FAR ${pct(c.achievedFar)}, FRR ${pct(c.achievedFrr)}`,
    '  target FAR   threshold   FAR        TAR',
    ...c.keyPoints.map(
      (p) =>
        `  ${pct(p.targetFar).padEnd(11)}  ${p.threshold.toFixed(4).padEnd(10)}  ${pct(p.far).padEnd(9)}  ${pct(p.tar)}${p.resolved ? '' : '  (too few impostor pairs)'}`,
    ),
    `  EER ${pct(c.equalErrorRate.rate)} at threshold ${c.equalErrorRate.threshold.toFixed(4)}`,
    ...result.warnings.map((w) => `warning: ${w}`),
  ];
  return lines.join('\n');
}
