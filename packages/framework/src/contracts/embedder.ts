import type { RgbImage } from '../image/types.js';
import type { SpecificationVersion } from './version.js';

/**
 * How an embedder turns a uint8 RGB face crop into its input tensor: `(pixel − mean) / std` per channel,
 * laid out as `layout`. facenet's standardisation is `mean = 127.5, std = 128`.
 */
export interface EmbedderPreprocessing {
  /** Crop size the network takes. Crops of another size are refused by `embed`. */
  readonly inputSize: { readonly width: number; readonly height: number };
  readonly layout: 'NCHW' | 'NHWC';
  readonly channelOrder: 'RGB';
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
}

/**
 * A face embedder: a batch of face crops → one L2-normalised vector per crop.
 *
 * @example
 * const embedder = createOnnxProvider().embedder('inception-resnet-v1', { weights: 'vggface2' });
 * const [vector] = await embedder.embed([crop]); // Float32Array(512), |vector| = 1
 */
export interface FaceEmbedder {
  readonly specificationVersion: SpecificationVersion;
  readonly provider: string;
  /** Model id including the weights, e.g. `inception-resnet-v1/vggface2`. Galleries record it. */
  readonly modelId: string;
  /** sha256 of the weights file, when known. Galleries record it. */
  readonly weightsSha256: string | undefined;
  /** Embedding length. */
  readonly dimension: number;
  readonly preprocessing: EmbedderPreprocessing;
  /**
   * Embed face crops of exactly `preprocessing.inputSize`; returns one L2-normalised vector per crop, in
   * order. An empty batch gives an empty array. Throws `InvalidInputError` for a crop of the wrong size.
   */
  embed(faces: readonly RgbImage[]): Promise<Float32Array[]>;
  /** Release the model. Later calls reject with `DisposedError`. */
  dispose(): Promise<void>;
}
