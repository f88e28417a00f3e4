import * as childProcess from 'node:child_process';
import { zipSync } from 'fflate';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CheckpointError } from '../errors.js';
import { thrownBy } from '../testing/errors.js';
import { seededRandom } from '../testing/random.js';
import {
  concat,
  legacyCheckpoint,
  legacyHeader,
  PickleWriter,
  stateDictPickle,
  tensorSpec,
  zipCheckpoint,
} from './__fixtures__/pickle-builder.js';
import { readCheckpoint } from './index.js';
import { unpickle } from './pickle.js';
import { TORCH_GLOBALS, torchRefusalReason } from './torch.js';

// Every way a pickle could reach the OS goes through these; if the reader ever ran anything, they would
// record it.
vi.mock('node:child_process', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:child_process')>();
  return {
    ...actual,
    exec: vi.fn(),
    execSync: vi.fn(),
    execFile: vi.fn(),
    execFileSync: vi.fn(),
    spawn: vi.fn(),
    spawnSync: vi.fn(),
    fork: vi.fn(),
  };
});

function expectNothingRan(): void {
  const { exec, execSync, execFile, execFileSync, spawn, spawnSync, fork } = childProcess;
  for (const [name, fn] of Object.entries({
    exec,
    execSync,
    execFile,
    execFileSync,
    spawn,
    spawnSync,
    fork,
  })) {
    expect(vi.mocked(fn), name).not.toHaveBeenCalled();
  }
}

/** What `pickle.dumps` emits for `os.system('id')` via __reduce__, protocol 2. */
const GLOBAL_REDUCE = new Uint8Array([
  ...[0x80, 0x02],
  ...new TextEncoder().encode('cposix\nsystem\n'),
  ...[
    0x71, 0x00, 0x58, 0x02, 0x00, 0x00, 0x00, 0x69, 0x64, 0x71, 0x01, 0x85, 0x71, 0x02, 0x52, 0x71, 0x03,
    0x2e,
  ],
]);

/** The same call as protocol 4 writes it: SHORT_BINUNICODE names + STACK_GLOBAL, inside a FRAME. */
const STACK_GLOBAL_REDUCE = (() => {
  const body = new PickleWriter()
    .stackGlobal('posix', 'system')
    .shortUnicode('id')
    .memoize()
    .tuple1()
    .memoize();
  body.reduce().memoize().stop();
  const inner = body.bytes();
  return concat([new PickleWriter().proto(4).frame(inner.length).bytes(), inner]);
})();

function expectRefused(bytes: Uint8Array, global = 'posix.system'): void {
  const caught = thrownBy(() => readCheckpoint(bytes, { source: 'evil.pt' }));
  expect(caught).toBeInstanceOf(CheckpointError);
  const error = caught as CheckpointError;
  expect(error.message).toContain(
    `refusing to load global "${global}": only PyTorch tensor/state-dict globals are allowed`,
  );
  expect(error.source).toBe('evil.pt');
  expect(error.code).toBe('INVALID_CHECKPOINT');
}

describe('readCheckpoint refuses code execution', () => {
  const evalSpy = vi.spyOn(globalThis, 'eval');
  afterEach(() => {
    expectNothingRan();
    expect(evalSpy).not.toHaveBeenCalled();
  });

  it('refuses GLOBAL posix.system + REDUCE as a bare pickle', () => {
    expectRefused(GLOBAL_REDUCE);
  });

  it('refuses the STACK_GLOBAL (protocol 4) variant', () => {
    expectRefused(STACK_GLOBAL_REDUCE);
  });

  it('refuses both inside a legacy-format container (after a valid header)', () => {
    expectRefused(concat([legacyHeader(), GLOBAL_REDUCE]));
    expectRefused(concat([legacyHeader(), STACK_GLOBAL_REDUCE]));
  });

  it('refuses both as data.pkl of a zip-format container', () => {
    expectRefused(zipCheckpoint(GLOBAL_REDUCE, {}));
    expectRefused(zipCheckpoint(STACK_GLOBAL_REDUCE, {}, { prefix: 'model' }));
  });

  it('refuses other well-known gadgets, by name', () => {
    for (const [module, name] of [
      ['nt', 'system'],
      ['os', 'system'],
      ['builtins', 'eval'],
      ['builtins', 'exec'],
      ['__builtin__', 'eval'],
      ['subprocess', 'Popen'],
      ['builtins', 'getattr'],
      ['torch.nn.modules.conv', 'Conv2d'],
    ] as const) {
      const pickle = new PickleWriter()
        .proto(2)
        .global(module, name)
        .str('x')
        .tuple1()
        .reduce()
        .stop()
        .bytes();
      const caught = thrownBy(() => readCheckpoint(zipCheckpoint(pickle, {})));
      expect(caught).toBeInstanceOf(CheckpointError);
      expect((caught as Error).message).toContain(`refusing to load global "${module}.${name}"`);
    }
  });

  it('refuses a malicious global hidden after valid tensors in a state dict', () => {
    const tensors = stateDictPickle([tensorSpec('w', 'FloatStorage', '0', 1)], false);
    // Replace STOP with: a second SETITEM whose value is posix.system('id').
    const evil = new PickleWriter()
      .str('evil')
      .global('posix', 'system')
      .str('id')
      .tuple1()
      .reduce()
      .setItem()
      .stop();
    const pickle = concat([tensors.subarray(0, tensors.length - 1), evil.bytes()]);
    expectRefused(zipCheckpoint(pickle, { 0: new Uint8Array(4) }));
  });

  it('never calls an allow-listed binding when the pickle is refused', () => {
    const spy = vi.fn(() => new Map());
    const pickle = new PickleWriter()
      .proto(2)
      .global('collections', 'OrderedDict')
      .emptyTuple()
      .reduce()
      .global('posix', 'system')
      .stop()
      .bytes();
    expect(() =>
      unpickle(pickle, { globals: new Map([['collections.OrderedDict', { call: spy }]]) }),
    ).toThrow(/refusing to load global "posix.system"/);
    // The OrderedDict call before the refusal is the only call, and it is the harmless stand-in.
    expect(spy).toHaveBeenCalledTimes(1);
  });

  it('refuses REDUCE on anything that is not an allow-listed callable', () => {
    // A string pretending to be a callable.
    const onString = new PickleWriter().proto(2).str('os.system').str('id').tuple1().reduce().stop().bytes();
    expect(() => readCheckpoint(onString)).toThrow(
      /refusing REDUCE on str: only allow-listed globals can be called/,
    );
    // A marker global (a storage class) is not callable.
    const onMarker = new PickleWriter()
      .proto(2)
      .global('torch', 'FloatStorage')
      .int(3)
      .tuple1()
      .reduce()
      .stop();
    expect(() => readCheckpoint(zipCheckpoint(onMarker.bytes(), {}))).toThrow(
      /refusing REDUCE on global "torch.FloatStorage": it is not callable/,
    );
  });

  it('refuses BUILD on anything but a state dict', () => {
    const pickle = new PickleWriter().proto(2).emptyList().emptyDict().build().stop().bytes();
    expect(() => readCheckpoint(zipCheckpoint(pickle, {}))).toThrow(/refusing BUILD of dict on list/);
  });

  it('refuses INST and OBJ, which instantiate arbitrary classes', () => {
    const inst = new PickleWriter()
      .proto(2)
      .mark()
      .raw(0x69, ...new TextEncoder().encode('posix\nsystem\n'))
      .stop();
    expect(() => readCheckpoint(inst.bytes())).toThrow(/refusing pickle opcode INST \(0x69\)/);
    const obj = new PickleWriter().proto(2).mark().global('collections', 'OrderedDict').raw(0x6f).stop();
    expect(() => readCheckpoint(zipCheckpoint(obj.bytes(), {}))).toThrow(
      /refusing pickle opcode OBJ \(0x6f\)/,
    );
  });

  it('names unsupported torch globals differently from foreign ones', () => {
    expect(torchRefusalReason('torch._utils._rebuild_sparse_tensor')).toMatch(/dense tensors/);
    expect(torchRefusalReason('torch.uint16')).toMatch(/unsupported element type; supported: float32, /);
    expect(torchRefusalReason('torch.ComplexFloatStorage')).toMatch(/unsupported element type/);
    expect(torchRefusalReason('posix.system')).toBe('only PyTorch tensor/state-dict globals are allowed');
    expect(TORCH_GLOBALS.has('posix.system')).toBe(false);
    expect(TORCH_GLOBALS.has('builtins.eval')).toBe(false);
  });

  it('refuses a pickled nn.Module (persistent id "module")', () => {
    const pickle = new PickleWriter()
      .proto(2)
      .mark()
      .str('module')
      .str('x')
      .tuple()
      .binpersid()
      .stop()
      .bytes();
    expect(() => readCheckpoint(zipCheckpoint(pickle, {}))).toThrow(/whole nn.Module/);
  });
});

describe('readCheckpoint rejects malformed input with CheckpointError', () => {
  const good = zipCheckpoint(stateDictPickle([tensorSpec('w', 'FloatStorage', '0', 4)], false), {
    0: new Uint8Array(16),
  });
  const goodLegacy = legacyCheckpoint(stateDictPickle([tensorSpec('w', 'FloatStorage', '7', 4)], true), [
    { key: '7', numel: 4, data: new Uint8Array(16) },
  ]);

  function expectCheckpointError(bytes: Uint8Array, pattern?: RegExp): void {
    const caught = thrownBy(() => readCheckpoint(bytes, { source: 'bad.pt' }));
    expect(caught).toBeInstanceOf(CheckpointError);
    expect((caught as CheckpointError).source).toBe('bad.pt');
    if (pattern) expect((caught as Error).message).toMatch(pattern);
  }

  it('reads the untruncated fixtures (sanity check for the cases below)', () => {
    expect(readCheckpoint(good).get('w')!.shape).toEqual([4]);
    expect(readCheckpoint(goodLegacy).get('w')!.shape).toEqual([4]);
  });

  it('rejects every truncation of a legacy checkpoint', () => {
    for (let n = 0; n < goodLegacy.length; n++) expectCheckpointError(goodLegacy.subarray(0, n));
    expectCheckpointError(goodLegacy.subarray(0, goodLegacy.length - 3), /truncated checkpoint: storage "7"/);
  });

  it('rejects every truncation of a zip checkpoint', () => {
    for (let n = 0; n < good.length; n++) expectCheckpointError(good.subarray(0, n));
  });

  it('rejects random bytes', () => {
    const random = seededRandom(12345);
    for (let trial = 0; trial < 200; trial++) {
      const bytes = Uint8Array.from({ length: 1 + (trial % 64) * 7 }, () => Math.floor(random() * 256));
      // Also force the two recognised leading signatures so the deeper parsers see garbage too.
      if (trial % 3 === 1) bytes.set([0x80, 0x02].slice(0, bytes.length));
      if (trial % 3 === 2) bytes.set([0x50, 0x4b, 0x03, 0x04].slice(0, bytes.length));
      expectCheckpointError(bytes);
    }
  });

  it('rejects an empty file and unknown formats with a clear message', () => {
    expectCheckpointError(new Uint8Array(0), /the file is empty/);
    expectCheckpointError(new TextEncoder().encode('hello world'), /unrecognised leading bytes 68 65 6c 6c/);
  });

  it('rejects an unknown opcode, naming its byte and offset', () => {
    const pickle = new PickleWriter().proto(2).emptyDict().raw(0xff).stop().bytes();
    expectCheckpointError(pickle, /unknown or unsupported pickle opcode 0xff .*offset 3/);
    expectCheckpointError(zipCheckpoint(pickle, {}), /opcode 0xff \(archive\/data.pkl offset 3\)/);
  });

  it('rejects a pickle without STOP and one with a stack underflow', () => {
    expectCheckpointError(
      zipCheckpoint(new PickleWriter().proto(2).emptyDict().bytes(), {}),
      /ended without STOP/,
    );
    expectCheckpointError(
      zipCheckpoint(new PickleWriter().proto(2).setItem().stop().bytes(), {}),
      /underflow/,
    );
  });

  it('rejects a zip without data.pkl', () => {
    expectCheckpointError(zipSync({ 'x/other.txt': new Uint8Array(3) }), /no data.pkl/);
  });

  it('rejects a storage entry shorter than the pickle declares', () => {
    const pickle = stateDictPickle([tensorSpec('w', 'FloatStorage', '0', 4)], false);
    expectCheckpointError(
      zipCheckpoint(pickle, { 0: new Uint8Array(15) }),
      /has 15 bytes, the pickle declares 16/,
    );
  });

  it('rejects a missing storage entry', () => {
    const pickle = stateDictPickle([tensorSpec('w', 'FloatStorage', '0', 4)], false);
    expectCheckpointError(zipCheckpoint(pickle, {}), /storage "0" has no data/);
  });

  it('rejects views that reach outside their storage', () => {
    for (const [offset, size, stride] of [
      [1, [4], [1]],
      [0, [2, 3], [3, 1]],
      [0, [3], [2]],
    ] as const) {
      const pickle = stateDictPickle(
        [tensorSpec('w', 'FloatStorage', '0', 4, { offset, size: [...size], stride: [...stride] })],
        false,
      );
      expectCheckpointError(zipCheckpoint(pickle, { 0: new Uint8Array(16) }), /reaches element/);
    }
  });

  it('caps broadcast (stride-0) views that would expand a tiny storage into a huge tensor', () => {
    const pickle = stateDictPickle(
      [tensorSpec('w', 'FloatStorage', '0', 1, { size: [100000, 100000], stride: [0, 0] })],
      false,
    );
    // The memory budget refuses it first (40 GB); without one, the per-view cap still does.
    expectCheckpointError(zipCheckpoint(pickle, { 0: new Uint8Array(4) }), /over the 1073741824-byte budget/);
    expect(() =>
      readCheckpoint(zipCheckpoint(pickle, { 0: new Uint8Array(4) }), { maxBytes: Infinity }),
    ).toThrow(/broadcast view .* too large/);
  });

  it('rejects a deflated entry that claims an impossible expansion (zip bomb sizing)', () => {
    const bytes = zipSync({ 'archive/data.pkl': new Uint8Array(4096) }, { level: 9 });
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Patch the uncompressed size in the central directory record (signature PK\x01\x02, field at +24).
    for (let i = 0; i + 4 <= bytes.length; i++) {
      if (view.getUint32(i, true) === 0x02014b50) view.setUint32(i + 24, 0xfffffff0, true);
    }
    expectCheckpointError(bytes, /claims an impossible/);
  });

  it('rejects a legacy element count that disagrees with the pickle', () => {
    const pickle = stateDictPickle([tensorSpec('w', 'FloatStorage', '7', 4)], true);
    expectCheckpointError(
      legacyCheckpoint(pickle, [{ key: '7', numel: 3, data: new Uint8Array(16) }]),
      /holds 3 elements but the pickle declares 4/,
    );
  });

  it('rejects a legacy file with a wrong magic number', () => {
    const wrong = new PickleWriter().proto(2).int(42).stop().bytes();
    expectCheckpointError(concat([wrong, goodLegacy.subarray(18)]), /magic number/);
  });

  it('rejects top-level objects that are not state dicts', () => {
    const list = new PickleWriter().proto(2).emptyList().stop().bytes();
    expectCheckpointError(zipCheckpoint(list, {}), /expected a state dict at the top level, got list/);
    const ints = new PickleWriter().proto(2).emptyDict().str('epoch').int(3).setItem().stop().bytes();
    expectCheckpointError(
      zipCheckpoint(ints, {}),
      /no tensors at the top level of the checkpoint \(keys: epoch\)/,
    );
  });

  it('wraps file-system errors from readCheckpointFile', async () => {
    const { readCheckpointFile } = await import('./index.js');
    await expect(readCheckpointFile('/nonexistent/dir/model.pt')).rejects.toSatisfy(
      (error: unknown) =>
        error instanceof CheckpointError &&
        error.source === '/nonexistent/dir/model.pt' &&
        /cannot read file/.test(error.message),
    );
  });
});

/**
 * The two memory bombs of issue 16: each is refused (or its bait ignored) within 1 s and 200 MB. Measured as
 * the growth of the process's resident and array-buffer memory around the call.
 */
describe('memory budget', () => {
  const FLOAT4 = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
  const within = <T>(run: () => T): T => {
    const before = process.memoryUsage();
    const started = performance.now();
    const result = run();
    const after = process.memoryUsage();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(200e6);
    expect(after.rss - before.rss).toBeLessThan(200e6);
    return result;
  };

  /** Patches a stored zip entry into one that claims deflate and `originalSize` bytes. */
  function claim(bytes: Uint8Array, entry: string, originalSize: number): Uint8Array {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const name = new TextEncoder().encode(entry);
    const named = (at: number) => name.every((b, i) => bytes[at + i] === b);
    for (let i = 0; i + 46 <= bytes.length; i++) {
      const signature = view.getUint32(i, true);
      if (signature === 0x04034b50 && view.getUint16(i + 26, true) === name.length && named(i + 30)) {
        view.setUint16(i + 8, 8, true); // compression: deflate
        view.setUint32(i + 22, originalSize, true);
      }
      if (signature === 0x02014b50 && view.getUint16(i + 28, true) === name.length && named(i + 46)) {
        view.setUint16(i + 10, 8, true);
        view.setUint32(i + 24, originalSize, true);
      }
    }
    return bytes;
  }

  it('never inflates a zip entry the pickle does not reference (2 MB claiming 2 GiB)', () => {
    const pickle = stateDictPickle([tensorSpec('w', 'FloatStorage', '0', 4)], false);
    const bait = seededRandom(7);
    const filler = Uint8Array.from({ length: 2_200_000 }, () => Math.floor(bait() * 256));
    const bytes = claim(zipCheckpoint(pickle, { 0: FLOAT4, 999: filler }), 'archive/data/999', 2 ** 31);
    const dict = within(() => readCheckpoint(bytes, { source: 'bomb.pt' }));
    expect([...dict.keys()]).toEqual(['w']);
    expect(dict.get('w')!.data).toEqual(new Float32Array([1, 2, 3, 4]));
  });

  it('refuses a referenced entry larger than the storage the pickle declares', () => {
    const pickle = stateDictPickle([tensorSpec('w', 'FloatStorage', '0', 4)], false);
    const bytes = zipCheckpoint(pickle, { 0: new Uint8Array(64) });
    expect(() => readCheckpoint(bytes)).toThrow(/archive\/data\/0 holds 64 bytes, the pickle declares 16/);
  });

  it('refuses declared storages over the budget before inflating any', () => {
    const pickle = stateDictPickle([tensorSpec('w', 'FloatStorage', '0', 400_000_000)], false);
    const caught = within(() => thrownBy(() => readCheckpoint(zipCheckpoint(pickle, { 0: FLOAT4 }))));
    expect(String(caught)).toMatch(/declares 1600000000 bytes of storages, over the 1073741824-byte budget/);
  });

  it('refuses a 9 KB legacy file of stride-0 views that would materialize gigabytes, before allocating', () => {
    const specs = Array.from({ length: 64 }, (_, i) =>
      tensorSpec(`w${i}`, 'FloatStorage', '7', 1, { size: [4000, 4000], stride: [0, 0] }),
    );
    const bytes = legacyCheckpoint(stateDictPickle(specs, true), [
      { key: '7', numel: 1, data: new Uint8Array(4) },
    ]);
    expect(bytes.length).toBeLessThan(10_000);
    const caught = within(() => thrownBy(() => readCheckpoint(bytes)));
    expect(caught).toBeInstanceOf(CheckpointError);
    expect(String(caught)).toMatch(/would take 4096000000 bytes once materialized, over the 1073741824-byte/);
  });

  it('takes a budget of the caller’s', () => {
    const pickle = stateDictPickle([tensorSpec('w', 'FloatStorage', '0', 4)], false);
    const bytes = zipCheckpoint(pickle, { 0: FLOAT4 });
    expect(readCheckpoint(bytes, { maxBytes: 1024 }).size).toBe(1);
    expect(() => readCheckpoint(bytes, { maxBytes: 8 })).toThrow(/over the 8-byte budget/);
  });
});
