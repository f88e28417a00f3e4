import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { decodeImage, InvalidOptionsError } from '@facerec/framework';
import { MtcnnDetector, type MtcnnNetworks, resizeRgb } from '@facerec/framework/internal';
import {
  selectBackend,
  TFJS_BACKEND_PACKAGES,
  TFJS_BACKENDS,
  type TfjsBackendName,
  TfjsBackendUnavailableError,
  TfjsMtcnnNetworks,
} from '@facerec/provider-tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type BackendProbe, chooseBackend } from '../src/backend.js';

const require = createRequire(import.meta.url);
const installed = (pkg: string): boolean => {
  try {
    require.resolve(pkg);
    return true;
  } catch {
    return false;
  }
};
const hasTfjsNode = installed('@tensorflow/tfjs-node');
const hasWasm = installed('@tensorflow/tfjs-backend-wasm');

const fakeProbes =
  (results: Partial<Record<TfjsBackendName, BackendProbe>>) =>
  async (name: TfjsBackendName): Promise<BackendProbe> =>
    results[name] ?? { ok: true };

describe('backend list and fallback rule', () => {
  it('is a frozen list in fallback order, each with its package', () => {
    expect(TFJS_BACKENDS).toEqual(['tensorflow', 'wasm', 'cpu']);
    expect(Object.isFrozen(TFJS_BACKENDS)).toBe(true);
    expect(Object.isFrozen(TFJS_BACKEND_PACKAGES)).toBe(true);
    expect(TFJS_BACKEND_PACKAGES.tensorflow).toBe('@tensorflow/tfjs-node');
    expect(TFJS_BACKEND_PACKAGES.wasm).toBe('@tensorflow/tfjs-backend-wasm');
  });

  it('takes the first backend that starts, giving why the earlier ones did not', async () => {
    const tried: string[] = [];
    const probe = async (name: TfjsBackendName): Promise<BackendProbe> => {
      tried.push(name);
      return name === 'cpu'
        ? { ok: true }
        : { ok: false, reason: `${TFJS_BACKEND_PACKAGES[name]} not installed` };
    };
    expect(await chooseBackend(undefined, probe)).toEqual({
      name: 'cpu',
      reason: '@tensorflow/tfjs-node not installed; @tensorflow/tfjs-backend-wasm not installed',
    });
    expect(tried).toEqual(['tensorflow', 'wasm', 'cpu']);
    expect(await chooseBackend(undefined, fakeProbes({}))).toEqual({
      name: 'tensorflow',
      reason: '@tensorflow/tfjs-node is installed',
    });
    expect(
      await chooseBackend(
        undefined,
        fakeProbes({ tensorflow: { ok: false, reason: 'x failed to load: boom' } }),
      ),
    ).toEqual({ name: 'wasm', reason: 'x failed to load: boom' });
  });

  it('tries only the requested backend, and throws TfjsBackendUnavailableError with the cause', async () => {
    const cause = new Error('no libtensorflow');
    const error = await chooseBackend(
      'tensorflow',
      fakeProbes({ tensorflow: { ok: false, reason: 'failed to load', cause } }),
    ).catch((e: unknown) => e);
    expect(TfjsBackendUnavailableError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ backend: 'tensorflow', reason: 'failed to load', cause });
    expect(await chooseBackend('cpu', fakeProbes({ tensorflow: { ok: false, reason: 'x' } }))).toEqual({
      name: 'cpu',
      reason: 'requested with the backend option',
    });
  });

  it('throws when no backend starts at all', async () => {
    const none = async (name: TfjsBackendName): Promise<BackendProbe> => ({
      ok: false,
      reason: `${name} broken`,
    });
    await expect(chooseBackend(undefined, none)).rejects.toThrow(
      /tensorflow broken; wasm broken; cpu broken/,
    );
  });
});

describe('selectBackend', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('falls back to the first installed backend and logs one line saying which and why', async () => {
    const lines: string[] = [];
    const selected = await selectBackend({ logger: (line) => lines.push(line) });
    const expected = hasTfjsNode
      ? { name: 'tensorflow', reason: '@tensorflow/tfjs-node is installed' }
      : hasWasm
        ? {
            name: 'wasm',
            reason: '@tensorflow/tfjs-node not installed (`npm install @tensorflow/tfjs-node`)',
          }
        : {
            name: 'cpu',
            reason:
              '@tensorflow/tfjs-node not installed (`npm install @tensorflow/tfjs-node`); @tensorflow/tfjs-backend-wasm not installed (`npm install @tensorflow/tfjs-backend-wasm`)',
          };
    expect(selected).toEqual(expected);
    expect(lines).toEqual([`facerec tfjs: using backend "${expected.name}" (${expected.reason})`]);
    expect(tf.getBackend()).toBe(expected.name);
  });

  it('writes the line to stderr by default, and nothing to stdout', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const stdout = vi.spyOn(process.stdout, 'write');
    await selectBackend({ backend: 'cpu' });
    expect(stderr.mock.calls).toEqual([
      ['facerec tfjs: using backend "cpu" (requested with the backend option)\n'],
    ]);
    expect(stdout).not.toHaveBeenCalled();
    expect(tf.getBackend()).toBe('cpu');
  });

  it('rejects an unknown backend with InvalidOptionsError listing the valid ones', async () => {
    const error = await selectBackend({ backend: 'webgl' as TfjsBackendName, logger: () => {} }).catch(
      (e: unknown) => e,
    );
    expect(InvalidOptionsError.isInstance(error)).toBe(true);
    expect(String(error)).toContain('valid backends: tensorflow, wasm, cpu');
  });

  it.skipIf(hasTfjsNode)(
    'fails clearly when tensorflow is requested without @tensorflow/tfjs-node',
    async () => {
      const lines: string[] = [];
      const error = await selectBackend({ backend: 'tensorflow', logger: (l) => lines.push(l) }).catch(
        (e: unknown) => e,
      );
      expect(TfjsBackendUnavailableError.isInstance(error)).toBe(true);
      expect((error as Error).message).toBe(
        'TensorFlow.js backend "tensorflow" is unavailable: @tensorflow/tfjs-node not installed (`npm install @tensorflow/tfjs-node`)',
      );
      expect(lines).toEqual([]);
    },
  );
});

/** facenet-pytorch's MTCNN weights, from the shared data. */
async function mtcnnStateDicts() {
  const { readCheckpointFile } = await import('@facerec/framework');
  const { sharedPath } = await import('@facerec/framework/testing');
  const upstream = (f: string) => readCheckpointFile(sharedPath('models', 'upstream', f));
  return {
    pnet: await upstream('pnet.pt'),
    rnet: await upstream('rnet.pt'),
    onet: await upstream('onet.pt'),
  };
}

describe.skipIf(!hasWasm)('P-Net strips on wasm', () => {
  it('runs P-Net levels above 2 Mi pixels in strips, with exactly the results of whole levels', async () => {
    // Whole, a 50-megapixel frame's first level overflowed the wasm backend's 4 GiB and broke it for the process.
    const { sharedPath } = await import('@facerec/framework/testing');
    const networks = await TfjsMtcnnNetworks.fromStateDicts(await mtcnnStateDicts(), 'wasm');
    expect(networks.pnetPixelLimit()).toBe(2 * 1024 * 1024);
    const unlimited: MtcnnNetworks = {
      pnet: (input, count, height, width) => networks.pnet(input, count, height, width),
      rnet: (...args) => networks.rnet(...args),
      onet: (...args) => networks.onet(...args),
      dispose: async () => {},
    };
    const strips = new MtcnnDetector('tfjs', Promise.resolve(networks));
    const whole = new MtcnnDetector('tfjs', Promise.resolve(unlimited));
    // 3000×2000: the first level (1800×1200) is above the limit and runs in two strips.
    const photo = await decodeImage(await readFile(sharedPath('faces', 'facenet-pytorch', 'multiface.jpg')));
    const frame = await resizeRgb(photo, 3000, 2000);
    try {
      const expected = await whole.detect(frame);
      expect(expected.length).toBeGreaterThanOrEqual(5);
      expect(await strips.detect(frame)).toEqual(expected);
    } finally {
      await strips.dispose();
    }
  }, 120_000);
});

describe.skipIf(!hasWasm)('models on different backends in one process', () => {
  it('each run on its own backend, with the same results', async () => {
    const stateDicts = await mtcnnStateDicts();
    const wasm = await TfjsMtcnnNetworks.fromStateDicts(stateDicts, 'wasm');
    const cpu = await TfjsMtcnnNetworks.fromStateDicts(stateDicts, 'cpu');
    const input = Float32Array.from({ length: 5 * 3 * 48 * 48 }, (_, i) => Math.sin(i * 0.37));
    const backends: string[] = [];
    try {
      const a = await wasm.onet(input, 5);
      backends.push(tf.getBackend());
      const b = await cpu.onet(input, 5);
      backends.push(tf.getBackend());
      const c = await wasm.onet(input, 5);
      backends.push(tf.getBackend());
      expect(backends).toEqual(['wasm', 'cpu', 'wasm']);
      expect(c).toEqual(a);
      for (const key of ['prob', 'reg', 'landmarks'] as const) {
        a[key].forEach((v, i) => {
          expect(Math.abs(v - b[key][i]!)).toBeLessThan(1e-4);
        });
      }
    } finally {
      await wasm.dispose();
      await cpu.dispose();
    }
  });

  it('runs overlapping calls of models on different backends each on its own (none is switched under another)', async () => {
    const stateDicts = await mtcnnStateDicts();
    // Built at once too: the weights of each are made with its own backend active.
    const [wasm, cpu] = await Promise.all([
      TfjsMtcnnNetworks.fromStateDicts(stateDicts, 'wasm'),
      TfjsMtcnnNetworks.fromStateDicts(stateDicts, 'cpu'),
    ]);
    const input = Float32Array.from({ length: 5 * 3 * 48 * 48 }, (_, i) => Math.sin(i * 0.37));
    try {
      const alone = { wasm: await wasm.onet(input, 5), cpu: await cpu.onet(input, 5) };
      // wasm and cpu differ in the last bits, so a wasm call run on cpu shows.
      expect(alone.wasm.prob).not.toEqual(alone.cpu.prob);
      const overlapping = await Promise.all(
        Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? wasm : cpu).onet(input, 5)),
      );
      overlapping.forEach((out, i) => {
        expect(out).toEqual(i % 2 === 0 ? alone.wasm : alone.cpu);
      });
    } finally {
      await wasm.dispose();
      await cpu.dispose();
    }
  });
});

describe.runIf(hasWasm)('the wasm backend in an application', () => {
  it("leaves the process's error listeners as they were: a stray rejection reaches the application's own", () => {
    // In a fresh process: the backend starts once per process. Its Emscripten glue added listeners that rethrew,
    // so any rejection nobody handled ended the process before the application's listener ran.
    const child = `
      const counts = () => ['uncaughtException', 'unhandledRejection'].map((e) => process.listeners(e).length);
      const before = counts();
      const { selectBackend } = await import('@facerec/provider-tfjs');
      await selectBackend({ backend: 'wasm', logger: () => {} });
      const after = counts();
      process.on('unhandledRejection', (reason) => {
        console.log(JSON.stringify({ before, after, seen: String(reason) }));
      });
      Promise.reject(new Error('stray'));
      setTimeout(() => console.log('alive'), 50);
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', child], {
      cwd: import.meta.dirname,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const [report, alive] = out.trim().split('\n');
    expect(JSON.parse(report!)).toEqual({ before: [0, 0], after: [0, 0], seen: 'Error: stray' });
    expect(alive).toBe('alive');
  });
});
