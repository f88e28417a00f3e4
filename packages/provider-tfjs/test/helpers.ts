import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { decodeImage, type RgbImage } from '@facerec/framework';
import { describeWhenAvailable, sharedMirrorStore, sharedPath } from '@facerec/framework/testing';
import type { TfjsBackendName } from '@facerec/provider-tfjs';

export { centred, centredCorrelation, cosine, dot } from '@facerec/framework/testing';

/** The backends every suite runs on here. `tensorflow` needs @tensorflow/tfjs-node, not installable on CI. */
export const TEST_BACKENDS = ['wasm', 'cpu'] as const satisfies readonly TfjsBackendName[];

/** A logger that drops the backend line: suites create many providers. */
export const quiet = (): void => undefined;

/** A model store over a fresh temporary cache, fed only by the shared offline mirror (no network). */
export const mirrorStore = sharedMirrorStore;

/** Decodes an image under the shared `faces/` folder (large limits: the portraits are 2048 px). */
export async function decodeFace(...parts: string[]): Promise<RgbImage> {
  return decodeImage(await readFile(sharedPath('faces', ...parts)), { maxPixels: 50_000_000 });
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
  describeWhenAvailable(`${name} [${backend}]`, 'its backend', missing(backend), fn);
}
