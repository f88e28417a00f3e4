import { assertRgbImage } from '../contracts/validate.js';
import { BaseEmbedder, type BaseEmbedderSettings } from '../embedder/base.js';
import type { RgbImage } from '../image/types.js';
import type { ModelStore, PulledModel } from '../models/store.js';
import { FACEAPI_RESNET } from '../registry/builtin.js';
import { assertFaceApiInput, type FloatRgbImage, faceApiInput } from './preprocess.js';

/** face-api.js's recognition weights, pulled into the model store's cache. */
export interface FaceApiResnetFiles {
  /** The weights shard (its sha256 is the model's `weightsSha256`). */
  readonly weights: PulledModel;
  /** The tfjs weights manifest; the shard sits beside it, so `readTfjsWeightsFile(manifest.path)` reads both. */
  readonly manifest: PulledModel;
}

/** Pulls face-api.js's recognition weights and their tfjs manifest (the registry's entries) through `store`. */
export async function pullFaceApiResnetFiles(store: ModelStore): Promise<FaceApiResnetFiles> {
  const [weightsEntry, manifestEntry] = FACEAPI_RESNET.manifestEntries({});
  const pulled = await store.pull([weightsEntry!, manifestEntry!]);
  return {
    weights: pulled.find((p) => p.name === weightsEntry)!,
    manifest: pulled.find((p) => p.name === manifestEntry)!,
  };
}

/**
 * face-api.js's face recognition net as a `FaceEmbedder`, whichever runtime runs it: the registry's model id
 * and dimension, `embed` (L2-normalised vectors) from {@link BaseEmbedder}, and face-api.js's own API on top:
 *
 * - {@link FaceApiEmbedder.describe}: face-api.js's raw descriptors (|d| ≈ 1.3–1.6) for 150×150 inputs.
 * - {@link FaceApiEmbedder.computeFaceDescriptors}: face-api.js's `computeFaceDescriptor` for whole images
 *   of any size (centred pad-to-square, tfjs bilinear resize to 150, then `describe`).
 *
 * A provider implements `runBatch` (unit vectors), {@link FaceApiEmbedder.runDescriptors} (raw descriptors)
 * and `release`.
 *
 * @example
 * class MyFaceApiEmbedder extends FaceApiEmbedder {
 *   protected runDescriptors(inputs) { return this.net.run(toFaceApiBatch(inputs, 'NCHW')); }
 *   ...
 * }
 */
export abstract class FaceApiEmbedder extends BaseEmbedder {
  protected constructor(settings: Omit<BaseEmbedderSettings, 'modelId' | 'dimension'>) {
    super({ ...settings, modelId: FACEAPI_RESNET.modelId({}), dimension: FACEAPI_RESNET.dimension });
  }

  /**
   * One forward pass: 1 to `maxBatchSize` validated 150×150 inputs → their raw descriptors (not normalised),
   * row by row.
   */
  protected abstract runDescriptors(inputs: readonly (RgbImage | FloatRgbImage)[]): Promise<Float32Array>;

  /**
   * face-api.js's raw descriptors (not normalised) of 150×150 inputs: 8-bit crops, or the float images from
   * `faceApiInput`, which match face-api.js without the rounding of an 8-bit crop.
   */
  async describe(inputs: readonly (RgbImage | FloatRgbImage)[]): Promise<Float32Array[]> {
    this.assertLive();
    inputs.forEach((input, i) => {
      assertFaceApiInput(input, `face ${i}`);
    });
    // Raw descriptors: not unit vectors.
    return this.inBatches(inputs, (chunk) => this.runDescriptors(chunk), false);
  }

  /**
   * face-api.js's `computeFaceDescriptor` on whole images of any size, as it treats tensor inputs: each
   * image padded to a centred square with black, resized bilinearly to 150×150, then described. Raw
   * descriptors, comparable with face-api.js's.
   */
  async computeFaceDescriptors(images: readonly RgbImage[]): Promise<Float32Array[]> {
    // Checked before the resize work, which a disposed embedder would only waste.
    this.assertLive();
    const inputs = images.map((image, i) => {
      assertRgbImage(image, `image ${i}`);
      return faceApiInput(image);
    });
    return this.describe(inputs);
  }
}
