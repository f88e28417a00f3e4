import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { onExit } from 'signal-exit';

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

/** A temporary folder for one bench run (`facerec-bench-<name>-…`), removed when the process ends, however it ends. */
export function benchTempDir(name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `facerec-bench-${name}-`));
  onExit(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A whole-number setting from the environment (`FACEREC_BENCH_ROUNDS`, `FACEREC_THREADS`): `fallback` when unset;
 * anything but a positive integer ends the run at once, naming it (not after the timed work); below `min`, the
 * least a suite needs for its figures, it is raised, saying so.
 */
export function envInteger(name: string, fallback: number, min = 1): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return Math.max(fallback, min);
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`${name} must be a positive whole number, got "${raw.slice(0, 40)}"`);
    process.exit(2);
  }
  if (value < min) {
    console.log(`${name}=${value} raised to ${min}, the least this suite runs`);
    return min;
  }
  return value;
}
