/** Deterministic synthetic embeddings and embedder descriptions for the gallery tests. */
import type { GalleryEmbedderInfo } from '../../contracts/gallery.js';

/** The shared seeded PRNG, under the name these fixtures use. */
export { seededRandom as prng } from '../../testing/random.js';

/** A standard normal sample (Box–Muller). */
export function gaussian(rand: () => number): number {
  const u = 1 - rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

/** A random direction: normalised Gaussian vector (uniform on the sphere). */
export function randomUnit(dim: number, rand: () => number): Float32Array {
  const v = Array.from({ length: dim }, () => gaussian(rand));
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
}

/** `base` moved by Gaussian noise of scale `noise`, re-normalised: another example of the same "person". */
export function jitter(base: Float32Array, noise: number, rand: () => number): Float32Array {
  const v = Array.from(base, (x) => x + noise * gaussian(rand));
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
}

/** The 2-d unit vector at `degrees`. */
export function at(degrees: number): Float32Array {
  const r = (degrees * Math.PI) / 180;
  return Float32Array.of(Math.cos(r), Math.sin(r));
}

/** 1 − cos(degrees): the cosine distance between two unit vectors `degrees` apart. */
export const cosineDistance = (degrees: number) => 1 - Math.cos((degrees * Math.PI) / 180);

/** Embedder description for tests. */
export function embedderInfo(
  dimension: number,
  overrides: Partial<GalleryEmbedderInfo> = {},
): GalleryEmbedderInfo {
  return {
    modelId: 'test-net/synthetic',
    weightsSha256: 'a'.repeat(64),
    dimension,
    preprocessing: {
      inputSize: { width: 160, height: 160 },
      layout: 'NCHW',
      channelOrder: 'RGB',
      mean: [127.5, 127.5, 127.5],
      std: [128, 128, 128],
    },
    ...overrides,
  };
}

/** Float64 brute force: dot product of the L2-normalised versions of `a` and `b` (cosine similarity). */
export { cosine as unitDot } from '../../testing/vectors.js';

/** Float64 brute force: the normalised mean of `vectors`. */
export function centroid(vectors: readonly ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i]! += v[i]!;
  const n = Math.hypot(...out);
  return out.map((x) => x / n);
}
