import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MTCNN_STATE_DICT_SHAPES } from '../testing/mtcnn-shapes.js';
import { describeWithSharedData, sharedPath } from '../testing/shared-data.js';
import { checkpointFormat, readCheckpoint, readCheckpointFile } from './index.js';
import type { NamedTensor, StateDict } from './types.js';

interface ReferenceTensor {
  dtype: string;
  shape: number[];
  values: number[];
}

const TINY = [
  'reference/checkpoints/tiny.json',
  'reference/checkpoints/tiny-legacy.pt',
  'reference/checkpoints/tiny-zip.pt',
];

function values(tensor: NamedTensor): number[] {
  return Array.from(tensor.data as ArrayLike<number | bigint>, Number);
}

describeWithSharedData('readCheckpoint: tiny reference checkpoints', TINY, () => {
  const reference = JSON.parse(readFileSync(sharedPath('reference/checkpoints/tiny.json'), 'utf8')) as Record<
    string,
    ReferenceTensor
  >;

  for (const file of ['tiny-legacy.pt', 'tiny-zip.pt']) {
    const expectedFormat = file.includes('zip') ? 'zip' : 'legacy';

    it(`${file} is detected as ${expectedFormat}`, () => {
      expect(checkpointFormat(readFileSync(sharedPath('reference/checkpoints', file)))).toBe(expectedFormat);
    });

    it(`${file} matches tiny.json: keys in order, dtypes, shapes and values`, async () => {
      const state = await readCheckpointFile(sharedPath('reference/checkpoints', file));
      expect([...state.keys()]).toEqual(Object.keys(reference));
      for (const [name, want] of Object.entries(reference)) {
        const got = state.get(name)!;
        expect(got.name).toBe(name);
        expect(got.dtype, name).toBe(want.dtype);
        expect(got.shape, name).toEqual(want.shape);
        expect(got.data.length, name).toBe(want.values.length);
        // float16 widens exactly, so every dtype here compares exactly.
        expect(values(got), name).toEqual(want.values);
      }
    });

    it(`${file} keeps num_batches_tracked as an int64 scalar`, async () => {
      const state = await readCheckpointFile(sharedPath('reference/checkpoints', file));
      const tracked = state.get('bn.num_batches_tracked')!;
      expect(tracked.data).toBeInstanceOf(BigInt64Array);
      expect(tracked.shape).toEqual([]);
      expect(tracked.data[0]).toBe(12n);
    });

    it(`${file} widens float16 to Float32Array`, async () => {
      const state = await readCheckpointFile(sharedPath('reference/checkpoints', file));
      expect(state.get('half.weight')!.data).toBeInstanceOf(Float32Array);
    });
  }

  it('gathers the transposed dense.weight through its strides (stride (1, 8) on disk)', () => {
    const state = readCheckpoint(readFileSync(sharedPath('reference/checkpoints/tiny-zip.pt')));
    const dense = state.get('dense.weight')!;
    const want = reference['dense.weight']!;
    expect(dense.shape).toEqual([8, 5]);
    // Row-major element [r][c] sits at storage[r + 8c]; checking a few off-diagonal cells pins the layout.
    expect(dense.data[1]).toBe(want.values[1]);
    expect(dense.data[5]).toBe(want.values[5]);
    expect(dense.data[39]).toBe(want.values[39]);
  });

  it('reads two views into one storage at different offsets', () => {
    for (const file of ['tiny-legacy.pt', 'tiny-zip.pt']) {
      const state = readCheckpoint(readFileSync(sharedPath('reference/checkpoints', file)));
      const a = values(state.get('shared_a')!);
      const b = values(state.get('shared_b')!);
      expect(a).toEqual(reference.shared_a!.values);
      expect(b).toEqual(reference.shared_b!.values);
      // Separate copies: writing one view must not change the other or the next read.
      (state.get('shared_a')!.data as Float32Array)[0] = 42;
      expect(
        values(readCheckpoint(readFileSync(sharedPath('reference/checkpoints', file))).get('shared_a')!)[0],
      ).toBe(reference.shared_a!.values[0]);
    }
  });
});

const MTCNN = ['models/upstream/pnet.pt', 'models/upstream/rnet.pt', 'models/upstream/onet.pt'];

// Independent reference: Python's stock pickle module with stub classes and struct-decoded storages,
// gathered row-major through the stored strides (which are column-major for every weight in these files).
const GOLDEN: Record<string, Record<string, { first: number[]; last: number; sum: number }>> = {
  pnet: {
    'conv1.weight': {
      first: [-0.08164715766906738, 0.8359154462814331, 1.246496558189392, -0.015041245147585869],
      last: 0.5087199807167053,
      sum: 2.3487670375034213,
    },
  },
  rnet: {
    'conv1.weight': {
      first: [-0.5031552314758301, 0.018869930878281593, 0.38067927956581116, -0.4088854193687439],
      last: -0.25710272789001465,
      sum: 0.2354865306042484,
    },
    'dense4.weight': {
      first: [0.016650894656777382, 0.015806788578629494, 0.011941245757043362, 0.005383317358791828],
      last: -0.043069686740636826,
      sum: -73.59475462388977,
    },
  },
  onet: {
    'conv1.weight': {
      first: [0.48146969079971313, 0.4532829821109772, 0.21208827197551727, 0.30201125144958496],
      last: 0.04789936915040016,
      sum: -0.9298089276562678,
    },
    'dense5.weight': {
      first: [0.012195014394819736, -0.0024824358988553286, -0.0023269536904990673, 0.004431070759892464],
      last: 0.011740791611373425,
      sum: -147.48670104382157,
    },
  },
};

describeWithSharedData('readCheckpoint: upstream MTCNN weights (legacy format)', MTCNN, () => {
  const load = (net: string): Promise<StateDict> =>
    readCheckpointFile(sharedPath('models/upstream', `${net}.pt`));

  for (const net of ['pnet', 'rnet', 'onet'] as const) {
    it(`${net}.pt has the MTCNN ${net} layers, in order, with the architecture's shapes`, async () => {
      const state = await load(net);
      const expected: Readonly<Record<string, readonly number[]>> = MTCNN_STATE_DICT_SHAPES[net];
      expect([...state.keys()]).toEqual(Object.keys(expected));
      for (const [name, tensor] of state) {
        expect(tensor.dtype, name).toBe('float32');
        expect(tensor.shape, name).toEqual(expected[name]);
        expect(tensor.data.length, name).toBe(expected[name]!.reduce((a, b) => a * b, 1));
        // Plausible trained weights: finite and not all zero.
        const data = tensor.data as Float32Array;
        expect(data.every(Number.isFinite), name).toBe(true);
        expect(
          data.some((v) => v !== 0),
          name,
        ).toBe(true);
      }
    });

    it(`${net}.pt values match an independent decode (column-major strides on disk)`, async () => {
      const state = await load(net);
      for (const [name, want] of Object.entries(GOLDEN[net]!)) {
        const data = state.get(name)!.data as Float32Array;
        expect(Array.from(data.subarray(0, 4)), name).toEqual(want.first);
        expect(data[data.length - 1], name).toBe(want.last);
        let sum = 0;
        for (const v of data) sum += v;
        expect(sum, name).toBeCloseTo(want.sum, 9);
      }
    });
  }
});

describe('readCheckpointFile: files without a size', () => {
  it('stops reading a device once it passes the budget (/dev/zero was read until memory ran out)', async () => {
    const started = performance.now();
    await expect(readCheckpointFile('/dev/zero', { maxBytes: 4 << 20 })).rejects.toThrow(
      `/dev/zero: the file has more than ${4 << 20} bytes, over the ${4 << 20}-byte budget`,
    );
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
