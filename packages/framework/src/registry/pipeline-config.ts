import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';
import { EMBEDDER_PRECISIONS, type EmbedderPrecision } from '../contracts/embedder.js';
import { InvalidOptionsError } from '../errors.js';
import { DEFAULT_DECODE_LIMITS, MAX_DECODE_LIMITS } from '../image/limits.js';
import { DEFAULT_MTCNN_OPTIONS, MIN_FACE_SIZE_SETTING } from '../mtcnn/options.js';
import { formatIssues } from '../options.js';
import { MODELS, type ModelRegistry, type ResolvedEmbedder } from './registry.js';

/**
 * Pipeline settings, read from environment variables at the composition root (cold start), validated once.
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `FACEREC_PROVIDER` | the registry's (`onnx`) | inference provider: a provider the model registry lists (`onnx`, `tfjs`) |
 * | `FACEREC_DETECTOR` | the registry's (`mtcnn`) | a detector id of the model registry (a registry of your own may add one) |
 * | `FACEREC_EMBEDDER` | the registry's (`inception-resnet-v1`) | an embedder id of the model registry (`inception-resnet-v1`, `faceapi-resnet`) |
 * | `FACEREC_WEIGHTS` | the model's (`vggface2`) | weights, for embedders that take them (InceptionResnetV1: `vggface2`, `casia-webface` or a `.pt` path) |
 * | `FACEREC_PRECISION` | `fp32` | recognition: the embedder's precision, `fp32` or `int8` (onnx provider: the int8 graph, calibrated on the face images in `FACEREC_CALIBRATION_DIR` when set, else with the ranges that ship for faceapi-resnet (InceptionResnetV1: the calibration recorded in the model cache when its int8 graph was prepared); a read-only deployment needs it prepared ahead, `npm run lambda-tree -- --precision int8 [--calibration DIR]`) |
 * | `FACEREC_REQUEST_QUEUE_URL` | — | request queue (detection → recognition); required |
 * | `FACEREC_RESPONSE_QUEUE_URL` | — | response queue (answers to the client); required |
 * | `FACEREC_REPLY_QUEUES` | none | comma-separated queue URLs a request may name in `reply_to` to be answered there instead (one per client sharing the deployment) |
 * | `FACEREC_GALLERY` | — | the gallery, required by recognition: a file path, `s3://bucket/key` (a gallery file in S3, swapped in when its ETag changes; `@facerec/gallery-s3`) or `postgres://…?collection=name` (`@facerec/gallery-postgres`) |
 * | `FACEREC_GALLERY_REFRESH_SECONDS` | 60 | how often recognition looks for a new version of a file or S3 gallery (a `stat`, a conditional GET), or reads a Postgres collection's threshold again; a threshold changed meanwhile is matched at from the first batch that sees it |
 * | `FACEREC_S3_ENDPOINT` | SDK default | S3 endpoint for an `s3://` gallery (any S3-compatible server, path-style) |
 * | `FACEREC_THRESHOLD` | the gallery's | distance above which a face is `unknown` (at most 2) |
 * | `FACEREC_MAX_FACES` | 32 | faces per frame sent on |
 * | `FACEREC_MIN_FACE_SIZE` | 20 | minimum face size (12–4096), for a detector that takes `minFaceSize` (MTCNN); set for one that does not, it is refused |
 * | `FACEREC_MAX_BODY_BYTES` | 6291456 | largest request body (at most 64 MiB) |
 * | `FACEREC_MAX_IMAGE_BYTES` / `FACEREC_MAX_IMAGE_PIXELS` | 10485760 / 25000000 | image limits (at most 64 MiB / 100 megapixels) |
 * | `FACEREC_THREADS` | available cores | inference threads |
 * | `FACEREC_WARMUP` | `1280x720` | detection: run the networks once at startup on a frame of this size (`WxH`), so the first request does not pay the runtime's memory growth (at most `FACEREC_MAX_IMAGE_PIXELS`); `off` to skip |
 * | `FACEREC_IDEMPOTENCY_TABLE` | — | recognition: DynamoDB table shared by every container, so a redelivered face is answered once across containers (partition key `id`, string; TTL attribute `expiration`); unset: in-memory, per container |
 * | `FACEREC_IDEMPOTENCY_TTL_SECONDS` | 3600 | how long an answered face is remembered |
 * | `FACEREC_SQS_ENDPOINT`, `AWS_REGION` | SDK defaults | SQS endpoint (any SQS-compatible server) and region |
 * | `FACEREC_DYNAMODB_ENDPOINT` | SDK default | DynamoDB endpoint (DynamoDB Local, dynalite) |
 */
export interface PipelineConfig {
  /** The models the pipeline can use; `provider` and `embedder` were validated against it. */
  readonly registry: ModelRegistry;
  readonly provider: string;
  /** The detector id (`FACEREC_DETECTOR`, else the registry's default detector). */
  readonly detector: string;
  /** The detector's options: `{ minFaceSize }` for a detector that takes it (MTCNN), else none. */
  readonly detectorOptions: Readonly<Record<string, unknown>>;
  /** The embedder and its options (from `FACEREC_EMBEDDER` and `FACEREC_WEIGHTS`), validated. */
  readonly embedder: ResolvedEmbedder;
  /** The embedder's precision (`FACEREC_PRECISION`; default `fp32`), also in `embedder.options` for int8. */
  readonly precision: EmbedderPrecision;
  readonly requestQueue: string;
  readonly responseQueue: string;
  /** The reply queues a request may name in `reply_to` (`FACEREC_REPLY_QUEUES`); empty: none. */
  readonly replyQueues: readonly string[];
  readonly gallery: string | undefined;
  /** How a `FACEREC_GALLERY` store is re-checked and reached (`openGalleryStore` options). */
  readonly galleryStore: { readonly refreshSeconds: number; readonly s3Endpoint: string | undefined };
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
  /** Idempotency of the recognition handler: a DynamoDB table (shared store), else in memory. */
  readonly idempotency: {
    readonly table: string | undefined;
    readonly ttlSeconds: number;
    readonly endpoint: string | undefined;
  };
}

/**
 * A number written in decimal, within a range, as a person or a program writes it in an environment variable:
 * `z.coerce.number` would also take " " (as 0), "0x10000" and "Infinity". Fractions may have an exponent
 * (`String(1e-7)` writes one); whole numbers are digits only. The error states the range, whatever is wrong.
 */
const decimal = (range: { min: number; max: number; above?: boolean; whole?: boolean }) => {
  const { min, max, above = false, whole = false } = range;
  const expected = `expected ${whole ? 'a whole number' : 'a number'} ${above ? `above ${min} and at most` : `from ${min} to`} ${max}`;
  return z
    .string()
    .regex(whole ? /^\d+$/ : /^\d+(\.\d+)?(e[+-]?\d+)?$/i, expected)
    .transform(Number)
    .refine((v) => (above ? v > min : v >= min) && v <= max, expected);
};
const int = (min: number, max: number) => decimal({ min, max, whole: true });
/** One of `valid`, or an error listing them. */
const oneOf = <T extends string>(valid: readonly T[]) =>
  z.string().refine((v): v is T => (valid as readonly string[]).includes(v), {
    error: (issue) => `${JSON.stringify(issue.input)} is not one of ${valid.join(', ')}`,
  });
/**
 * Request body limits: `default`, a Lambda Function URL's 6 MiB payload (`FACEREC_MAX_BODY_BYTES`'s default, and
 * the local runtime's), and `max`, the most `FACEREC_MAX_BODY_BYTES` takes.
 */
export const BODY_LIMITS = Object.freeze({ default: 6 * 1024 * 1024, max: 64 * 1024 * 1024 });

/** A variable that must be set: named as such (zod would say "expected string, received undefined"). */
const required = z.string({
  error: (issue) => (issue.input === undefined ? 'required, not set' : undefined),
});
/** An http(s) URL (a queue URL, an endpoint): `z.url()` alone would take `file:` or `javascript:` too. */
const httpUrl = (what: string) =>
  z.url({ protocol: /^https?$/, error: `expected ${what} (an http:// or https:// URL)` });
/** A value without spaces around it (a trailing space is a typo, never part of a path or name). */
const trimmed = z
  .string()
  .min(1)
  .regex(/^\S(.*\S)?$/s, 'has spaces at the start or end (or is only spaces)');
const schemaFor = (registry: ModelRegistry) =>
  z
    .object({
      FACEREC_PROVIDER: oneOf(registry.providerNames).default(registry.defaults.provider),
      FACEREC_DETECTOR: oneOf(registry.detectorIds).default(registry.defaults.detector),
      FACEREC_EMBEDDER: oneOf(registry.embedderIds).default(registry.defaults.embedder),
      FACEREC_WEIGHTS: trimmed.optional(),
      FACEREC_PRECISION: oneOf(EMBEDDER_PRECISIONS).default('fp32'),
      // Queue URLs on SQS; the local runtime passes its in-process queues' names here (checked as URLs by the
      // SQS transport, before the first request).
      FACEREC_REQUEST_QUEUE_URL: required.pipe(trimmed),
      FACEREC_RESPONSE_QUEUE_URL: required.pipe(trimmed),
      FACEREC_REPLY_QUEUES: z
        .string()
        .transform((v) =>
          v
            .split(',')
            .map((q) => q.trim())
            .filter((q) => q.length > 0),
        )
        .pipe(z.array(httpUrl('each reply queue to be a queue URL')).max(100))
        .optional(),
      FACEREC_GALLERY: trimmed.optional(),
      FACEREC_GALLERY_REFRESH_SECONDS: decimal({ min: 0, max: 86_400 }).default(60),
      FACEREC_S3_ENDPOINT: trimmed.pipe(httpUrl('an S3 endpoint')).optional(),
      // Distances between unit vectors are at most 2 (euclidean and cosine alike): more would name every face.
      FACEREC_THRESHOLD: decimal({ min: 0, max: 2, above: true }).optional(),
      FACEREC_MAX_FACES: int(1, 1000).default(32),
      FACEREC_MIN_FACE_SIZE: int(MIN_FACE_SIZE_SETTING.min, MIN_FACE_SIZE_SETTING.max).default(
        DEFAULT_MTCNN_OPTIONS.minFaceSize,
      ),
      // Upper bounds a Lambda function can honour: a larger limit would only turn a 413 into running out of memory.
      FACEREC_MAX_BODY_BYTES: int(1024, BODY_LIMITS.max).default(BODY_LIMITS.default),
      FACEREC_MAX_IMAGE_BYTES: int(1024, MAX_DECODE_LIMITS.maxBytes).default(DEFAULT_DECODE_LIMITS.maxBytes),
      FACEREC_MAX_IMAGE_PIXELS: int(1024, MAX_DECODE_LIMITS.maxPixels).default(
        DEFAULT_DECODE_LIMITS.maxPixels,
      ),
      FACEREC_THREADS: int(1, 256).optional(),
      FACEREC_WARMUP: z
        .string()
        .regex(/^(off|[1-9]\d{1,4}x[1-9]\d{1,4})$/, 'expected WIDTHxHEIGHT (e.g. 1280x720) or off')
        .default('1280x720'),
      FACEREC_SQS_ENDPOINT: trimmed.pipe(httpUrl('an SQS endpoint')).optional(),
      FACEREC_IDEMPOTENCY_TABLE: z
        .string()
        .regex(/^[A-Za-z0-9_.-]{3,255}$/, 'a DynamoDB table name (3–255 of A-Z a-z 0-9 _ . -)')
        .optional(),
      FACEREC_IDEMPOTENCY_TTL_SECONDS: int(60, 366 * 24 * 3600).default(3600),
      FACEREC_DYNAMODB_ENDPOINT: trimmed.pipe(httpUrl('a DynamoDB endpoint')).optional(),
      AWS_REGION: z
        .string()
        .regex(/^[a-z]{2}(-[a-z0-9]+)+-\d+$/, 'expected an AWS region (e.g. eu-west-1)')
        .optional(),
    })
    .superRefine((e, ctx) => {
      // The warm-up frame is one the handler would accept: no larger than the pixel limit.
      const warmUp = parseWarmUp(e.FACEREC_WARMUP);
      if (warmUp && warmUp.width * warmUp.height > e.FACEREC_MAX_IMAGE_PIXELS) {
        ctx.addIssue({
          code: 'custom',
          path: ['FACEREC_WARMUP'],
          message: `${warmUp.width}x${warmUp.height} is more pixels than FACEREC_MAX_IMAGE_PIXELS (${e.FACEREC_MAX_IMAGE_PIXELS})`,
        });
      }
    });

/** Every environment variable {@link loadConfig} reads. */
export const PIPELINE_VARIABLES: readonly string[] = Object.freeze(Object.keys(schemaFor(MODELS).shape));

/**
 * The variables one function reads and the other does not (the rest of {@link PIPELINE_VARIABLES} both read):
 * detection's frame limits and warm-up, recognition's precision, gallery, threshold and idempotency store
 * (`FACEREC_WEIGHTS` both read: each resolves the embedder, whose options may require weights). Set on the other function, one changes nothing (beyond {@link loadConfig}'s check of its value).
 * `packages/lambda-runtime/test/function-variables.test.ts` checks it against what each composition reads.
 */
export const FUNCTION_VARIABLES: Readonly<Record<'detection' | 'recognition', readonly string[]>> =
  Object.freeze({
    detection: Object.freeze([
      'FACEREC_DETECTOR',
      'FACEREC_MAX_FACES',
      'FACEREC_MIN_FACE_SIZE',
      'FACEREC_MAX_BODY_BYTES',
      'FACEREC_MAX_IMAGE_BYTES',
      'FACEREC_MAX_IMAGE_PIXELS',
      'FACEREC_WARMUP',
    ]),
    recognition: Object.freeze([
      'FACEREC_PRECISION',
      'FACEREC_GALLERY',
      'FACEREC_GALLERY_REFRESH_SECONDS',
      'FACEREC_S3_ENDPOINT',
      'FACEREC_THRESHOLD',
      'FACEREC_IDEMPOTENCY_TABLE',
      'FACEREC_IDEMPOTENCY_TTL_SECONDS',
      'FACEREC_DYNAMODB_ENDPOINT',
    ]),
  });

/**
 * `FACEREC_` variables read by other parts of facerec than {@link loadConfig}: the model store, the tfjs
 * provider, int8 calibration, the CLI and `facerec serve`, the S3 store, the tests' shared data, the harness.
 */
const READ_ELSEWHERE = Object.freeze([
  'FACEREC_CACHE_DIR',
  'FACEREC_MODELS_MIRROR',
  'FACEREC_CALIBRATION_DIR',
  'FACEREC_TFJS_BACKEND',
  'FACEREC_DEBUG',
  'FACEREC_LOCAL_TOKEN',
  'FACEREC_S3_ALLOW_UNCONDITIONAL_WRITES',
  'FACEREC_SHARED_DIR',
  // scripts/lambda-harness.ts, which runs a handler from a built Lambda tree (its tests, the cold-start bench).
  'FACEREC_INVOKE_EVENT',
  'FACEREC_INVOKE_RESULT',
]);

/**
 * The `FACEREC_` variables set in `env` that nothing in facerec reads, each with the known name it is closest to
 * when one is close (at most 3 edits, or the only one that adds a part: `_URL`): a misspelt `FACEREC_TRESHOLD` would otherwise be ignored without a word.
 * The Lambda entries log them at start.
 */
export function unknownVariables(
  env: Readonly<Record<string, string | undefined>> = process.env,
): { readonly name: string; readonly meant?: string }[] {
  const known = [...PIPELINE_VARIABLES.filter((n) => n.startsWith('FACEREC_')), ...READ_ELSEWHERE];
  // Environment names are case-sensitive: `facerec_threshold` is not read, so it is named too, compared in upper case.
  return Object.keys(env)
    .filter(
      (name) => name.toUpperCase().startsWith('FACEREC_') && env[name] !== undefined && !known.includes(name),
    )
    .sort()
    .map((name) => {
      const upper = name.toUpperCase();
      if (upper !== name && known.includes(upper)) return { name, meant: upper };
      // A name cut short by a whole part (FACEREC_REQUEST_QUEUE for FACEREC_REQUEST_QUEUE_URL) is 4 edits away.
      const longer = known.filter((k) => k.startsWith(`${upper}_`));
      if (longer.length === 1) return { name, meant: longer[0] as string };
      const meant = closest(upper, known);
      return distance(upper, meant) <= 3 ? { name, meant } : { name };
    });
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /**
   * The function the configuration is for: `recognition` also requires `FACEREC_GALLERY` (named with the other
   * missing variables, rather than once they are fixed). Default: either (the gallery is checked when the
   * recognition handler is composed).
   */
  readonly role?: 'detection' | 'recognition';
}

/**
 * Reads and validates the pipeline configuration; names every bad or missing variable. Provider and
 * embedder ids are checked against `registry` (default: the built-in one), and the error lists the valid ones.
 */
export function loadConfig(
  env: Readonly<Record<string, string | undefined>> = process.env,
  registry: ModelRegistry = MODELS,
  { role }: LoadConfigOptions = {},
): PipelineConfig {
  const schema = schemaFor(registry);
  const relevant = Object.fromEntries(
    Object.keys(schema.shape).map((k) => [k, env[k] === '' ? undefined : env[k]]),
  );
  const parsed = schema.safeParse(relevant);
  const issues = parsed.success ? [] : [formatIssues(parsed.error)];
  if (role === 'recognition' && relevant.FACEREC_GALLERY === undefined) {
    issues.push('FACEREC_GALLERY: required for recognition, not set');
  }
  // The embedder is resolved whenever its own variables parse, so that its problem is named with the others, not
  // in a second round after they are fixed and deployed.
  const { FACEREC_EMBEDDER, FACEREC_WEIGHTS, FACEREC_PRECISION } = schema.shape;
  const named = z.object({ FACEREC_EMBEDDER, FACEREC_WEIGHTS, FACEREC_PRECISION }).safeParse(relevant);
  let embedder: ResolvedEmbedder | undefined;
  let embedderError: unknown;
  if (named.success) {
    try {
      // fp32 is every embedder's default: named only for int8, so an embedder without the option still loads.
      embedder = registry.resolveEmbedder(
        named.data.FACEREC_EMBEDDER,
        { weights: named.data.FACEREC_WEIGHTS },
        named.data.FACEREC_PRECISION === 'int8' ? { precision: 'int8' } : {},
      );
    } catch (cause) {
      embedderError = cause;
      issues.push(`FACEREC_EMBEDDER / FACEREC_WEIGHTS / FACEREC_PRECISION: ${(cause as Error).message}`);
    }
  }
  if (!parsed.success || issues.length > 0 || embedder === undefined) {
    const cause = parsed.success ? embedderError : parsed.error;
    throw new InvalidOptionsError('@facerec/lambda-runtime configuration', issues.join('; '), {
      ...(cause === undefined ? {} : { cause }),
    });
  }
  const e = parsed.data;
  // A detector of the caller's registry may have no minimum face size: passed only to one that takes it.
  const minFaceSize = { minFaceSize: e.FACEREC_MIN_FACE_SIZE };
  const takesMinFaceSize = registry.detector(e.FACEREC_DETECTOR).options.safeParse(minFaceSize).success;
  if (!takesMinFaceSize && relevant.FACEREC_MIN_FACE_SIZE !== undefined) {
    throw new InvalidOptionsError(
      '@facerec/lambda-runtime configuration',
      `FACEREC_MIN_FACE_SIZE: the detector "${e.FACEREC_DETECTOR}" takes no minFaceSize option; unset it`,
    );
  }
  return {
    registry,
    provider: e.FACEREC_PROVIDER,
    detector: e.FACEREC_DETECTOR,
    detectorOptions: takesMinFaceSize ? minFaceSize : {},
    embedder,
    precision: e.FACEREC_PRECISION,
    requestQueue: e.FACEREC_REQUEST_QUEUE_URL,
    responseQueue: e.FACEREC_RESPONSE_QUEUE_URL,
    replyQueues: e.FACEREC_REPLY_QUEUES ?? [],
    gallery: e.FACEREC_GALLERY,
    galleryStore: { refreshSeconds: e.FACEREC_GALLERY_REFRESH_SECONDS, s3Endpoint: e.FACEREC_S3_ENDPOINT },
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
    idempotency: {
      table: e.FACEREC_IDEMPOTENCY_TABLE,
      ttlSeconds: e.FACEREC_IDEMPOTENCY_TTL_SECONDS,
      endpoint: e.FACEREC_DYNAMODB_ENDPOINT,
    },
  };
}

function parseWarmUp(value: string): PipelineConfig['warmUp'] {
  if (value === 'off') return undefined;
  const [width, height] = value.split('x').map(Number) as [number, number];
  return { width, height };
}
