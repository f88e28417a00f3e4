import { describe, expect, it } from 'vitest';
import { readCheckpointFile } from '../checkpoint/index.js';
import { describeWithSharedData, sharedPath } from '../testing/shared-data.js';
import { MTCNN_ARCHITECTURES, type MtcnnNetworkArchitecture } from './architecture.js';

/** The state-dict keys and shapes a plan reads. */
function planShapes(net: MtcnnNetworkArchitecture): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const layer of net.layers) {
    if (layer.kind === 'conv') {
      shapes.set(`${layer.name}.weight`, [layer.out, layer.in, layer.kernel, layer.kernel]);
      shapes.set(`${layer.name}.bias`, [layer.out]);
      shapes.set(`${layer.prelu}.weight`, [layer.out]);
    } else if (layer.kind === 'dense') {
      shapes.set(`${layer.name}.weight`, [layer.out, layer.in]);
      shapes.set(`${layer.name}.bias`, [layer.out]);
      shapes.set(`${layer.prelu}.weight`, [layer.out]);
    }
  }
  for (const head of net.heads) {
    shapes.set(`${head.name}.weight`, head.kind === 'conv' ? [head.out, head.in, 1, 1] : [head.out, head.in]);
    shapes.set(`${head.name}.bias`, [head.out]);
  }
  return shapes;
}

/** Walks a plan from an input of `size`, checking widths; returns the width (and map side) at the heads. */
function walk(net: MtcnnNetworkArchitecture, size: number): { width: number; side: number | undefined } {
  let channels = net.input.channels;
  let side: number | undefined = size;
  for (const layer of net.layers) {
    if (layer.kind === 'conv') {
      expect(layer.in, layer.name).toBe(channels);
      channels = layer.out;
      side = side! - layer.kernel + 1;
    } else if (layer.kind === 'maxpool') {
      side = Math.ceil((side! - layer.kernel) / layer.stride) + 1;
    } else if (layer.kind === 'flatten') {
      expect([layer.channels, layer.height, layer.width]).toEqual([channels, side, side]);
      channels *= side! * side!;
      side = undefined;
    } else {
      expect(layer.in, layer.name).toBe(channels);
      channels = layer.out;
    }
  }
  return { width: channels, side };
}

describe('MTCNN_ARCHITECTURES', () => {
  it('chains widths and sizes; heads read the last feature; outputs name every head once', () => {
    for (const [key, net] of Object.entries(MTCNN_ARCHITECTURES)) {
      const { width, side } = walk(net, net.input.size ?? 12);
      for (const head of net.heads) expect(head.in, `${key} ${head.name}`).toBe(width);
      // P-Net on a 12×12 window gives one cell; R-Net and O-Net end on a vector.
      expect(side).toBe(net.input.size === undefined ? 1 : undefined);
      expect([...net.outputs].sort()).toEqual(net.heads.map((h) => h.output).sort());
    }
  });

  it('gives P-Net maps of ⌈(H − 2) / 2⌉ − 4 cells', () => {
    for (const h of [12, 13, 37, 100]) {
      expect(walk(MTCNN_ARCHITECTURES.pnet, h).side).toBe(Math.ceil((h - 2) / 2) - 4);
    }
  });
});

describeWithSharedData(
  'MTCNN_ARCHITECTURES against the upstream state dicts',
  ['models/upstream/pnet.pt', 'models/upstream/rnet.pt', 'models/upstream/onet.pt'],
  () => {
    for (const [key, net] of Object.entries(MTCNN_ARCHITECTURES)) {
      it(`${key}: reads exactly the keys and shapes of ${key}.pt`, async () => {
        const sd = await readCheckpointFile(sharedPath('models', 'upstream', `${key}.pt`));
        const actual = new Map([...sd.values()].map((t) => [t.name, [...t.shape]]));
        expect(planShapes(net)).toEqual(actual);
      });
    }
  },
);
