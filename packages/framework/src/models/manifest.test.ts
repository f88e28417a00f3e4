import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidOptionsError } from '../errors.js';
import { describeWithSharedData, sharedPath } from '../testing/shared-data.js';
import { loadManifest, type ModelManifest, parseManifest } from './manifest.js';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('model manifest', () => {
  it('validates and lists the known models', async () => {
    const manifest = await loadManifest();
    expect(manifest.models.map((m) => m.name)).toEqual([
      'mtcnn-pnet',
      'mtcnn-rnet',
      'mtcnn-onet',
      'inception-resnet-v1-vggface2',
      'inception-resnet-v1-casia-webface',
      'faceapi-face-recognition-weights',
      'faceapi-face-recognition-manifest',
    ]);
  });

  it('leaves the InceptionResnetV1 hashes to trust on first use, and says so', async () => {
    const manifest = await loadManifest();
    for (const name of ['inception-resnet-v1-vggface2', 'inception-resnet-v1-casia-webface']) {
      const entry = manifest.models.find((m) => m.name === name)!;
      expect(entry.sha256).toBeNull();
      expect(entry.size).toBeNull();
      expect(entry.notes).toMatch(/trust on first use/);
      expect(entry.url).toMatch(
        /^https:\/\/github\.com\/timesler\/facenet-pytorch\/releases\/download\/v2\.2\.9\//,
      );
    }
  });

  it('matches the face-api files installed in node_modules', async () => {
    const manifest = await loadManifest();
    const require = createRequire(import.meta.url);
    const root = path.dirname(require.resolve('@vladmandic/face-api/package.json'));
    for (const entry of manifest.models.filter((m) => typeof m.source === 'object')) {
      const source = entry.source as { npm: string; path: string };
      expect(source.npm).toBe('@vladmandic/face-api');
      const file = path.join(root, source.path);
      expect(entry.size).toBe(statSync(file).size);
      expect(entry.sha256).toBe(sha256(file));
    }
  });

  it('rejects duplicates, unsafe file names and malformed hashes', async () => {
    const good = await loadManifest();
    const first = good.models[0]!;
    const variants: unknown[] = [
      { ...good, models: [first, first] },
      { ...good, models: [{ ...first, file: '../evil.pt' }] },
      { ...good, models: [{ ...first, sha256: 'ABC' }] },
      { ...good, models: [{ ...first, source: { npm: 'x', path: '../../etc/passwd' } }] },
      { ...good, models: [{ ...first, url: 'file:///etc/passwd' }] },
      { ...good, version: 2 },
    ];
    for (const bad of variants) expect(() => parseManifest(bad)).toThrow(InvalidOptionsError);
  });
});

describeWithSharedData('model manifest vs shared upstream files', ['models/upstream/SHA256SUMS'], () => {
  it('has the MTCNN hashes and sizes of SHA256SUMS', async () => {
    const manifest: ModelManifest = await loadManifest();
    const sums = new Map(
      readFileSync(sharedPath('models/upstream/SHA256SUMS'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => {
          const [hash, file] = line.trim().split(/\s+/);
          return [file!, hash!] as const;
        }),
    );
    for (const net of ['pnet', 'rnet', 'onet']) {
      const entry = manifest.models.find((m) => m.name === `mtcnn-${net}`)!;
      expect(entry.file).toBe(`${net}.pt`);
      expect(entry.sha256).toBe(sums.get(entry.file));
      expect(entry.size).toBe(statSync(sharedPath('models/upstream', entry.file)).size);
      expect(entry.license).toBe('MIT');
      expect(entry.url).toBe(
        `https://raw.githubusercontent.com/timesler/facenet-pytorch/787da06156087cd6b616fe6608213722bddc30cd/data/${net}.pt`,
      );
    }
  });
});
