import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CACHE_DIR_ENV, MODELS_MIRROR_ENV } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { cli } from './helpers.js';

const IMAGES = ['faces', 'face_recognition', 'tests', 'test_images'] as const;
const image = (name: string) => sharedPath(...IMAGES, name);

interface VerifyJson {
  verified: boolean;
  distance: number;
  threshold: number;
  thresholdSource: string;
  metric: string;
  embedder: string;
  precision: string;
  faces: { image: string; box: number[]; score: number; faceCount: number }[];
  warnings: string[];
}

// face_recognition's own tests expect obama vs obama2 to match and obama vs biden not to; here with
// face-api.js's net (its weights install offline) at the threshold its registry entry ships.
describeWithSharedData('facerec verify', [IMAGES.join('/'), 'models/upstream/pnet.pt'], () => {
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'facerec-cli-verify-'));
    vi.stubEnv(CACHE_DIR_ENV, path.join(work, 'cache'));
    vi.stubEnv(MODELS_MIRROR_ENV, sharedPath('models', 'upstream'));
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const verify = async (a: string, b: string, ...flags: string[]) => {
    const run = await cli('verify', image(a), image(b), '--embedder', 'faceapi-resnet', ...flags);
    return run;
  };

  it('obama vs obama2: the same person, at the shipped threshold', async () => {
    const run = await verify('obama.jpg', 'obama2.jpg', '--json');
    expect([run.code, run.exitCode], run.stderr).toEqual([0, undefined]);
    const result = JSON.parse(run.stdout) as VerifyJson;
    expect(result).toMatchObject({
      verified: true,
      thresholdSource: 'registry',
      metric: 'euclidean',
      embedder: 'faceapi-resnet',
      precision: 'fp32',
    });
    expect(result.distance).toBeLessThanOrEqual(result.threshold);
    expect(result.faces.map((f) => f.image)).toEqual([image('obama.jpg'), image('obama2.jpg')]);
    for (const face of result.faces) {
      expect(face.box).toHaveLength(4);
      expect(face.score).toBeGreaterThan(0.99);
    }
    // obama.jpg also holds a small low-score detection (55×60 px, score 0.82): the largest face is compared.
    expect(result.faces[0]!.faceCount).toBe(2);
    expect(result.faces[0]!.box[2]! - result.faces[0]!.box[0]!).toBeGreaterThan(200);
    expect(result.warnings).toEqual([
      expect.stringMatching(/obama\.jpg shows 2 faces; compared the largest/),
    ]);
    expect(run.stderr).toMatch(/threshold [\d.]+: faceapi-resnet's recommended euclidean threshold/);
  });

  it('a photo against itself is distance 0 (not the 0.0006 float32 rounding gave through the dot product)', async () => {
    const run = await verify('obama2.jpg', 'obama2.jpg', '--json');
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout) as VerifyJson).distance).toBe(0);
    const cosine = await verify('obama2.jpg', 'obama2.jpg', '--json', '--metric', 'cosine');
    expect((JSON.parse(cosine.stdout) as VerifyJson).distance).toBeLessThan(1e-12);
  });

  it('obama vs biden: different people, one line on stdout', async () => {
    const run = await verify('obama.jpg', 'biden.jpg');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /^different people\teuclidean distance [\d.]+ > [\d.]+\t\(faceapi-resnet\)\n$/,
    );
  });

  it('a photo without a face is bad input naming the file (exit 2)', async () => {
    const white = sharedPath('faces', 'face-api.js', 'test', 'white.png');
    const run = await cli('verify', image('obama.jpg'), white, '--embedder', 'faceapi-resnet');
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`facerec: no face found in ${white}\n`);
    expect(run.stdout).toBe('');
  });

  it('shows a name with control characters escaped in its warnings and errors (one line each)', async () => {
    // A name with a newline would otherwise write a second line of the file's choosing.
    const odd = path.join(work, 'a\nfacerec: forged.jpg');
    await copyFile(image('obama.jpg'), odd);
    const run = await cli('verify', odd, image('obama2.jpg'), '--embedder', 'faceapi-resnet');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`warning: ${path.join(work, 'a\\nfacerec: forged.jpg')} shows 2 faces;`);
    expect(run.stderr).not.toMatch(/^facerec: forged/m);
    const white = path.join(work, 'w\nfacerec: forged.png');
    await copyFile(sharedPath('faces', 'face-api.js', 'test', 'white.png'), white);
    const none = await cli('verify', image('obama.jpg'), white, '--embedder', 'faceapi-resnet');
    expect([none.code, none.stderr]).toEqual([
      2,
      `facerec: no face found in ${path.join(work, 'w\\nfacerec: forged.png')}\n`,
    ]);
  });

  it('refuses an embedder that ships no threshold unless --threshold is given, before loading it', async () => {
    const run = await cli('verify', image('obama.jpg'), image('biden.jpg'));
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /no euclidean threshold is known for inception-resnet-v1\/vggface2 \(none is shipped: .*\); pass --threshold/,
    );
    const missing = await cli(
      'verify',
      image('obama.jpg'),
      image('nobody.jpg'),
      '--embedder',
      'faceapi-resnet',
    );
    expect([missing.code, missing.stderr]).toEqual([
      2,
      `facerec: cannot read ${image('nobody.jpg')}: no such file\n`,
    ]);
  });
  it('--precision int8 runs the calibrated int8 graph and still tells obama from biden', async () => {
    // Calibrated on the bbt face shots: none of them is one of the photos compared.
    vi.stubEnv('FACEREC_CALIBRATION_DIR', sharedPath('faces', 'face-api.js', 'bbt'));
    const same = JSON.parse(
      (await verify('obama.jpg', 'obama2.jpg', '--json', '--precision', 'int8')).stdout,
    );
    const other = JSON.parse(
      (await verify('obama.jpg', 'biden.jpg', '--json', '--precision', 'int8')).stdout,
    );
    expect([same.verified, other.verified]).toEqual([true, false]);
    // With no calibration folder named, face-api.js's net uses the ranges shipped for its weights.
    vi.stubEnv('FACEREC_CALIBRATION_DIR', '');
    const shipped = JSON.parse(
      (await verify('obama.jpg', 'biden.jpg', '--json', '--precision', 'int8')).stdout,
    );
    expect(shipped.verified).toBe(false);
    // A calibration folder named but missing is refused, naming it.
    vi.stubEnv('FACEREC_CALIBRATION_DIR', image('no-such-folder'));
    const refused = await verify('obama.jpg', 'obama2.jpg', '--precision', 'int8');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      `calibration folder ${image('no-such-folder')} (from $FACEREC_CALIBRATION_DIR) cannot be read`,
    );
    const invalid = await verify('obama.jpg', 'obama2.jpg', '--precision', 'int4');
    expect(invalid.stderr).toContain("'int4' is invalid");
  });
});
