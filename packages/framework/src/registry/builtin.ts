import { stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { EMBEDDER_PRECISIONS, type EmbedderPreprocessing } from '../contracts/embedder.js';
import { InvalidOptionsError } from '../errors.js';
import { FACEAPI_RESNET_DESCRIPTOR_SIZE } from '../faceapi/architecture.js';
import { FACEAPI_PREPROCESSING } from '../faceapi/preprocess.js';
import { type MtcnnOptions, mtcnnOptionsSchema } from '../mtcnn/options.js';
import type { DetectorDescription, EmbedderDescription } from './types.js';

/**
 * Declares a detector for a {@link ModelRegistry} (typed options, frozen).
 * @example
 * const registry = MODELS.with(defineDetector({ kind: 'detector', id: 'my-detector', ... }));
 */
export function defineDetector<Options extends object>(
  description: DetectorDescription<Options>,
): DetectorDescription<Options> {
  return Object.freeze({ ...description });
}

/**
 * Declares an embedder for a {@link ModelRegistry} (typed options, frozen): its input, crop policy, output,
 * thresholds and, for a model no provider implements natively, a provider-free `load`.
 */
export function defineEmbedder<Options extends object>(
  description: EmbedderDescription<Options>,
): EmbedderDescription<Options> {
  return Object.freeze({ ...description });
}

/** Faces per inference call when an embedder's `maxBatchSize` is not given: the one default, for every provider. */
export const DEFAULT_MAX_BATCH_SIZE = 16;

const maxBatchSize = z.number().int().min(1).max(1024).optional();
/** `fp32` (default) or `int8`: a provider that quantizes (onnx) runs its int8 graph. */
const precision = z.enum(EMBEDDER_PRECISIONS).optional();

/** MTCNN (facenet-pytorch's P-Net, R-Net, O-Net). Options: {@link MtcnnOptions}. */
export const MTCNN: DetectorDescription<MtcnnOptions> = defineDetector({
  kind: 'detector',
  id: 'mtcnn',
  summary: "MTCNN face detector (facenet-pytorch's P-Net, R-Net, O-Net): boxes, scores, 5 landmarks",
  licence: 'MIT (facenet-pytorch)',
  options: mtcnnOptionsSchema,
  manifestEntries: () => ['mtcnn-pnet', 'mtcnn-rnet', 'mtcnn-onet'],
});

/** facenet's input: 160×160, `(x − 127.5) / 128`, and facenet-pytorch's `extract_face` crop (the box, no margin). */
export const FACENET_PREPROCESSING: EmbedderPreprocessing = Object.freeze({
  inputSize: Object.freeze({ width: 160, height: 160 }),
  crop: Object.freeze({ size: Object.freeze({ width: 160, height: 160 }), shape: 'box', margin: 0 }),
  layout: 'NCHW',
  channelOrder: 'RGB',
  mean: Object.freeze([127.5, 127.5, 127.5]) as [number, number, number],
  std: Object.freeze([128, 128, 128]) as [number, number, number],
}) as EmbedderPreprocessing;

/** Named pretrained InceptionResnetV1 weights and the model store entry each is pulled from. */
export const INCEPTION_RESNET_V1_WEIGHTS = Object.freeze({
  vggface2: 'inception-resnet-v1-vggface2',
  'casia-webface': 'inception-resnet-v1-casia-webface',
} as const);

/**
 * A `weights` value that names no pretrained weights, as the checkpoint file it must be: its absolute path.
 * Every provider checks it so, before reading it.
 * @throws InvalidOptionsError naming `component` when there is no file there (or a folder).
 */
export async function inceptionResnetV1CheckpointPath(component: string, weights: string): Promise<string> {
  const file = path.resolve(weights);
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) {
    throw new InvalidOptionsError(
      component,
      `weights ${notNamedWeights(weights)}` +
        (info ? ` (${file} is not a file)` : ` (no such file: ${file})`),
    );
  }
  return file;
}

const notNamedWeights = (weights: string) =>
  `"${weights.slice(0, 200)}" is neither a named model (${Object.keys(INCEPTION_RESNET_V1_WEIGHTS).join(', ')}) nor a checkpoint file`;

/**
 * Whether a `weights` value can name weights: a named model, or a path to a checkpoint (it has a folder separator or
 * a file extension). A bare word such as "vggface" is a misspelt name, refused where the options are read (the
 * Lambda's configuration, CDK synth), not only when the model loads.
 */
const weightsCanName = (weights: string) =>
  namedWeights(weights) !== undefined || /[/\\]/.test(weights) || /\.[^.]+$/.test(weights);

/** `vggface2`, `casia-webface`, or a path to a facenet-pytorch `.pt` state dict. */
export type InceptionResnetV1Weights = keyof typeof INCEPTION_RESNET_V1_WEIGHTS | (string & {});

/** Options of the `inception-resnet-v1` embedder. */
export interface InceptionResnetV1Options {
  /** `vggface2` (default), `casia-webface`, or a path to a facenet-pytorch `.pt` state dict. */
  weights?: InceptionResnetV1Weights;
  /** Faces per inference call; larger batches are split. Default 16. */
  maxBatchSize?: number;
  /**
   * `fp32` (default) or `int8`: the onnx provider's static int8 (QDQ) graph, calibrated on the face images in
   * `$FACEREC_CALIBRATION_DIR`; faster, with a small accuracy cost (README "Parity and speed").
   */
  precision?: 'fp32' | 'int8' | undefined;
}

/** Options of the `faceapi-resnet` embedder. */
export interface FaceApiResnetOptions {
  /** Faces per inference call; larger batches are split. Default 16. */
  maxBatchSize?: number;
  /**
   * `fp32` (default) or `int8`: the onnx provider's static int8 (QDQ) graph, with the activation ranges that ship
   * for the published weights, or calibrated on the face images in `$FACEREC_CALIBRATION_DIR` when it is set;
   * faster, at no measured accuracy cost on the labelled photos (README "Parity and speed").
   */
  precision?: 'fp32' | 'int8' | undefined;
}

const namedWeights = (weights: string | undefined) => {
  const name = weights ?? 'vggface2';
  return Object.hasOwn(INCEPTION_RESNET_V1_WEIGHTS, name)
    ? INCEPTION_RESNET_V1_WEIGHTS[name as keyof typeof INCEPTION_RESNET_V1_WEIGHTS]
    : undefined;
};

/** InceptionResnetV1 (facenet-pytorch): 160×160 crops → 512-d embeddings. */
export const INCEPTION_RESNET_V1: EmbedderDescription<InceptionResnetV1Options> = defineEmbedder({
  kind: 'embedder',
  id: 'inception-resnet-v1',
  summary: 'InceptionResnetV1 (facenet-pytorch), VGGFace2 or CASIA-WebFace weights: 160×160 → 512-d',
  licence: 'MIT (facenet-pytorch); the weights were trained on VGGFace2 / CASIA-WebFace, see their terms',
  options: z.strictObject({
    weights: z
      .string()
      .min(1)
      .refine(weightsCanName, {
        error: (issue) =>
          `${notNamedWeights(String(issue.input))} (a path has a "/" or an extension: ./x.pt)`,
      })
      .optional(),
    maxBatchSize,
    precision,
  }),
  dimension: 512,
  preprocessing: FACENET_PREPROCESSING,
  // None shipped. The pretrained weights cannot be fetched where facerec is developed, so nothing was measured
  // (scripts/measure-thresholds.ts measures it where they are available), and facenet-pytorch publishes no
  // threshold. deepface's 1.04 (Euclidean on unit vectors, its "Facenet512", converted from the same
  // 20180402-114759 VGGFace2 weights but with deepface's own detection and preprocessing) is not used either:
  // facenet-pytorch's own test expects angelina_jolie vs kate_siegel, two people, at 0.8863, which 1.04
  // would call the same person.
  thresholds: Object.freeze({}),
  thresholdsMissingReason:
    'none is shipped: its pretrained weights could not be measured where facerec is built, and facenet-pytorch ' +
    'publishes none; calibrate a gallery on your own labelled photos (facerec gallery calibrate)',
  fromSettings: ({ weights }) => (weights === undefined ? {} : { weights }),
  modelId: ({ weights }) => {
    const name = weights ?? 'vggface2';
    return `inception-resnet-v1/${namedWeights(name) ? name : path.basename(name)}`;
  },
  settingsForModelId: (modelId) => {
    const match = /^inception-resnet-v1\/(.+)$/.exec(modelId);
    if (!match) return undefined;
    // A checkpoint's file name (the id keeps no folder), read where the process runs, as before; "./" keeps a
    // name without an extension a path.
    const weights = match[1]!;
    return { weights: weightsCanName(weights) ? weights : `./${weights}` };
  },
  manifestEntries: ({ weights }) => {
    const entry = namedWeights(weights);
    return entry ? [entry] : [];
  },
});

/**
 * Measured by `scripts/measure-thresholds.ts` (which prints these numbers) on facerec's default path: MTCNN with the
 * pre-cropped fallback, and the `eyes-mouth` crop policy (face-api.js's own geometry, the net's default). There, at
 * 0.448: FAR 1.00 % (12/1206 impostor pairs), TAR 100 % (69/69 genuine pairs), EER 0.21 %, AUC 0.9998.
 * face-api.js's own threshold is 0.6 on its raw descriptors (|d| ≈ 1.4–1.6), ≈ 0.41 on unit vectors. Cosine
 * distance on unit vectors is `d² / 2`, so both values are one operating point.
 */
const FACEAPI_MEASURED =
  "51 labelled photos of 17 people (The Big Bang Theory's cast from face-api.js, face_recognition's and " +
  "facenet-pytorch's example faces), all 1275 pairs, ROC at a 1 % false-accept rate per pair, on those same " +
  "photos (facerec's scripts/measure-thresholds.ts)";

/** face-api.js's face recognition net (dlib's ResNet-34-like): 150×150 crops → 128-d embeddings. */
export const FACEAPI_RESNET: EmbedderDescription<FaceApiResnetOptions> = defineEmbedder({
  kind: 'embedder',
  id: 'faceapi-resnet',
  summary: "face-api.js's recognition net (ResNet-34-like, from @vladmandic/face-api): 150×150 → 128-d",
  licence: 'MIT (@vladmandic/face-api; dlib face recognition model, CC0)',
  options: z.strictObject({ maxBatchSize, precision }),
  dimension: FACEAPI_RESNET_DESCRIPTOR_SIZE,
  preprocessing: FACEAPI_PREPROCESSING,
  thresholds: Object.freeze({
    euclidean: Object.freeze({ value: 0.448, measuredOn: FACEAPI_MEASURED }),
    cosine: Object.freeze({ value: 0.1004, measuredOn: FACEAPI_MEASURED }),
  }),
  // The ranges themselves are @facerec/provider-onnx's faceapi/int8-ranges.ts (scripts/int8-ranges.ts).
  int8Calibration:
    "facerec's 20 MTCNN reference crops of group photos (face-api.js's bbt1-4 and faces, facenet-pytorch's multiface)",
  // One set of weights (shipped in @vladmandic/face-api): a weights setting would be silently ignored.
  fromSettings: ({ weights }) => {
    if (weights !== undefined) {
      throw new InvalidOptionsError(
        'faceapi-resnet',
        // No flag named: the weights come from --weights, --checkpoint or FACEREC_WEIGHTS, which the caller knows.
        `has one set of weights (in @vladmandic/face-api); other weights or a checkpoint do not apply (given "${weights.slice(0, 80)}")`,
      );
    }
    return {};
  },
  modelId: () => 'faceapi-resnet',
  settingsForModelId: (modelId) => (modelId === 'faceapi-resnet' ? {} : undefined),
  manifestEntries: () => ['faceapi-face-recognition-weights', 'faceapi-face-recognition-manifest'],
});
