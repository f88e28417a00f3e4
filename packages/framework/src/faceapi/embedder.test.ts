import { describe, expect, it } from 'vitest';
import { DisposedError, InvalidInputError } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import { FACEAPI_RESNET } from '../registry/builtin.js';
import { FaceApiEmbedder } from './embedder.js';
import type { FloatRgbImage } from './preprocess.js';

const image = (width: number, height: number, value = 100): RgbImage => ({
  width,
  height,
  data: new Uint8Array(width * height * 3).fill(value),
});

/** A stand-in network: each descriptor is the input's first sample, then its size, then zeros. */
class FakeFaceApiEmbedder extends FaceApiEmbedder {
  readonly batches: (RgbImage | FloatRgbImage)[][] = [];
  constructor() {
    super({
      provider: 'test',
      weightsSha256: undefined,
      preprocessing: FACEAPI_RESNET.preprocessing,
      maxBatchSize: 2,
    });
  }
  protected async runBatch(faces: readonly RgbImage[]): Promise<Float32Array> {
    return this.runDescriptors(faces);
  }
  protected async runDescriptors(inputs: readonly (RgbImage | FloatRgbImage)[]): Promise<Float32Array> {
    this.batches.push([...inputs]);
    const out = new Float32Array(inputs.length * this.dimension);
    inputs.forEach((input, i) => {
      out[i * this.dimension] = input.data[0]!;
      out[i * this.dimension + 1] = input.width;
    });
    return out;
  }
  protected release(): void {}
}

describe('FaceApiEmbedder', () => {
  it("is the registry's faceapi-resnet: model id and dimension", () => {
    const embedder = new FakeFaceApiEmbedder();
    expect(embedder.modelId).toBe(FACEAPI_RESNET.modelId({}));
    expect(embedder.dimension).toBe(FACEAPI_RESNET.dimension);
  });

  it('describes 150×150 inputs in batches of maxBatchSize, raw rows in order', async () => {
    const embedder = new FakeFaceApiEmbedder();
    const rows = await embedder.describe([image(150, 150, 1), image(150, 150, 2), image(150, 150, 3)]);
    expect(embedder.batches.map((b) => b.length)).toEqual([2, 1]);
    expect(rows.map((r) => [r[0], r[1], r.length])).toEqual([
      [1, 150, 128],
      [2, 150, 128],
      [3, 150, 128],
    ]);
  });

  it('refuses an input of another size before running anything', async () => {
    const embedder = new FakeFaceApiEmbedder();
    await expect(embedder.describe([image(150, 150), image(160, 160)])).rejects.toThrow(InvalidInputError);
    await expect(embedder.describe([image(150, 150), image(160, 160)])).rejects.toThrow(/face 1 is 160×160/);
    expect(embedder.batches).toEqual([]);
  });

  it('refuses a float input holding NaN or ±Infinity (a backend could turn it into a finite descriptor)', async () => {
    const embedder = new FakeFaceApiEmbedder();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const data = new Float32Array(150 * 150 * 3).fill(100);
      data[4242] = bad;
      await expect(embedder.describe([{ width: 150, height: 150, data }])).rejects.toThrow(
        'face 0 has a sample that is not a finite number (at index 4242)',
      );
    }
    expect(embedder.batches).toEqual([]);
  });

  it('computes descriptors of whole images of any size, as face-api.js resizes them to 150×150', async () => {
    const embedder = new FakeFaceApiEmbedder();
    const [row] = await embedder.computeFaceDescriptors([image(300, 200)]);
    const [input] = embedder.batches[0]!;
    expect([input!.width, input!.height, input!.data instanceof Float32Array]).toEqual([150, 150, true]);
    expect(row![1]).toBe(150);
    await expect(
      embedder.computeFaceDescriptors([{ width: 2, height: 2, data: new Uint8Array(3) }]),
    ).rejects.toThrow(/image 0/);
  });

  it('rejects every call once disposed', async () => {
    const embedder = new FakeFaceApiEmbedder();
    await embedder.dispose();
    await expect(embedder.describe([image(150, 150)])).rejects.toThrow(DisposedError);
    await expect(embedder.computeFaceDescriptors([image(150, 150)])).rejects.toThrow(DisposedError);
  });
});
