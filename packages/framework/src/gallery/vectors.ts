/** Vector helpers shared by the gallery, its file format and calibration. */
import type { DistanceMetric } from '../contracts/gallery.js';

/** Dot product of `a` and `b`, accumulated in float64. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** Euclidean norm of `v`, accumulated in float64. */
export function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

/**
 * How far from 1 the norm of a vector already normalised in float32 may be: rounding each of 512 components
 * leaves at most about 6e-8; 1e-6 leaves a margin and is still far below any distance that matters.
 */
const UNIT_ROUNDING = 1e-6;

/**
 * Writes `v / |v|` into `out` (float32) and returns false, leaving `out` untouched, when `v` has a zero or
 * non-finite norm or any non-finite value. A `v` already of unit norm up to float32 rounding is written as it is:
 * normalising it again is not idempotent in float32 (1 of 32 stored face embeddings moved by one unit in the last
 * place, and again on the next pass), which gave an example another content-derived id on every copy into
 * another store.
 */
export function normaliseInto(v: ArrayLike<number>, out: Float32Array, offset = 0): boolean {
  const n = norm(v);
  if (!(n > 0) || !Number.isFinite(n)) return false;
  const scale = Math.abs(n - 1) <= UNIT_ROUNDING ? 1 : n;
  for (let i = 0; i < v.length; i++) out[offset + i] = v[i]! / scale;
  return true;
}

/**
 * `v / |v|` as versions before 2026-12-07 stored every embedding (dividing even one of unit norm up to float32
 * rounding, see {@link normaliseInto}), or `undefined` when that is `stored` itself: what an example they stored
 * holds, so that the same photo added again is found (its id derives from these bytes).
 */
export function legacyNormalised(v: ArrayLike<number>, stored: Float32Array): Float32Array | undefined {
  const n = norm(v);
  const out = new Float32Array(v.length);
  let same = true;
  for (let i = 0; i < v.length; i++) {
    out[i] = v[i]! / n;
    if (out[i] !== stored[i]) same = false;
  }
  return same ? undefined : out;
}

/**
 * Distance between two unit vectors from their dot product: Euclidean `sqrt(max(0, 2 − 2·dot))` (the clamp
 * absorbs rounding that would push identical vectors' `2 − 2·dot` below zero), cosine `1 − dot`.
 *
 * Near zero the Euclidean form magnifies rounding: a dot product off by ε gives a distance of about
 * `sqrt(2ε)`, so two identical float32 vectors may come out ~3e-4 apart rather than 0. That is far below
 * any useful face-matching threshold (0.4–1.2).
 */
export function distanceFromDot(metric: DistanceMetric, dot: number): number {
  return metric === 'euclidean' ? Math.sqrt(Math.max(0, 2 - 2 * dot)) : 1 - dot;
}

/**
 * The distance between two embeddings from their components, for one pair (`verify`). A search takes it from the
 * dot product ({@link distanceFromDot}), where float32 norms a hair off 1 make two identical embeddings about
 * 0.0006 apart in Euclidean distance (`sqrt(2 − 2·0.99999982)`); here they are 0. Elsewhere both agree within
 * 1e-6.
 */
export function distanceBetween(metric: DistanceMetric, a: Float32Array, b: Float32Array): number {
  let sum = 0;
  if (metric === 'euclidean') {
    for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
    return Math.sqrt(sum);
  }
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    sum += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 || bb === 0 ? 1 : Math.max(0, 1 - sum / Math.sqrt(aa * bb));
}

/** Largest distance two unit vectors can be apart: 2 for both metrics (opposite vectors). */
export const MAX_DISTANCE = 2;

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Base64 of `v` as little-endian float32, whatever the platform's byte order. */
export function encodeFloat32(v: Float32Array): string {
  if (littleEndian) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  const bytes = new DataView(new ArrayBuffer(v.length * 4));
  v.forEach((x, i) => {
    bytes.setFloat32(i * 4, x, true);
  });
  return Buffer.from(bytes.buffer).toString('base64');
}

/**
 * Decodes {@link encodeFloat32}'s output. Returns a string describing the problem instead of a vector when
 * the text is not canonical base64 (Node's decoder silently skips bad characters, so the bytes are encoded
 * again and compared) or its byte length is not a multiple of 4.
 */
export function decodeFloat32(text: string): Float32Array | string {
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) return 'not valid base64';
  if (bytes.length % 4 !== 0) return `decodes to ${bytes.length} bytes, not a whole number of float32 values`;
  const out = new Float32Array(bytes.length / 4);
  if (littleEndian) {
    new Uint8Array(out.buffer).set(bytes);
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}
