import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** The shared data folder: `$FACEREC_SHARED_DIR`, else `../shared` beside the repository. */
export const sharedDir = path.resolve(process.env.FACEREC_SHARED_DIR ?? path.join(root, '..', 'shared'));

/** The frames of ../shared/README.md "Reference speed". */
export const BENCH_FRAMES = [
  'facenet-pytorch/angelina_jolie.jpg',
  'facenet-pytorch/multiface.jpg',
  'face-api.js/bbt1.jpg',
  'face-api.js/bbt3.jpg',
] as const;

/** The q-quantile of `values` (nearest rank). */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Milliseconds, one decimal. */
export const ms = (v: number): string => `${v.toFixed(1)} ms`;
