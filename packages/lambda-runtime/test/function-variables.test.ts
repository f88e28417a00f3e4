import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type FaceProvider, FileGallery, MODELS } from '@facerec/framework';
import { FUNCTION_VARIABLES } from '@facerec/framework/registry';
import {
  composeDetection,
  composeRecognition,
  createPipelineContainer,
  loadConfig,
  type PipelineConfig,
} from '@facerec/lambda-runtime';
import { InMemoryQueueTransport } from '@facerec/transport-memory';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The variables behind each field of `PipelineConfig` (`loadConfig`'s schema), by the field's path; for the
 * nested ones, by their parts. Kept by hand: a field missing here fails the first test below.
 */
const VARIABLES_OF: Readonly<Record<string, readonly string[]>> = {
  registry: [],
  provider: ['FACEREC_PROVIDER'],
  detector: ['FACEREC_DETECTOR'],
  detectorOptions: ['FACEREC_MIN_FACE_SIZE'],
  'embedder.description': ['FACEREC_EMBEDDER'],
  'embedder.options': ['FACEREC_EMBEDDER', 'FACEREC_WEIGHTS', 'FACEREC_PRECISION'],
  precision: ['FACEREC_PRECISION'],
  requestQueue: ['FACEREC_REQUEST_QUEUE_URL'],
  responseQueue: ['FACEREC_RESPONSE_QUEUE_URL'],
  replyQueues: ['FACEREC_REPLY_QUEUES'],
  gallery: ['FACEREC_GALLERY'],
  'galleryStore.refreshSeconds': ['FACEREC_GALLERY_REFRESH_SECONDS'],
  'galleryStore.s3Endpoint': ['FACEREC_S3_ENDPOINT'],
  threshold: ['FACEREC_THRESHOLD'],
  maxFaces: ['FACEREC_MAX_FACES'],
  minFaceSize: ['FACEREC_MIN_FACE_SIZE'],
  maxBodyBytes: ['FACEREC_MAX_BODY_BYTES'],
  maxImageBytes: ['FACEREC_MAX_IMAGE_BYTES'],
  maxImagePixels: ['FACEREC_MAX_IMAGE_PIXELS'],
  threads: ['FACEREC_THREADS'],
  warmUp: ['FACEREC_WARMUP'],
  sqsEndpoint: ['FACEREC_SQS_ENDPOINT'],
  region: ['AWS_REGION'],
  'idempotency.table': ['FACEREC_IDEMPOTENCY_TABLE'],
  'idempotency.ttlSeconds': ['FACEREC_IDEMPOTENCY_TTL_SECONDS'],
  'idempotency.endpoint': ['FACEREC_DYNAMODB_ENDPOINT'],
};
const NESTED = new Set(['embedder', 'galleryStore', 'idempotency']);

/** `config`, recording the path of each field read (two levels deep for the nested ones). */
function recording(config: PipelineConfig): { config: PipelineConfig; read: Set<string> } {
  const read = new Set<string>();
  const watch = (target: object, prefix: string): object =>
    new Proxy(target, {
      get(object, key, receiver) {
        const value = Reflect.get(object, key, receiver);
        if (typeof key !== 'string') return value;
        const at = prefix ? `${prefix}.${key}` : key;
        if (!prefix && NESTED.has(key) && value && typeof value === 'object')
          return watch(value as object, at);
        read.add(at);
        return value;
      },
    });
  return { config: watch(config, '') as PipelineConfig, read };
}

/** The variables behind the fields read. */
const variablesOf = (read: ReadonlySet<string>) =>
  new Set([...read].flatMap((field) => VARIABLES_OF[field] ?? [`(no variable known for ${field})`]));

const embedderInfo = (() => {
  const { description, options } = MODELS.resolveEmbedder('faceapi-resnet', {});
  return {
    modelId: description.modelId(options),
    weightsSha256: undefined,
    dimension: description.dimension,
    preprocessing: description.preprocessing,
  };
})();
/** A provider that loads nothing: a detector that finds no face, an embedder that only describes itself. */
const provider = {
  detector: () => ({
    ready: async () => {},
    warmUp: async () => {},
    detect: async () => [],
    dispose: async () => {},
  }),
  embedder: async () => embedderInfo,
} as unknown as FaceProvider;

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe("FUNCTION_VARIABLES (the CDK construct's unread-variable warning)", () => {
  const environment = async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'facerec-variables-'));
    dirs.push(dir);
    const gallery = path.join(dir, 'g.json');
    await FileGallery.create({
      embedder: embedderInfo,
      identities: [{ name: 'a', examples: [{ source: 'a.jpg', embedding: [1, ...Array(127).fill(0)] }] }],
      threshold: 0.5,
    }).save(gallery);
    return {
      FACEREC_EMBEDDER: 'faceapi-resnet',
      FACEREC_REQUEST_QUEUE_URL: 'requests',
      FACEREC_RESPONSE_QUEUE_URL: 'responses',
      FACEREC_GALLERY: gallery,
      FACEREC_THRESHOLD: '0.6',
      FACEREC_WARMUP: '64x48',
    };
  };
  const compose = async (role: 'detection' | 'recognition') => {
    const { config, read } = recording(loadConfig(await environment()));
    const quiet = () => {};
    const c = createPipelineContainer(config, {
      transport: new InMemoryQueueTransport(),
      provider,
      logger: { debug: quiet, info: quiet, warn: quiet, error: quiet } as never,
    });
    if (role === 'detection') await composeDetection(c);
    else await composeRecognition(c);
    return variablesOf(read);
  };

  it('knows the variable behind every field of the configuration', async () => {
    const config = loadConfig(await environment());
    const fields = Object.keys(config).flatMap((key) =>
      NESTED.has(key)
        ? Object.keys((config as unknown as Record<string, object>)[key]!).map((part) => `${key}.${part}`)
        : [key],
    );
    // The embedder's other parts (its registry entry) come from FACEREC_EMBEDDER like its description.
    const known = (field: string) => field in VARIABLES_OF || field.startsWith('embedder.');
    expect(fields.filter((field) => !known(field))).toEqual([]);
  });

  it('lists for each function the variables it reads and the other does not', async () => {
    const read = { detection: await compose('detection'), recognition: await compose('recognition') };
    // Read by loadConfig in both, whatever the composition then uses: the queue URLs, required (recognition on
    // Lambda is given its requests by the event source, and reads the request queue in the local runtime), and
    // the weights, with which each resolves the embedder (detection for its crop policy; a plugin embedder's
    // options may require weights).
    const required = new Set(['FACEREC_REQUEST_QUEUE_URL', 'FACEREC_RESPONSE_QUEUE_URL', 'FACEREC_WEIGHTS']);
    const only = (role: 'detection' | 'recognition', other: 'detection' | 'recognition') =>
      [...read[role]].filter((name) => !read[other].has(name) && !required.has(name)).sort();
    expect({
      detection: only('detection', 'recognition'),
      recognition: only('recognition', 'detection'),
    }).toEqual({
      detection: [...FUNCTION_VARIABLES.detection].sort(),
      recognition: [...FUNCTION_VARIABLES.recognition].sort(),
    });
  });
});
