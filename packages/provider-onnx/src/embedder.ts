import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  assertRgbImage,
  DisposedError,
  type EmbedderPreprocessing,
  type FaceEmbedder,
  InvalidInputError,
  type ModelStore,
  type RgbImage,
  SPECIFICATION_VERSION,
} from '@facerec/framework';
import type { InferenceSession } from 'onnxruntime-node';
import { buildInceptionResnetV1 } from './graph/index.js';
import { createSession } from './graph/session.js';
import { type CachedGraph, cachedGraph, resolveWeights } from './model-cache.js';

/** Named pretrained weights for InceptionResnetV1, and their manifest entries. */
export const INCEPTION_RESNET_V1_WEIGHTS = Object.freeze({
  vggface2: 'inception-resnet-v1-vggface2',
  'casia-webface': 'inception-resnet-v1-casia-webface',
} as const);

/** `vggface2`, `casia-webface`, or a path to a facenet-pytorch `.pt` state dict. */
export type InceptionResnetV1Weights = keyof typeof INCEPTION_RESNET_V1_WEIGHTS | (string & {});

/** facenet's fixed standardisation: `(x − 127.5) / 128`, NCHW, 160×160. */
export const FACENET_PREPROCESSING: EmbedderPreprocessing = Object.freeze({
  inputSize: Object.freeze({ width: 160, height: 160 }),
  layout: 'NCHW',
  channelOrder: 'RGB',
  mean: Object.freeze([127.5, 127.5, 127.5]) as [number, number, number],
  std: Object.freeze([128, 128, 128]) as [number, number, number],
}) as EmbedderPreprocessing;

/** Writes crops into one NCHW float32 batch, applying `(x − mean) / std`. */
export function toNchwBatch(faces: readonly RgbImage[], p: EmbedderPreprocessing): Float32Array {
  const { width, height } = p.inputSize;
  const plane = width * height;
  const out = new Float32Array(faces.length * 3 * plane);
  faces.forEach((face, f) => {
    const base = f * 3 * plane;
    const d = face.data;
    for (let c = 0; c < 3; c++) {
      const mean = p.mean[c]!;
      const inv = 1 / p.std[c]!;
      const o = base + c * plane;
      for (let i = 0; i < plane; i++) out[o + i] = (d[3 * i + c]! - mean) * inv;
    }
  });
  return out;
}

/** Loads the graph for the requested weights, building it from the checkpoint on first use. */
export async function loadInceptionResnetV1Graph(
  store: ModelStore,
  weights: InceptionResnetV1Weights,
): Promise<CachedGraph & { modelId: string }> {
  const named = INCEPTION_RESNET_V1_WEIGHTS[weights as keyof typeof INCEPTION_RESNET_V1_WEIGHTS];
  let source: { path: string; sha256: string };
  let modelId: string;
  if (named) {
    source = await resolveWeights(store, named);
    modelId = `inception-resnet-v1/${weights}`;
  } else {
    const file = path.resolve(weights);
    const bytes = await readFile(file);
    source = { path: file, sha256: createHash('sha256').update(bytes).digest('hex') };
    modelId = `inception-resnet-v1/${path.basename(file)}`;
  }
  const graph = await cachedGraph(store.cacheDir, 'inception-resnet-v1', source, (sd, metadata) =>
    buildInceptionResnetV1(sd, { metadata, source: source.path }),
  );
  return { ...graph, modelId };
}

/**
 * InceptionResnetV1 (facenet-pytorch) on onnxruntime-node: 160×160 crops in, 512-d L2-normalised embeddings
 * out, in batches of at most `maxBatchSize`.
 */
export class OnnxInceptionResnetV1Embedder implements FaceEmbedder {
  readonly specificationVersion = SPECIFICATION_VERSION;
  readonly provider = 'onnx';
  readonly dimension = 512;
  readonly preprocessing = FACENET_PREPROCESSING;
  readonly modelId: string;
  readonly weightsSha256: string;
  readonly graph: CachedGraph;
  readonly #maxBatchSize: number;
  #session: InferenceSession | undefined;
  readonly #ort: typeof import('onnxruntime-node');

  private constructor(
    ort: typeof import('onnxruntime-node'),
    session: InferenceSession,
    graph: CachedGraph & { modelId: string },
    maxBatchSize: number,
  ) {
    this.#ort = ort;
    this.#session = session;
    this.graph = graph;
    this.modelId = graph.modelId;
    this.weightsSha256 = graph.weightsSha256;
    this.#maxBatchSize = maxBatchSize;
  }

  /** Loads (and on first use builds and caches) the model. */
  static async load(
    store: ModelStore,
    weights: InceptionResnetV1Weights,
    options: { intraOpNumThreads: number; maxBatchSize: number },
  ): Promise<OnnxInceptionResnetV1Embedder> {
    const graph = await loadInceptionResnetV1Graph(store, weights);
    const session = await createSession(graph.bytes, { intraOpNumThreads: options.intraOpNumThreads });
    const ort = await import('onnxruntime-node');
    return new OnnxInceptionResnetV1Embedder(ort, session, graph, options.maxBatchSize);
  }

  async embed(faces: readonly RgbImage[]): Promise<Float32Array[]> {
    const session = this.#session;
    if (!session) throw new DisposedError(`onnx ${this.modelId} embedder`);
    const { width, height } = this.preprocessing.inputSize;
    faces.forEach((face, i) => {
      assertRgbImage(face, `face ${i}`);
      if (face.width !== width || face.height !== height) {
        throw new InvalidInputError(
          `face ${i} is ${face.width}×${face.height}; ${this.modelId} takes ${width}×${height} crops`,
        );
      }
    });
    const out: Float32Array[] = [];
    for (let start = 0; start < faces.length; start += this.#maxBatchSize) {
      const chunk = faces.slice(start, start + this.#maxBatchSize);
      const input = new this.#ort.Tensor('float32', toNchwBatch(chunk, this.preprocessing), [
        chunk.length,
        3,
        height,
        width,
      ]);
      const result = await session.run({ input });
      const data = result.embedding!.data as Float32Array;
      for (let i = 0; i < chunk.length; i++)
        out.push(data.slice(i * this.dimension, (i + 1) * this.dimension));
    }
    return out;
  }

  async dispose(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    await session?.release();
  }
}
