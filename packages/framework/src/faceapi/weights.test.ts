import { mkdtempSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { concat } from '../checkpoint/__fixtures__/pickle-builder.js';
import { CheckpointError } from '../errors.js';
import { loadManifest } from '../models/manifest.js';
import { ModelStore } from '../models/store.js';
import { faceApiResnetWeightShapes } from './architecture.js';
import { decodeTfjsWeights, parseTfjsWeightsManifest, readTfjsWeightsFile } from './weights.js';

const le = {
  f32: (values: number[]) => new Uint8Array(Float32Array.from(values).buffer),
  i32: (values: number[]) => new Uint8Array(Int32Array.from(values).buffer),
  u16: (values: number[]) => new Uint8Array(Uint16Array.from(values).buffer),
};

// float32 [2, 2] | uint8 [3] (scale 0.5, min −1) | float16 [2] | uint16 [2] | int32 [2]; split over two shards
// mid-weight, as tfjs does with its 4 MB shards.
const manifest = [
  {
    paths: ['a.bin', 'b.bin'],
    weights: [
      { name: 'w/float', shape: [2, 2], dtype: 'float32' },
      { name: 'w/u8', shape: [3], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.5, min: -1 } },
      { name: 'w/f16', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
      {
        name: 'w/u16',
        shape: [2],
        dtype: 'float32',
        quantization: { dtype: 'uint16', scale: 0.25, min: 2 },
      },
      { name: 'w/int', shape: [2], dtype: 'int32' },
    ],
  },
];
// 0x3c00 = 1.0, 0xc000 = −2.0 in binary16.
const payload = concat([
  le.f32([1.5, -2, 3.25, 1e-7]),
  Uint8Array.of(0, 2, 255),
  le.u16([0x3c00, 0xc000]),
  le.u16([0, 4]),
  le.i32([7, -3]),
]);
const shards = () =>
  new Map([
    ['a.bin', payload.subarray(0, 10)],
    ['b.bin', payload.subarray(10)],
  ]);

describe('decodeTfjsWeights', () => {
  it('decodes float32, int32 and uint8/uint16/float16-quantised weights across shards', () => {
    const weights = decodeTfjsWeights(manifest, shards());
    expect([...weights.keys()]).toEqual(['w/float', 'w/u8', 'w/f16', 'w/u16', 'w/int']);
    expect(weights.get('w/float')).toMatchObject({ dtype: 'float32', shape: [2, 2] });
    expect([...weights.get('w/float')!.data]).toEqual([...Float32Array.from([1.5, -2, 3.25, 1e-7])]);
    expect([...weights.get('w/u8')!.data]).toEqual([-1, 0, 126.5]);
    expect([...weights.get('w/f16')!.data]).toEqual([1, -2]);
    expect([...weights.get('w/u16')!.data]).toEqual([2, 3]);
    expect(weights.get('w/int')).toMatchObject({ dtype: 'int32', shape: [2] });
    expect([...weights.get('w/int')!.data]).toEqual([7, -3]);
  });

  it('accepts the manifest as JSON text', () => {
    expect(decodeTfjsWeights(JSON.stringify(manifest), shards()).size).toBe(5);
  });

  it('refuses shards that do not hold exactly the bytes the manifest needs', () => {
    const short = new Map([
      ['a.bin', payload.subarray(0, 10)],
      ['b.bin', payload.subarray(10, payload.length - 1)],
    ]);
    expect(() => decodeTfjsWeights(manifest, short, { source: 'm.json' })).toThrow(CheckpointError);
    expect(() => decodeTfjsWeights(manifest, short, { source: 'm.json' })).toThrow(
      `m.json: weights group 0 needs ${payload.length} bytes for its 5 weights, but its shards (a.bin, b.bin) hold ${payload.length - 1} bytes (truncated?)`,
    );
    const long = new Map([...shards(), ['b.bin', concat([payload.subarray(10), Uint8Array.of(0)])]]);
    expect(() => decodeTfjsWeights(manifest, long)).toThrow(/hold 36 bytes$/);
    expect(() => decodeTfjsWeights(manifest, new Map([['a.bin', payload]]))).toThrow(
      /missing weights shard "b.bin"/,
    );
  });
});

describe('parseTfjsWeightsManifest', () => {
  const one = (weight: object, paths = ['x.bin']) => [{ paths, weights: [weight] }];
  it.each([
    ['invalid JSON', '[{', /not valid JSON/],
    ['a non-manifest', { paths: [] }, /not a tfjs weights manifest/],
    [
      'a duplicate name',
      [{ paths: [], weights: [manifest[0]!.weights[0], manifest[0]!.weights[0]] }],
      /twice/,
    ],
    [
      'a quantised weight without scale',
      one({ name: 'q', shape: [1], dtype: 'float32', quantization: { dtype: 'uint8', min: 0 } }),
      /lacks scale or min/,
    ],
    ['a string weight', one({ name: 's', shape: [1], dtype: 'string' }), /only float32 and int32/],
    [
      'a shard outside the folder',
      one({ name: 'f', shape: [1], dtype: 'float32' }, ['../x.bin']),
      /relative/,
    ],
    ['an absolute shard path', one({ name: 'f', shape: [1], dtype: 'float32' }, ['/etc/x.bin']), /relative/],
  ])('refuses %s with a CheckpointError', (_, json, message) => {
    const error = (() => {
      try {
        parseTfjsWeightsManifest(json, { source: 'm.json' });
      } catch (e) {
        return e;
      }
    })();
    expect(CheckpointError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/^m\.json: /);
    expect((error as Error).message).toMatch(message);
  });
});

describe('readTfjsWeightsFile', () => {
  it('reads a manifest and the shards beside it, naming the manifest in errors', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'facerec-tfjs-'));
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'a.bin'), payload.subarray(0, 10));
    await writeFile(path.join(dir, 'b.bin'), payload.subarray(10));
    const file = path.join(dir, 'm.json');
    await writeFile(file, JSON.stringify(manifest));
    expect([...(await readTfjsWeightsFile(file)).get('w/u8')!.data]).toEqual([-1, 0, 126.5]);

    await writeFile(file, JSON.stringify([{ ...manifest[0], paths: ['a.bin', 'gone.bin'] }]));
    const error = await readTfjsWeightsFile(file).catch((e: unknown) => e);
    expect(CheckpointError.isInstance(error)).toBe(true);
    expect((error as CheckpointError).source).toBe(file);
    expect((error as Error).message).toMatch(/cannot read .*gone\.bin/);
  });

  it('reads face-api.js recognition weights from the npm package: every weight of the architecture', async () => {
    const store = new ModelStore({
      manifest: await loadManifest(),
      cacheDir: mkdtempSync(path.join(tmpdir(), 'facerec-test-')),
      fetch: () => Promise.reject(new Error('tests run offline')),
    });
    const manifestPath = await store.resolve('faceapi-face-recognition-manifest');
    await store.resolve('faceapi-face-recognition-weights');
    const weights = await readTfjsWeightsFile(manifestPath);
    const expected = faceApiResnetWeightShapes();
    expect([...weights.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, shape] of expected) {
      expect(weights.get(name)!.shape, name).toEqual(shape);
      expect(weights.get(name)!.data.every(Number.isFinite), name).toBe(true);
    }
    // The file mixes uint8-quantised tensors and plain float32 ones (the conv64 filters).
    const raw = parseTfjsWeightsManifest(await readFile(manifestPath, 'utf8'));
    const kinds = new Set(raw[0]!.weights.map((w) => w.quantization?.dtype ?? w.dtype));
    expect(kinds).toEqual(new Set(['uint8', 'float32']));
  });
});
