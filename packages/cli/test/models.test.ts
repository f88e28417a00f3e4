import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CACHE_DIR_ENV, MODELS_MIRROR_ENV } from '@facerec/framework';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cli } from './helpers.js';

// No model weights are needed: face-api's come from the installed npm package, and the MTCNN file given is
// a damaged one, which fails its manifest hash the same way online or offline.
describe('facerec models', () => {
  let work: string;
  let cacheDir: string;
  let mirror: string;
  beforeEach(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'facerec-models-cli-'));
    cacheDir = path.join(work, 'cache');
    mirror = path.join(work, 'mirror');
    await mkdir(mirror);
    await writeFile(path.join(mirror, 'pnet.pt'), 'not the P-Net weights');
    vi.stubEnv(CACHE_DIR_ENV, cacheDir);
    vi.stubEnv(MODELS_MIRROR_ENV, mirror);
  });
  afterEach(async () => {
    vi.unstubAllEnvs();
    await rm(work, { recursive: true, force: true });
  });

  it('pull --json lists the files it got and the ones it could not get, and exits 1', async () => {
    const run = await cli('models', 'pull', 'mtcnn-pnet', 'faceapi-face-recognition-weights', '--json');
    expect(run.code).toBe(1);
    const rows = JSON.parse(run.stdout) as Record<string, string>[];
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ name: 'faceapi-face-recognition-weights', source: 'npm' });
    expect(rows[0]!.path).toBe(path.join(cacheDir, 'face_recognition_model.bin'));
    expect(Object.keys(rows[1]!)).toEqual(['name', 'error']);
    expect(rows[1]!.name).toBe('mtcnn-pnet');
    expect(rows[1]!.error).toMatch(/sha256/);
    expect(run.stderr).toMatch(/^facerec: .*mtcnn-pnet/m);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('list exits 1 naming a damaged cached file and how to replace it', async () => {
    await mkdir(cacheDir);
    await writeFile(path.join(cacheDir, 'pnet.pt'), 'damaged');
    const run = await cli('models', 'list');
    expect(run.code).toBe(0);
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(/^mtcnn-pnet\s+corrupt\s+pnet\.pt$/m);
    expect(run.stderr).toMatch(/1 damaged in the cache: `facerec models pull mtcnn-pnet` replaces it/);

    const json = await cli('models', 'list', '--json');
    expect(json.exitCode).toBe(1);
    expect(JSON.parse(json.stdout).find((s: { name: string }) => s.name === 'mtcnn-pnet').state).toBe(
      'corrupt',
    );

    await rm(path.join(cacheDir, 'pnet.pt'));
    const clean = await cli('models', 'list');
    expect(clean.exitCode).toBeUndefined();
    expect(clean.stdout).toMatch(/^mtcnn-pnet\s+missing\s+pnet\.pt$/m);
  });
});
