import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadManifest } from '../models/manifest.js';
import { ModelStore } from '../models/store.js';
import { sharedPath } from './shared-data.js';

/**
 * A model store over a fresh temporary cache (or `cacheDir`), fed only by the shared offline mirror and the
 * installed npm packages: any attempt to download fails, so tests prove they run offline.
 */
export async function sharedMirrorStore(cacheDir?: string): Promise<ModelStore> {
  return new ModelStore({
    manifest: await loadManifest(),
    cacheDir: cacheDir ?? mkdtempSync(path.join(tmpdir(), 'facerec-test-')),
    mirrorDir: sharedPath('models', 'upstream'),
    fetch: () => Promise.reject(new Error('tests run offline')),
  });
}
