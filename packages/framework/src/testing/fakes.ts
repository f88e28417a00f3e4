import type { DetectedFaces, FaceDetection, FaceDetector } from '../contracts/detector.js';
import type { EmbedderPreprocessing } from '../contracts/embedder.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import type { RgbImage } from '../image/types.js';
import { extractFace } from '../mtcnn/extract.js';
import { defineDetector, defineEmbedder } from '../registry/builtin.js';
import type { DetectorDescription, EmbedderDescription } from '../registry/types.js';

/** What {@link fakePreprocessing} lets a test change. */
export interface FakePreprocessingOptions {
  /** Margin of the square crop, in pixels of the crop. Default 0. */
  readonly margin?: number;
  /** Default `NHWC`. */
  readonly layout?: EmbedderPreprocessing['layout'];
  /** Default `[0, 0, 0]`. */
  readonly mean?: EmbedderPreprocessing['mean'];
  /** Default `[1, 1, 1]`. */
  readonly std?: EmbedderPreprocessing['std'];
}

/**
 * The preprocessing of a test double: a `size`×`size` RGB input, cut as a square crop of that size; by default
 * without margin, NHWC and not standardised.
 *
 * @example
 * const preprocessing = fakePreprocessing(32, { margin: 4 });
 */
export function fakePreprocessing(
  size: number,
  options: FakePreprocessingOptions = {},
): EmbedderPreprocessing {
  return {
    inputSize: { width: size, height: size },
    crop: { size: { width: size, height: size }, shape: 'square', margin: options.margin ?? 0 },
    layout: options.layout ?? 'NHWC',
    channelOrder: 'RGB',
    mean: options.mean ?? [0, 0, 0],
    std: options.std ?? [1, 1, 1],
  };
}

/**
 * A registry description of a test double (see `defineEmbedder`), for `MODELS.with(…)`. The test gives the
 * id, the options schema, the output and its provider-free `load`; by default the model has no weights (no
 * manifest entries, no settings), no thresholds, and records its id as its model id.
 *
 * @example
 * const registry = MODELS.with(
 *   fakeEmbedderDescription({
 *     id: 'colour',
 *     options: z.strictObject({}),
 *     dimension: 4,
 *     preprocessing: fakePreprocessing(8),
 *     load: async () => new ColourEmbedder(),
 *   }),
 * );
 */
export function fakeEmbedderDescription<Options extends object>(
  description: Pick<EmbedderDescription<Options>, 'id' | 'options' | 'dimension' | 'preprocessing' | 'load'> &
    Partial<EmbedderDescription<Options>>,
): EmbedderDescription<Options> {
  const { id } = description;
  return defineEmbedder<Options>({
    kind: 'embedder',
    summary: `test double ${id}`,
    licence: 'none',
    thresholds: {},
    // A test double's options are all optional: no setting stands for any of them.
    fromSettings: () => ({}) as Options,
    modelId: () => id,
    settingsForModelId: (modelId) => (modelId === id ? {} : undefined),
    manifestEntries: () => [],
    ...description,
  });
}

/**
 * A registry description of a detector test double (see `defineDetector`), for `MODELS.with(…)`: the test gives
 * the id, its option schema and its provider-free `load`; no weights.
 *
 * @example
 * const registry = MODELS.with(
 *   fakeDetectorDescription({ id: 'middle', options: z.strictObject({}), load: () => fakeDetector(middleFace) }),
 * );
 */
export function fakeDetectorDescription<Options extends object>(
  description: Pick<DetectorDescription<Options>, 'id' | 'options'> & Partial<DetectorDescription<Options>>,
): DetectorDescription<Options> {
  return defineDetector<Options>({
    kind: 'detector',
    summary: `test double ${description.id}`,
    licence: 'none',
    manifestEntries: () => [],
    ...description,
  });
}

/**
 * A detector test double from a function that says which faces an image holds; `detectFaces` cuts real crops
 * with the policy asked for (`extractFace`).
 *
 * @example
 * const detector = fakeDetector((image) => (image.width > 100 ? [face] : []));
 */
export function fakeDetector(find: (image: RgbImage) => FaceDetection[]): FaceDetector {
  return {
    specificationVersion: SPECIFICATION_VERSION,
    provider: 'test',
    modelId: 'fake-detector',
    ready: async () => {},
    warmUp: async () => {},
    dispose: async () => {},
    detect: async (image) => find(image),
    detectBatch: async (images) => images.map(find),
    detectFaces: async (images, options = {}) =>
      images.map((image): DetectedFaces => {
        const faces = find(image);
        const crop = options.crop;
        return { faces, crops: crop ? faces.map((f) => extractFace(image, f, crop)) : [] };
      }),
  };
}
