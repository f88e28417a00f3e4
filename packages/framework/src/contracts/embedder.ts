import type { RgbImage } from '../image/types.js';
import type { SpecificationVersion } from './version.js';

/** The region of a detection that is cut out for an embedder (see {@link CropPolicy.shape}). */
export type CropShape = 'box' | 'square' | 'eyes-mouth' | 'aligned';

/**
 * How a face is cut out of a frame for one embedder: the geometry the network was trained with. Whatever
 * produces crops for an embedder (a detector's `detectFaces(images, { crop })`, enrollment, the pipeline)
 * reads this from `embedder.preprocessing.crop`; nobody restates sizes or shapes by hand.
 */
export interface CropPolicy {
  /** Crop size in pixels: always the embedder's `inputSize`. */
  readonly size: { readonly width: number; readonly height: number };
  /**
   * The region cut out, from the detection's box or its five landmarks:
   * - `box`: the detection box itself, stretched to `size` (facenet-pytorch's `extract_face`, what
   *   InceptionResnetV1 was trained on);
   * - `square`: the smallest square around the box's centre that holds it (keeps the aspect ratio: cut at the
   *   frame's edges, a cut that is not square is padded back to one with black on the side cut off);
   * - `eyes-mouth`: the square face-api.js cuts for its recognition net (`useDlibAlignment`), placed and sized
   *   from the eye centres and the mouth centre, not rotated;
   * - `aligned`: the face rotated, scaled and moved so that its five landmarks best fit a canonical template
   *   (dlib's mean face, which face-api.js's net was trained on), one bilinear warp.
   */
  readonly shape: CropShape;
  /**
   * Margin added around the region, in pixels of the final crop (facenet-pytorch's `margin`); for `aligned`,
   * the template fills `size − margin` pixels in the middle of the crop.
   */
  readonly margin: number;
}

/**
 * How an embedder turns a uint8 RGB face crop into its input tensor: `(pixel − mean) / std` per channel,
 * laid out as `layout`, and how that crop is cut out of a frame (`crop`). facenet's standardisation is
 * `mean = 127.5, std = 128`.
 */
export interface EmbedderPreprocessing {
  /** Crop size the network takes. Crops of another size are refused by `embed`. */
  readonly inputSize: { readonly width: number; readonly height: number };
  /** How to cut a face out of a frame for this embedder; `crop.size` equals `inputSize`. */
  readonly crop: CropPolicy;
  readonly layout: 'NCHW' | 'NHWC';
  readonly channelOrder: 'RGB';
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
}

/**
 * An embedder's numeric precision: `fp32`, the float network (every embedder's default, the one with parity
 * with the references), or `int8`, a provider's quantized form of it (the onnx provider's int8 graph). Their
 * distances differ slightly, so a gallery's calibration records the one its threshold was chosen at.
 */
export type EmbedderPrecision = (typeof EMBEDDER_PRECISIONS)[number];

/** Every {@link EmbedderPrecision}, default first: the one list options, schemas and CLI choices take. */
export const EMBEDDER_PRECISIONS = ['fp32', 'int8'] as const;

/**
 * The environment variable naming a folder of face images that an int8 embedder is calibrated on, when the
 * caller names none (needed for embedders whose registry entry has no `int8Calibration`).
 */
export const CALIBRATION_DIR_ENV = 'FACEREC_CALIBRATION_DIR';

/**
 * A face embedder: a batch of face crops → one L2-normalised vector per crop.
 *
 * @example
 * const embedder = await createOnnxProvider().embedder('inception-resnet-v1', { weights: 'vggface2' });
 * const [found] = await detector.detectFaces([image], { crop: embedder.preprocessing.crop });
 * const vectors = await embedder.embed(found!.crops.map((c) => c.image)); // Float32Array(512) each, |v| = 1
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
   * The precision the network runs at; absent means `fp32`. A gallery threshold calibrated at another one is
   * warned of (see `calibrationPrecisionMismatch`).
   */
  readonly precision?: EmbedderPrecision;
  /**
   * Embed face crops of exactly `preprocessing.inputSize`; returns one L2-normalised vector per crop, in
   * order. An empty batch gives an empty array. Throws `InvalidInputError` for a crop of the wrong size. The
   * crops are the caller's: an implementation must not change them (a channel swap is made in a copy).
   */
  embed(faces: readonly RgbImage[]): Promise<Float32Array[]>;
  /** Release the model. Later calls reject with `DisposedError`. */
  dispose(): Promise<void>;
}
