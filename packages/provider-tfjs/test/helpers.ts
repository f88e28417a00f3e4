import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Box, decodeImage, loadManifest, ModelStore, type RgbImage } from '@facerec/framework';
import { sharedPath } from '@facerec/framework/testing';
import type { TfjsBackendName } from '@facerec/provider-tfjs';
import { describe, it } from 'vitest';

/** The backends every suite runs on here. `tensorflow` needs @tensorflow/tfjs-node, not installable on CI. */
export const TEST_BACKENDS = ['wasm', 'cpu'] as const satisfies readonly TfjsBackendName[];

/** A logger that drops the backend line: suites create many providers. */
export const quiet = (): void => undefined;

/** A model store over a fresh temporary cache, fed only by the shared offline mirror (no network). */
export async function mirrorStore(cacheDir?: string): Promise<ModelStore> {
  return new ModelStore({
    manifest: await loadManifest(),
    cacheDir: cacheDir ?? mkdtempSync(path.join(tmpdir(), 'facerec-tfjs-test-')),
    mirrorDir: sharedPath('models', 'upstream'),
    fetch: () => Promise.reject(new Error('tests run offline')),
  });
}

/** Decodes an image under the shared `faces/` folder (large limits: the portraits are 2048 px). */
export async function decodeFace(...parts: string[]): Promise<RgbImage> {
  return decodeImage(await readFile(sharedPath('faces', ...parts)), { maxPixels: 50_000_000 });
}

export function iou(a: Box, b: Box): number {
  const w = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const inter = w * h;
  const area = (x: Box) => (x[2] - x[0]) * (x[3] - x[1]);
  return inter / (area(a) + area(b) - inter);
}

export const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

export const cosine = (a: ArrayLike<number>, b: ArrayLike<number>): number =>
  dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));

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

const require = createRequire(import.meta.url);

/** Why `backend` cannot run in this checkout, or undefined when it can. */
function missing(backend: TfjsBackendName): string | undefined {
  if (backend !== 'wasm') return undefined;
  try {
    require.resolve('@tensorflow/tfjs-backend-wasm');
    return undefined;
  } catch {
    return '@tensorflow/tfjs-backend-wasm is not installed (npm install -D @tensorflow/tfjs-backend-wasm)';
  }
}

/**
 * `describe` for a suite on one backend. A backend whose optional package is missing fails the suite under
 * `CI=true` and is skipped elsewhere with a notice on stderr, like `describeWithSharedData`.
 */
export function describeOnBackend(backend: TfjsBackendName, name: string, fn: () => void): void {
  const reason = missing(backend);
  const title = `${name} [${backend}]`;
  if (reason === undefined) {
    describe(title, fn);
    return;
  }
  if (process.env.CI === 'true') {
    describe(title, () => {
      it('has its backend', () => {
        throw new Error(reason);
      });
    });
    return;
  }
  process.stderr.write(`\n[facerec] SKIPPING "${title}": ${reason}\n`);
  describe.skip(title, fn);
}
