import { InvalidOptionsError } from '@facerec/framework';
import { z } from 'zod';

/**
 * Pipeline settings, read from environment variables at the composition root (cold start), validated once.
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `FACEREC_PROVIDER` | `onnx` | inference provider: `onnx` or `tfjs` |
 * | `FACEREC_EMBEDDER` | `inception-resnet-v1` | `inception-resnet-v1` or `faceapi-resnet` |
 * | `FACEREC_WEIGHTS` | `vggface2` | InceptionResnetV1 weights: `vggface2`, `casia-webface` or a `.pt` path |
 * | `FACEREC_REQUEST_QUEUE_URL` | — | request queue (detection → recognition); required |
 * | `FACEREC_RESPONSE_QUEUE_URL` | — | response queue (answers to the client); required |
 * | `FACEREC_GALLERY` | — | gallery file path; required by recognition |
 * | `FACEREC_THRESHOLD` | the gallery's | distance above which a face is `unknown` |
 * | `FACEREC_MAX_FACES` | 32 | faces per frame sent on |
 * | `FACEREC_MIN_FACE_SIZE` | 20 | MTCNN minimum face size |
 * | `FACEREC_MAX_BODY_BYTES` | 6291456 | largest request body |
 * | `FACEREC_MAX_IMAGE_BYTES` / `FACEREC_MAX_IMAGE_PIXELS` | 10485760 / 25000000 | image limits |
 * | `FACEREC_THREADS` | available cores | inference threads |
 * | `FACEREC_WARMUP` | `1280x720` | detection: run the networks once at startup on a frame of this size (`WxH`), so the first request does not pay the runtime's memory growth; `off` to skip |
 * | `FACEREC_SQS_ENDPOINT`, `AWS_REGION` | SDK defaults | SQS endpoint (any SQS-compatible server) and region |
 */
export interface PipelineConfig {
  readonly provider: 'onnx' | 'tfjs';
  readonly embedder: 'inception-resnet-v1' | 'faceapi-resnet';
  readonly weights: string;
  readonly requestQueue: string;
  readonly responseQueue: string;
  readonly gallery: string | undefined;
  readonly threshold: number | undefined;
  readonly maxFaces: number;
  readonly minFaceSize: number;
  readonly maxBodyBytes: number;
  readonly maxImageBytes: number;
  readonly maxImagePixels: number;
  readonly threads: number | undefined;
  /** Frame size the detector warms up on at startup; undefined: no warm-up. */
  readonly warmUp: { readonly width: number; readonly height: number } | undefined;
  readonly sqsEndpoint: string | undefined;
  readonly region: string | undefined;
}

const int = (min: number) => z.coerce.number().int().min(min);
const schema = z.object({
  FACEREC_PROVIDER: z.enum(['onnx', 'tfjs']).default('onnx'),
  FACEREC_EMBEDDER: z.enum(['inception-resnet-v1', 'faceapi-resnet']).default('inception-resnet-v1'),
  FACEREC_WEIGHTS: z.string().min(1).default('vggface2'),
  FACEREC_REQUEST_QUEUE_URL: z.string().min(1),
  FACEREC_RESPONSE_QUEUE_URL: z.string().min(1),
  FACEREC_GALLERY: z.string().min(1).optional(),
  FACEREC_THRESHOLD: z.coerce.number().positive().optional(),
  FACEREC_MAX_FACES: int(1).max(1000).default(32),
  FACEREC_MIN_FACE_SIZE: int(12).default(20),
  FACEREC_MAX_BODY_BYTES: int(1024).default(6 * 1024 * 1024),
  FACEREC_MAX_IMAGE_BYTES: int(1024).default(10 * 1024 * 1024),
  FACEREC_MAX_IMAGE_PIXELS: int(1024).default(25_000_000),
  FACEREC_THREADS: int(1).max(256).optional(),
  FACEREC_WARMUP: z
    .string()
    .regex(/^(off|[1-9]\d{1,4}x[1-9]\d{1,4})$/, 'expected WIDTHxHEIGHT (e.g. 1280x720) or off')
    .default('1280x720'),
  FACEREC_SQS_ENDPOINT: z.url().optional(),
  AWS_REGION: z.string().min(1).optional(),
});

/** Reads and validates the pipeline configuration; names every bad or missing variable. */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): PipelineConfig {
  const relevant = Object.fromEntries(
    Object.keys(schema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]),
  );
  const parsed = schema.safeParse(relevant);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new InvalidOptionsError('@facerec/lambda-runtime configuration', issues, { cause: parsed.error });
  }
  const e = parsed.data;
  return {
    provider: e.FACEREC_PROVIDER,
    embedder: e.FACEREC_EMBEDDER,
    weights: e.FACEREC_WEIGHTS,
    requestQueue: e.FACEREC_REQUEST_QUEUE_URL,
    responseQueue: e.FACEREC_RESPONSE_QUEUE_URL,
    gallery: e.FACEREC_GALLERY,
    threshold: e.FACEREC_THRESHOLD,
    maxFaces: e.FACEREC_MAX_FACES,
    minFaceSize: e.FACEREC_MIN_FACE_SIZE,
    maxBodyBytes: e.FACEREC_MAX_BODY_BYTES,
    maxImageBytes: e.FACEREC_MAX_IMAGE_BYTES,
    maxImagePixels: e.FACEREC_MAX_IMAGE_PIXELS,
    threads: e.FACEREC_THREADS,
    warmUp: parseWarmUp(e.FACEREC_WARMUP),
    sqsEndpoint: e.FACEREC_SQS_ENDPOINT,
    region: e.AWS_REGION,
  };
}

function parseWarmUp(value: string): PipelineConfig['warmUp'] {
  if (value === 'off') return undefined;
  const [width, height] = value.split('x').map(Number) as [number, number];
  return { width, height };
}
