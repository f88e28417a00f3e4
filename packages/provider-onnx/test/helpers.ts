import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadManifest, ModelStore } from '@facerec/framework';
import { sharedPath } from '@facerec/framework/testing';

/** A model store over a fresh temporary cache, fed only by the shared offline mirror (no network). */
export async function mirrorStore(cacheDir?: string): Promise<ModelStore> {
  return new ModelStore({
    manifest: await loadManifest(),
    cacheDir: cacheDir ?? mkdtempSync(path.join(tmpdir(), 'facerec-test-')),
    mirrorDir: sharedPath('models', 'upstream'),
    fetch: () => Promise.reject(new Error('tests run offline')),
  });
}
