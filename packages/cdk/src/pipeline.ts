import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// The registry subpath: model facts only, no image or inference code in a CDK app.
import {
  assertGalleryFitsEmbedder,
  EMBEDDER_PRECISIONS,
  FUNCTION_VARIABLES,
  type GalleryFileSummary,
  loadConfig,
  MODELS,
  type ModelRegistry,
  PIPELINE_METRICS,
  type ResolvedEmbedder,
  readGallerySummary,
  unknownVariables,
} from '@facerec/framework/registry';
import {
  Annotations,
  Aspects,
  CfnOutput,
  CfnResource,
  Duration,
  Fn,
  IgnoreStrategy,
  RemovalPolicy,
  Stack,
  Token,
} from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ecr from 'aws-cdk-lib/aws-ecr';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { FaceRecognitionPipelineError } from './errors.js';

/**
 * Where the root Dockerfile puts the model cache (`facerec/models` in the Lambda task tree under
 * `LAMBDA_TASK_ROOT`, `/var/task`); the functions read it through `FACEREC_CACHE_DIR`.
 */
export const BAKED_MODEL_DIR = '/var/task/facerec/models';
/** Where the root Dockerfile puts the gallery (`FACEREC_GALLERY`). */
export const BAKED_GALLERY = '/var/task/facerec/gallery.json';

/** A prebuilt image (built from the facerec Dockerfile, or one of your own with the same two handlers). */
export interface PipelineImage {
  /** The ECR repository holding it. */
  readonly repository: ecr.IRepository;
  /** Its tag or, better (immutable), its digest `sha256:…`. */
  readonly tagOrDigest: string;
}

/** Alarm thresholds; every alarm fires at or above (DLQ depth: above) its threshold. */
export interface PipelineAlarmThresholds {
  /** Messages visible in either dead-letter queue above which its alarm fires. Default 0 (any message). */
  readonly dlqDepth?: number;
  /** Age of the oldest request-queue message, in seconds, at which the backlog alarm fires. Default 300. */
  readonly requestQueueAgeSeconds?: number;
  /**
   * Age of the oldest answer waiting in the response queue, or in one reply queue, in seconds, at which that
   * queue's alarm fires: answers no client collects (a client that died or stopped polling, or one reading
   * another queue), which would otherwise expire unseen after the queues' 4-day retention. A client collects
   * its answers within seconds (`facerec client` waits `--timeout`, default 60 s). 60 to 345,599 (under the
   * retention). Default 900.
   */
  readonly uncollectedAnswerAgeSeconds?: number;
  /**
   * Function errors per 5-minute period at which each function's error alarm fires. Default 1. These count
   * exceptions only: a failure the handlers catch and answer (detection's 503, recognition's records handed
   * back) is no Lambda error, which the Function URL 5xx and recognition start-failure alarms cover.
   */
  readonly functionErrors?: number;
  /**
   * 5xx answers of the detection Function URL per 5-minute period (metric `Url5xxCount`) at which its alarm
   * fires: a detection function that failed to start, a queue it cannot send to, a timeout. Default 1.
   */
  readonly functionUrl5xx?: number;
  /**
   * Average latency of an answer on the server, in milliseconds per 5-minute period, at which the latency
   * alarm fires: detection's `DetectionLatency` plus recognition's `AnswerLatency` (the face waiting in the
   * request queue, then recognised and answered). The client's own polling comes on top. Default 2000.
   */
  readonly latencyMs?: number;
  /**
   * Throttled detection invocations per 5-minute period at which its alarm fires: frames refused with 429
   * because every reserved instance was busy. Default 1.
   */
  readonly detectionThrottles?: number;
}

/** Settings of one of the two functions. */
export interface PipelineFunctionOptions {
  /** Memory in MiB (128–10240); CPU scales with it. */
  readonly memorySize?: number;
  /** Timeout in seconds (1–900). */
  readonly timeoutSeconds?: number;
  /**
   * Reserved concurrency: the most containers this function may run at once (≥ 1; recognition ≥ 2, as its
   * SQS event source runs at least 2 invocations at once). `false` reserves none: the function shares the
   * account's unreserved concurrency. Lambda keeps 100 of the account's concurrency quota unreserved (all of
   * it below that, as on new accounts, which start at 10), so a deploy that reserves more fails; `false` is
   * the way there short of a quota increase.
   */
  readonly reservedConcurrency?: number | false;
}

/**
 * Props of {@link FaceRecognitionPipeline}. Every prop is optional; defaults are documented on each and
 * collected in {@link PIPELINE_DEFAULTS}. Unknown keys are rejected.
 */
export interface FaceRecognitionPipelineProps {
  /**
   * Docker build context of the function image: a facerec checkout (its root `Dockerfile` builds the image).
   * Default: the repository this package sits in, which holds in a checkout of the monorepo. Installed from
   * npm, the package holds no facerec sources: pass the path of a checkout, or a prebuilt {@link image}.
   */
  readonly imageDirectory?: string;
  /** Dockerfile, relative to {@link imageDirectory}. Default `Dockerfile` (the repository's root Dockerfile). */
  readonly dockerFile?: string;
  /**
   * Extra Docker build arguments, beside the ones the construct derives from its props (`PROVIDER`, `EMBEDDER`,
   * `WEIGHTS`, `PRECISION`, `CALIBRATION`, `GALLERY`: refused here, set the prop). Use it for
   * `FACEREC_MODELS_MIRROR` when building offline, or `NODE_IMAGE` for another base image.
   */
  readonly buildArgs?: Readonly<Record<string, string>>;
  /**
   * A prebuilt image instead of building one from {@link imageDirectory} (then `imageDirectory`,
   * `dockerFile` and `buildArgs` must not be set). Its gallery and models are whatever it was built with:
   * pass {@link gallery} too, so that synth can check the gallery against the embedder.
   */
  readonly image?: PipelineImage;
  /**
   * The gallery file on this machine, read at synth: it must exist and be a valid facerec gallery; the
   * functions run the embedder it was enrolled with (unless {@link embedder} names one, which must then be
   * the same). When the image is built from {@link imageDirectory} it must lie inside that folder (it is
   * passed to the build as `GALLERY`). Default: `gallery/gallery.json` in {@link imageDirectory}; none with a
   * prebuilt {@link image} (synth then warns that nothing was checked).
   */
  readonly gallery?: string;
  /**
   * CPU architecture of both functions. Default `x86_64`. `arm64` (Graviton, about 20 % cheaper per
   * GB-second) works with the `onnx` provider: onnxruntime-node and sharp ship linux/arm64 binaries, and the
   * image build installs them for the target (no emulation needed).
   */
  readonly architecture?: 'x86_64' | 'arm64';
  /** An e-mail address subscribed to the alarm topic (it must confirm the subscription). */
  readonly alarmEmail?: string;
  /** The SNS topic every alarm notifies. Default: a topic the construct creates ({@link alarmTopic}). */
  readonly alarmTopic?: sns.ITopic;
  /**
   * Keep the gallery in an S3 bucket the stack creates (versioned, encrypted, TLS-only, private), instead of
   * only in the image: the recognition function reads `s3://<bucket>/gallery.json` at init and re-checks its
   * ETag every {@link galleryRefreshSeconds}, so adding or removing a person (`facerec gallery add
   * s3://<bucket>/gallery.json …`) needs no redeploy. The {@link gallery} file is still checked at synth and
   * baked into the image as the embedder check; upload it as the first version (see the deploy guide). The
   * bucket is retained on `cdk destroy` (it holds your data); replaced versions expire after
   * {@link galleryVersionRetentionDays}. Default false.
   */
  readonly galleryBucket?: boolean;
  /** Seconds between checks for a new gallery version in the bucket. Default 60. Only with {@link galleryBucket}. */
  readonly galleryRefreshSeconds?: number;
  /**
   * Days the gallery bucket keeps a replaced or deleted version of `gallery.json` (a lifecycle rule expiring
   * noncurrent versions), so that a person removed from the gallery — face embeddings, personal data — is
   * gone from the old versions too after that many days (1–3650). Default 30. Only with {@link galleryBucket}.
   */
  readonly galleryVersionRetentionDays?: number;
  /**
   * The models `provider` and `embedder` are checked against (at synth, by the same registry the image
   * build and the functions use). Default: the built-in registry, `MODELS`.
   */
  readonly registry?: ModelRegistry;
  /** Inference provider (`FACEREC_PROVIDER`): a provider of the registry. Default: the registry's (`onnx`). */
  readonly provider?: string;
  /**
   * Face embedder (`FACEREC_EMBEDDER`): an embedder id of the registry. Default: the one the gallery was
   * enrolled with (read at synth); with a prebuilt image and no gallery, the registry's (`inception-resnet-v1`,
   * the same default as `facerec enroll`). The gallery must be enrolled with it.
   */
  readonly embedder?: string;
  /**
   * Weights (`FACEREC_WEIGHTS`), for embedders that take them: InceptionResnetV1's `vggface2`,
   * `casia-webface` or a `.pt` path inside the image. Default: the gallery's; without a gallery, the embedder's
   * own (`vggface2`).
   */
  readonly weights?: string;
  /**
   * The recognition function's embedder precision (`FACEREC_PRECISION`): `fp32` (default) or `int8`, the onnx
   * provider's int8 graph (2.4–3.7× faster InceptionResnetV1 on x86 CPUs with VNNI; on AVX2 alone 1.2× on a Zen 1
   * EPYC, 1.5–2× on newer cores; its accuracy cost is measured per embedder in the README), which the image build prepares from {@link calibration}'s faces, or for an embedder
   * whose int8 ranges ship (`faceapi-resnet`; the registry's `int8Calibration`) from those when none is given.
   */
  readonly precision?: 'fp32' | 'int8';
  /**
   * With `precision: 'int8'` and an image built here: a folder of face images inside `imageDirectory` (a few
   * dozen, of the kind the functions will see) to calibrate the int8 graph on; the image keeps them (build
   * argument `CALIBRATION`). Optional for an embedder whose int8 ranges ship (`faceapi-resnet`). Refused with a
   * prebuilt {@link image}, whose int8 graph was prepared when it was built.
   */
  readonly calibration?: string;
  /** Gallery file inside the image (`FACEREC_GALLERY`). Default {@link BAKED_GALLERY}, the Dockerfile's. */
  readonly galleryPath?: string;
  /** Model cache inside the image (`FACEREC_CACHE_DIR`). Default {@link BAKED_MODEL_DIR}. */
  readonly modelCacheDir?: string;
  /** Detection function. Defaults: 2048 MiB, 30 s, reserved concurrency 10. */
  readonly detection?: PipelineFunctionOptions;
  /** Recognition function. Defaults: 3008 MiB, 60 s, reserved concurrency 5. */
  readonly recognition?: PipelineFunctionOptions;
  /** SQS records per recognition invocation (1–10000; above 10 needs a batching window). Default 10. */
  readonly batchSize?: number;
  /** Seconds the event source waits to fill a batch (0–300). Default 1. */
  readonly maxBatchingWindowSeconds?: number;
  /**
   * Most concurrent recognition invocations the SQS event source starts (2–1000). Default: the recognition
   * reserved concurrency (5 when it reserves none). Must not exceed it, or the excess invocations are
   * throttled and their messages bounce back to the queue (and, after 5 receives, to the DLQ).
   */
  readonly maxConcurrency?: number;
  /**
   * Auth of the detection Function URL. Default `AWS_IAM` (callers sign with SigV4). `NONE` makes the URL
   * public; it is allowed only when asked for explicitly and raises a synth warning.
   */
  readonly functionUrlAuth?: 'AWS_IAM' | 'NONE';
  /** Alarm thresholds. */
  readonly alarms?: PipelineAlarmThresholds;
  /**
   * A CloudWatch dashboard of the pipeline: frames and faces by outcome, latencies, queues, both functions
   * and the alarms (`FaceRecognitionPipeline.dashboard`). Default true; `false` creates none.
   */
  readonly dashboard?: boolean;
  /** Retention of both functions' log groups. Default one month. */
  readonly logRetention?: logs.RetentionDays;
  /** What happens to queues and log groups on `cdk destroy`. Default `RemovalPolicy.DESTROY`. */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Names of the clients that share the deployment, one reply queue each (at most {@link MAX_REPLY_QUEUES}; a
   * name is a letter then letters or digits, up to 32). A client sends `reply_to: <its queue URL>` with each
   * request (`facerec client --reply-queue-url`) and polls that queue, so no client receives, or deletes,
   * another's answers. Each queue is encrypted, TLS-only and redrives to the response dead-letter queue after
   * 5 receives; both functions may send to it (listed in `FACEREC_REPLY_QUEUES`), and its URL is the stack
   * output `ReplyQueueUrl<name>`. Default: none — one client polls the response queue.
   */
  readonly replyQueues?: readonly string[];
}

/** The documented defaults of {@link FaceRecognitionPipelineProps}. */
export const PIPELINE_DEFAULTS = Object.freeze({
  dockerFile: 'Dockerfile',
  gallery: 'gallery/gallery.json',
  architecture: 'x86_64',
  provider: MODELS.defaults.provider,
  embedder: MODELS.defaults.embedder,
  galleryPath: BAKED_GALLERY,
  modelCacheDir: BAKED_MODEL_DIR,
  detection: Object.freeze({ memorySize: 2048, timeoutSeconds: 30, reservedConcurrency: 10 }),
  recognition: Object.freeze({ memorySize: 3008, timeoutSeconds: 60, reservedConcurrency: 5 }),
  batchSize: 10,
  maxBatchingWindowSeconds: 1,
  functionUrlAuth: 'AWS_IAM',
  alarms: Object.freeze({
    dlqDepth: 0,
    requestQueueAgeSeconds: 300,
    uncollectedAnswerAgeSeconds: 900,
    functionErrors: 1,
    functionUrl5xx: 1,
    latencyMs: 2000,
    detectionThrottles: 1,
  }),
  dashboard: true,
  logRetention: logs.RetentionDays.ONE_MONTH,
  removalPolicy: RemovalPolicy.DESTROY,
  replyQueues: Object.freeze([] as string[]),
  galleryBucket: false,
  galleryRefreshSeconds: 60,
  galleryVersionRetentionDays: 30,
} as const);

/**
 * Most reply queues a pipeline creates: their URLs travel in `FACEREC_REPLY_QUEUES`, within the 4 KB a
 * function's environment may hold.
 */
export const MAX_REPLY_QUEUES = 20;

/** An image digest, as `image.tagOrDigest` names an image for good. */
const IMAGE_DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * The log message of a recognition function that failed to start (`@facerec/lambda-runtime`'s Lambda entry;
 * a test checks it is still the one logged), which the start-failure alarm counts.
 */
export const RECOGNITION_START_FAILURE = 'the recognition function failed to start';
/** The metric the start-failure metric filter writes, with dimension `FunctionName`. */
export const START_FAILURE_METRIC = Object.freeze({
  namespace: PIPELINE_METRICS.namespace,
  metricName: 'StartFailures',
});

/** Receives before a message moves to its dead-letter queue. */
export const MAX_RECEIVE_COUNT = 5;
/**
 * Request-queue visibility timeout as a multiple of the recognition timeout, plus the batching window. AWS
 * recommends ≥ 6× the function timeout plus `MaximumBatchingWindowInSeconds` for SQS event sources: the poller
 * may hold a message for a whole batching window plus retries of a throttled invocation before the function even
 * starts, and a shorter timeout would redeliver in-flight messages.
 */
export const VISIBILITY_TIMEOUT_FACTOR = 6;

/** The request queue's visibility timeout: {@link VISIBILITY_TIMEOUT_FACTOR} × recognition timeout + batching window. */
function requestVisibilitySeconds(
  p: Pick<ResolvedPipelineProps, 'recognition' | 'maxBatchingWindowSeconds'>,
) {
  return p.recognition.timeoutSeconds * VISIBILITY_TIMEOUT_FACTOR + p.maxBatchingWindowSeconds;
}

/** Every prop of {@link FaceRecognitionPipelineProps}: others are refused (a typo is not ignored). */
export const KNOWN_PROPS: ReadonlySet<string> = new Set<string>([
  'imageDirectory',
  'dockerFile',
  'buildArgs',
  'image',
  'gallery',
  'architecture',
  'alarmEmail',
  'alarmTopic',
  'galleryBucket',
  'galleryRefreshSeconds',
  'galleryVersionRetentionDays',
  'registry',
  'provider',
  'embedder',
  'weights',
  'precision',
  'calibration',
  'galleryPath',
  'modelCacheDir',
  'detection',
  'recognition',
  'batchSize',
  'maxBatchingWindowSeconds',
  'maxConcurrency',
  'functionUrlAuth',
  'alarms',
  'dashboard',
  'logRetention',
  'removalPolicy',
  'replyQueues',
]);
const FUNCTION_KEYS = new Set(['memorySize', 'timeoutSeconds', 'reservedConcurrency']);
const ALARM_KEYS = new Set([
  'dlqDepth',
  'requestQueueAgeSeconds',
  'uncollectedAnswerAgeSeconds',
  'functionErrors',
  'functionUrl5xx',
  'latencyMs',
  'detectionThrottles',
]);

/** One cdk-nag suppression: the rule, why it does not apply, and optionally which findings it covers. */
interface NagSuppression {
  readonly id: string;
  readonly reason: string;
  readonly appliesTo?: readonly string[];
}

/**
 * Suppresses cdk-nag rules on a construct and every CloudFormation resource under it, through the
 * `cdk_nag.rules_to_suppress` resource metadata that cdk-nag documents for templates. Writing the metadata
 * directly keeps cdk-nag a dev-only tool: users of the construct need not install it.
 */
function suppressNag(scope: Construct, suppressions: readonly NagSuppression[]): void {
  for (const child of scope.node.findAll()) {
    if (!CfnResource.isCfnResource(child)) continue;
    const existing = (child.getMetadata('cdk_nag') ?? {}) as { rules_to_suppress?: NagSuppression[] };
    child.addMetadata('cdk_nag', {
      ...existing,
      rules_to_suppress: [...(existing.rules_to_suppress ?? []), ...suppressions],
    });
  }
}

/** Repository root, from `packages/cdk/{src,dist}/pipeline.*`. */
const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface ResolvedFunction {
  readonly memorySize: number;
  readonly timeoutSeconds: number;
  /** `false`: none reserved. */
  readonly reservedConcurrency: number | false;
}

/** {@link FaceRecognitionPipelineProps} with every default applied: what {@link resolvePipelineProps} returns. */
export interface ResolvedPipelineProps {
  /** How the image is obtained: built from a facerec checkout, or a prebuilt one. */
  readonly source:
    | {
        readonly kind: 'build';
        readonly imageDirectory: string;
        readonly dockerFile: string;
        readonly buildArgs: Readonly<Record<string, string>>;
      }
    | { readonly kind: 'prebuilt'; readonly image: PipelineImage };
  /** The gallery checked at synth (absolute), or undefined when none was given with a prebuilt image. */
  readonly gallery: string | undefined;
  readonly architecture: 'x86_64' | 'arm64';
  readonly alarmEmail: string | undefined;
  readonly galleryBucket: boolean;
  readonly galleryRefreshSeconds: number;
  readonly galleryVersionRetentionDays: number;
  readonly provider: string;
  /** The embedder with its options, validated by the registry. */
  readonly embedder: ResolvedEmbedder;
  readonly weights: string | undefined;
  readonly precision: 'fp32' | 'int8';
  /** The calibration folder relative to the build context (int8 images built here). */
  readonly calibration: string | undefined;
  readonly galleryPath: string;
  readonly modelCacheDir: string;
  readonly detection: ResolvedFunction;
  readonly recognition: ResolvedFunction;
  readonly batchSize: number;
  readonly maxBatchingWindowSeconds: number;
  readonly maxConcurrency: number;
  readonly functionUrlAuth: 'AWS_IAM' | 'NONE';
  readonly alarms: Required<PipelineAlarmThresholds>;
  readonly dashboard: boolean;
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  readonly replyQueues: readonly string[];
}

/** A base image older than this (by its dated tag) makes synth warn: AWS publishes patched releases often. */
export const BASE_IMAGE_MAX_AGE_DAYS = 90;

/**
 * Ids of the construct's synth warnings, to acknowledge one on purpose:
 * `Annotations.of(stack).acknowledgeWarning(PIPELINE_WARNINGS.baseImageAge, 'why')`.
 */
export const PIPELINE_WARNINGS = Object.freeze({
  /** The Dockerfile's dated base image is more than {@link BASE_IMAGE_MAX_AGE_DAYS} days old. */
  baseImageAge: '@facerec/cdk:baseImageAge',
  /** A prebuilt image without the `gallery` prop: the embedder match could not be checked. */
  noGalleryProp: '@facerec/cdk:noGalleryProp',
  /** `functionUrlAuth: 'NONE'`: the detection Function URL is public. */
  publicFunctionUrl: '@facerec/cdk:publicFunctionUrl',
  /** A prebuilt image named by a tag, which can be moved to another image, rather than its digest. */
  mutableImageTag: '@facerec/cdk:mutableImageTag',
  /** A `FACEREC_` variable set on the function that does not read it (`FACEREC_THRESHOLD` on detection). */
  unreadVariable: '@facerec/cdk:unreadVariable',
});

/**
 * The age of the base image a Dockerfile's `ARG NODE_IMAGE=` default names, from its dated tag
 * (`public.ecr.aws/lambda/nodejs:22.2025.08.04.11`); undefined when the Dockerfile names none, or a digest.
 */
export function baseImageAgeDays(
  dockerFile: string,
  now = Date.now(),
): { image: string; days: number } | undefined {
  let text: string;
  try {
    text = readFileSync(dockerFile, 'utf8');
  } catch {
    return undefined;
  }
  const match = /^ARG NODE_IMAGE=(\S*:\d+\.(\d{4})\.(\d{2})\.(\d{2})\S*)\s*$/m.exec(text);
  if (!match) return undefined;
  const released = Date.UTC(Number(match[2]), Number(match[3]) - 1, Number(match[4]));
  return { image: match[1]!, days: Math.floor((now - released) / 86_400_000) };
}

/** Merges props over {@link PIPELINE_DEFAULTS} and validates them; every problem is named at once. */
export function resolvePipelineProps(props: FaceRecognitionPipelineProps = {}): ResolvedPipelineProps {
  // A JavaScript app (or JSON context) can pass anything: null would fail below as a TypeError.
  if (props === null || typeof props !== 'object' || Array.isArray(props))
    throw new FaceRecognitionPipelineError([
      `props must be an object, got ${props === null ? 'null' : typeof props}`,
    ]);
  const problems: string[] = [];
  const unknown = (obj: object | undefined, known: ReadonlySet<string>, where: string) => {
    for (const key of Object.keys(obj ?? {}))
      if (!known.has(key)) problems.push(`unknown prop ${where}${key}`);
  };
  unknown(props, KNOWN_PROPS, '');
  unknown(props.detection, FUNCTION_KEYS, 'detection.');
  unknown(props.recognition, FUNCTION_KEYS, 'recognition.');
  unknown(props.alarms, ALARM_KEYS, 'alarms.');

  /** Checks an integer prop; true when it is one, in range. `why` follows the message of a bad one. */
  const int = (name: string, value: number, min: number, max: number, why = ''): boolean => {
    if (Token.isUnresolved(value)) problems.push(`${name} must be a concrete number, not a token`);
    else if (!Number.isInteger(value) || value < min || value > max)
      problems.push(
        `${name} must be an integer in [${min}, ${max}], got ${typeof value === 'number' ? value : JSON.stringify(value)}${why}`,
      );
    else return true;
    return false;
  };
  const oneOf = <T extends string>(name: string, value: T, choices: readonly string[]) => {
    if (!choices.includes(value))
      problems.push(`${name} must be one of ${choices.join(', ')}, got "${value}"`);
  };
  const nonEmpty = (name: string, value: string) => {
    if (typeof value !== 'string' || value.length === 0) problems.push(`${name} must be a non-empty string`);
  };
  // As the functions check their variables (FACEREC_WEIGHTS, FACEREC_GALLERY, FACEREC_CACHE_DIR): a value
  // they would refuse at every start is refused at synth.
  const noSpacesAround = (name: string, value: string) => {
    if (typeof value === 'string' && value.length > 0 && value !== value.trim())
      problems.push(`${name} has spaces at the start or end: "${value}"`);
  };
  const pathInImage = (name: string, value: string) => {
    if (typeof value !== 'string' || !value.startsWith('/'))
      problems.push(`${name} must be an absolute path inside the image, got "${value}"`);
    else noSpacesAround(name, value);
  };
  /** Whether each function's reservedConcurrency passed its check (maxConcurrency's depends on it). */
  const reservedOk = { detection: false, recognition: false };
  const fn = (name: 'detection' | 'recognition'): ResolvedFunction => {
    const merged = { ...PIPELINE_DEFAULTS[name], ...props[name] };
    int(`${name}.memorySize`, merged.memorySize, 128, 10240);
    int(`${name}.timeoutSeconds`, merged.timeoutSeconds, 1, 900);
    // false: none reserved. Recognition needs 2 or more: its SQS event source runs at least 2 invocations at
    // once (MaximumConcurrency cannot go below 2), and a function reserved 1 throttles the second.
    reservedOk[name] =
      merged.reservedConcurrency === false ||
      (name === 'recognition'
        ? int(
            'recognition.reservedConcurrency',
            merged.reservedConcurrency,
            2,
            10000,
            ' (or false to reserve none): its SQS event source runs at least 2 invocations at once (the ' +
              'least maxConcurrency SQS allows), and a function reserved fewer would throttle the rest, their ' +
              'messages going back to the queue and on to the dead-letter queue',
          )
        : int(
            `${name}.reservedConcurrency`,
            merged.reservedConcurrency,
            1,
            10000,
            ' (or false to reserve none)',
          ));
    return merged;
  };

  const detection = fn('detection');
  const recognition = fn('recognition');
  const registry = props.registry ?? MODELS;

  // The image: built from a facerec checkout, or prebuilt.
  const prebuilt = props.image !== undefined;
  if (prebuilt) {
    for (const key of ['imageDirectory', 'dockerFile', 'buildArgs', 'calibration'] as const)
      if (props[key] !== undefined)
        problems.push(`${key} cannot be combined with image (a prebuilt image is not built)`);
  }
  // Settings of the gallery bucket mean nothing without one: a gallery baked into the image never changes.
  if (!(props.galleryBucket ?? PIPELINE_DEFAULTS.galleryBucket)) {
    for (const key of ['galleryRefreshSeconds', 'galleryVersionRetentionDays'] as const)
      if (props[key] !== undefined)
        problems.push(
          `${key} applies to the gallery bucket only (galleryBucket: true); the gallery baked into the image never changes`,
        );
  }
  const imageDirectory = path.resolve(props.imageDirectory ?? REPOSITORY_ROOT);
  const dockerFile = props.dockerFile ?? PIPELINE_DEFAULTS.dockerFile;
  const noDockerFile = !prebuilt && !existsSync(path.join(imageDirectory, dockerFile));
  if (noDockerFile) {
    problems.push(
      // A dockerFile named in a folder that holds facerec's own: a typo in the name, not the wrong folder.
      props.dockerFile !== undefined && existsSync(path.join(imageDirectory, PIPELINE_DEFAULTS.dockerFile))
        ? `dockerFile: no ${dockerFile} in ${imageDirectory}`
        : props.imageDirectory === undefined
          ? `no facerec Dockerfile at ${path.join(imageDirectory, dockerFile)}: installed from npm, @facerec/cdk ` +
            'holds no facerec sources to build the image from. Pass imageDirectory (the path of a facerec ' +
            'checkout) or image (a prebuilt image in ECR); see the deploy guide'
          : `imageDirectory: no ${dockerFile} in ${imageDirectory}`,
    );
  }

  // The gallery, read now: a missing one would fail the image build, a mismatched one every request.
  // Without a build context there is no default gallery to name (it would be one inside node_modules).
  const galleryFile =
    props.gallery !== undefined
      ? path.resolve(props.gallery)
      : prebuilt || noDockerFile
        ? undefined
        : path.join(imageDirectory, PIPELINE_DEFAULTS.gallery);
  let gallery: GalleryFileSummary | undefined;
  if (props.gallery !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(props.gallery)) {
    // A URL would be read as a relative path ("s3:/bucket/…") and said not to exist.
    problems.push(
      `gallery must be a local gallery file (synth reads it and the image holds it), got the URL "${props.gallery.slice(0, 200)}"; ` +
        'for a gallery in S3 that changes without a redeploy, set galleryBucket: true (see the deploy guide)',
    );
  } else if (galleryFile !== undefined) {
    if (!existsSync(galleryFile)) {
      problems.push(
        `gallery: ${galleryFile} does not exist. Enroll one first: npx facerec enroll <people-folder> --out ` +
          `${galleryFile} (see the deploy guide)`,
      );
    } else if (!prebuilt && path.relative(imageDirectory, galleryFile).startsWith('..')) {
      problems.push(
        `gallery: ${galleryFile} must lie inside imageDirectory (${imageDirectory}), the image's build context`,
      );
    } else if (!prebuilt && leftOutOfContext(imageDirectory, galleryFile)) {
      problems.push(`gallery: ${galleryFile} ${LEFT_OUT}`);
    } else {
      try {
        gallery = readGallerySummary(readFileSync(galleryFile, 'utf8'), galleryFile);
      } catch (error) {
        problems.push(`gallery: ${(error as Error).message}`);
      }
    }
  }

  // The embedder: the one named, else the gallery's, else the registry's default. Both go through the
  // registry that also validates FACEREC_EMBEDDER in the functions and the EMBEDDER build argument in the
  // image build, so a deploy cannot disagree with itself.
  let embedder: ResolvedEmbedder = registry.resolveEmbedder(registry.defaults.embedder);
  try {
    embedder =
      props.embedder === undefined && gallery !== undefined
        ? registry.embedderForModelId(gallery.embedder.modelId, { weights: props.weights })
        : registry.resolveEmbedder(props.embedder ?? registry.defaults.embedder, { weights: props.weights });
  } catch (error) {
    problems.push(`embedder: ${(error as Error).message}`);
  }
  try {
    if (gallery && problems.every((p) => !p.startsWith('embedder:')))
      assertGalleryFitsEmbedder(gallery, embedder);
  } catch (error) {
    problems.push(`embedder: gallery ${gallery!.source}: ${(error as Error).message}`);
  }
  // int8: the calibration folder, checked now and passed to the build relative to its context.
  const precision = props.precision ?? 'fp32';
  const provider = props.provider ?? registry.defaults.provider;
  oneOf('precision', precision, EMBEDDER_PRECISIONS);
  let calibration: string | undefined;
  if (precision === 'int8' && provider !== 'onnx')
    problems.push(`precision "int8" needs the onnx provider, got "${provider}"`);
  if (props.calibration !== undefined && precision !== 'int8')
    problems.push('calibration is for precision "int8" only');
  if (precision === 'int8' && !prebuilt) {
    const folder = props.calibration === undefined ? undefined : path.resolve(props.calibration);
    // Without a folder, the image builds the int8 graph from the ranges that ship for the embedder's weights,
    // where some do (the registry says which).
    if (folder === undefined) {
      if (embedder.description.int8Calibration === undefined)
        problems.push(
          `precision "int8" needs calibration for ${embedder.description.id} (no int8 ranges ship for it): a folder of face images inside imageDirectory to calibrate on`,
        );
    } else if (!existsSync(folder)) problems.push(`calibration: ${folder} does not exist`);
    else if (!statSync(folder).isDirectory())
      problems.push(`calibration: ${folder} is a file; give the folder of face images it is in`);
    else if (path.relative(imageDirectory, folder).startsWith('..'))
      problems.push(
        `calibration: ${folder} must lie inside imageDirectory (${imageDirectory}), the image's build context`,
      );
    else if (leftOutOfContext(imageDirectory, folder, /\.(jpe?g|png|webp)$/i))
      problems.push(`calibration: ${folder} (or an image in it) ${LEFT_OUT}`);
    else calibration = path.relative(imageDirectory, folder).split(path.sep).join('/');
  }
  const resolved: ResolvedPipelineProps = {
    source: prebuilt
      ? { kind: 'prebuilt', image: props.image! }
      : { kind: 'build', imageDirectory, dockerFile, buildArgs: props.buildArgs ?? {} },
    gallery: gallery ? galleryFile : undefined,
    architecture: props.architecture ?? PIPELINE_DEFAULTS.architecture,
    alarmEmail: props.alarmEmail,
    galleryBucket: props.galleryBucket ?? PIPELINE_DEFAULTS.galleryBucket,
    galleryRefreshSeconds: props.galleryRefreshSeconds ?? PIPELINE_DEFAULTS.galleryRefreshSeconds,
    galleryVersionRetentionDays:
      props.galleryVersionRetentionDays ?? PIPELINE_DEFAULTS.galleryVersionRetentionDays,
    provider,
    embedder,
    weights: embedder.settings.weights,
    precision,
    calibration,
    galleryPath: props.galleryPath ?? PIPELINE_DEFAULTS.galleryPath,
    modelCacheDir: props.modelCacheDir ?? PIPELINE_DEFAULTS.modelCacheDir,
    detection,
    recognition,
    batchSize: props.batchSize ?? PIPELINE_DEFAULTS.batchSize,
    maxBatchingWindowSeconds: props.maxBatchingWindowSeconds ?? PIPELINE_DEFAULTS.maxBatchingWindowSeconds,
    // Default: as many as recognition may run (checked ≥ 2 above), or the default reservation without one.
    maxConcurrency:
      props.maxConcurrency ??
      Math.min(
        1000,
        typeof recognition.reservedConcurrency === 'number' && reservedOk.recognition
          ? recognition.reservedConcurrency
          : PIPELINE_DEFAULTS.recognition.reservedConcurrency,
      ),
    functionUrlAuth: props.functionUrlAuth ?? PIPELINE_DEFAULTS.functionUrlAuth,
    alarms: { ...PIPELINE_DEFAULTS.alarms, ...props.alarms },
    dashboard: props.dashboard ?? PIPELINE_DEFAULTS.dashboard,
    logRetention: props.logRetention ?? PIPELINE_DEFAULTS.logRetention,
    removalPolicy: props.removalPolicy ?? PIPELINE_DEFAULTS.removalPolicy,
    replyQueues: props.replyQueues ?? PIPELINE_DEFAULTS.replyQueues,
  };

  if (prebuilt) {
    const tagOrDigest = props.image!.tagOrDigest;
    nonEmpty('image.tagOrDigest', tagOrDigest);
    // A placeholder left in (`sha256:…`) or a digest cut short failed only at deploy; a tag is the registry's
    // grammar (up to 128 letters, digits, `_`, `.`, `-`, not starting with `.` or `-`).
    if (typeof tagOrDigest === 'string' && tagOrDigest.length > 0 && !Token.isUnresolved(tagOrDigest)) {
      const shown = JSON.stringify(tagOrDigest.slice(0, 80));
      if (tagOrDigest.includes(':')) {
        if (!IMAGE_DIGEST.test(tagOrDigest))
          problems.push(
            `image.tagOrDigest ${shown} is no image digest: sha256: and 64 lowercase hexadecimal digits`,
          );
      } else if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tagOrDigest)) {
        problems.push(
          `image.tagOrDigest ${shown} is no image tag (up to 128 letters, digits, _ . -, not starting with . or -) or digest (sha256:<64 hex digits>)`,
        );
      }
    }
  }
  oneOf('architecture', resolved.architecture, ['x86_64', 'arm64']);
  if (resolved.architecture === 'arm64' && resolved.provider !== 'onnx')
    problems.push(
      `architecture arm64 is supported with the onnx provider only (provider "${resolved.provider}": ` +
        "TensorFlow.js's wasm backend was not checked on arm64)",
    );
  // A string "false" (a context value passed on) would turn them on.
  for (const key of ['dashboard', 'galleryBucket'] as const)
    if (typeof resolved[key] !== 'boolean')
      problems.push(`${key} must be true or false, got ${JSON.stringify(resolved[key])}`);
  // CloudWatch Logs takes only its own retention periods; another number fails the deploy, not the synth.
  if (
    !Object.values(logs.RetentionDays).some(
      (days) => typeof days === 'number' && days === resolved.logRetention,
    )
  )
    problems.push(
      `logRetention must be a logs.RetentionDays value (days: 1, 3, 5, 7, 14, 30, … 3653, or INFINITE), got ${JSON.stringify(resolved.logRetention)}`,
    );
  if (!(Object.values(RemovalPolicy) as unknown[]).includes(resolved.removalPolicy))
    problems.push(
      `removalPolicy must be a RemovalPolicy (${Object.keys(RemovalPolicy).join(', ')}), got ${JSON.stringify(resolved.removalPolicy)}`,
    );
  // The mirror is read by the image build (COPY from its context): a path outside the context fails the build,
  // at deploy.
  const mirror = props.buildArgs?.FACEREC_MODELS_MIRROR;
  if (mirror !== undefined && !prebuilt) {
    const folder = typeof mirror === 'string' ? path.resolve(imageDirectory, mirror) : '';
    if (
      typeof mirror !== 'string' ||
      path.isAbsolute(mirror) ||
      path.relative(imageDirectory, folder).startsWith('..') ||
      !existsSync(folder) ||
      !statSync(folder).isDirectory() ||
      !readdirSync(folder).some((f) => f.endsWith('.pt'))
    )
      problems.push(
        `buildArgs.FACEREC_MODELS_MIRROR must be a folder inside imageDirectory (${imageDirectory}), given relative to it (the image's build context), holding the upstream .pt files; got ${JSON.stringify(String(mirror).slice(0, 100))}`,
      );
    else if (leftOutOfContext(imageDirectory, folder, /\.pt$/))
      problems.push(`buildArgs.FACEREC_MODELS_MIRROR: ${folder} (or a checkpoint in it) ${LEFT_OUT}`);
  }
  if (resolved.alarmEmail !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(resolved.alarmEmail))
    problems.push(`alarmEmail must be an e-mail address, got "${resolved.alarmEmail}"`);
  if (props.weights !== undefined) {
    nonEmpty('weights', props.weights);
    noSpacesAround('weights', props.weights);
  }
  pathInImage('modelCacheDir', resolved.modelCacheDir);
  pathInImage('galleryPath', resolved.galleryPath);
  // What the construct derives from its props goes to the image build too; a build argument of the same name
  // would make the image bake other models than the functions load.
  const derivedArgs: Record<string, string> = {
    PROVIDER: 'provider',
    EMBEDDER: 'embedder',
    WEIGHTS: 'weights',
    PRECISION: 'precision',
    CALIBRATION: 'calibration',
    GALLERY: 'gallery',
  };
  for (const key of Object.keys(props.buildArgs ?? {}).filter((k) => k in derivedArgs))
    problems.push(
      `buildArgs.${key} is set by the construct from its props: use the ${derivedArgs[key]} prop`,
    );
  oneOf('provider', resolved.provider, registry.providerNames);
  oneOf('functionUrlAuth', resolved.functionUrlAuth, ['AWS_IAM', 'NONE']);
  int('batchSize', resolved.batchSize, 1, 10000);
  int('galleryRefreshSeconds', resolved.galleryRefreshSeconds, 1, 86_400);
  int('galleryVersionRetentionDays', resolved.galleryVersionRetentionDays, 1, 3650);
  int('maxBatchingWindowSeconds', resolved.maxBatchingWindowSeconds, 0, 300);
  if (resolved.batchSize > 10 && resolved.maxBatchingWindowSeconds === 0)
    problems.push(`batchSize ${resolved.batchSize} > 10 needs maxBatchingWindowSeconds ≥ 1`);
  // Only a maxConcurrency that was set can be wrong: the default follows recognition.reservedConcurrency.
  if (
    props.maxConcurrency !== undefined &&
    int('maxConcurrency', resolved.maxConcurrency, 2, 1000, " (SQS event sources' range)") &&
    reservedOk.recognition &&
    recognition.reservedConcurrency !== false &&
    resolved.maxConcurrency > recognition.reservedConcurrency
  )
    problems.push(
      `maxConcurrency (${resolved.maxConcurrency}) must be ≤ recognition.reservedConcurrency ` +
        `(${recognition.reservedConcurrency}): the event source would start invocations the function may ` +
        'not run, and throttled messages bounce back to the queue and on to the DLQ',
    );
  int('alarms.dlqDepth', resolved.alarms.dlqDepth, 0, 1_000_000);
  int('alarms.requestQueueAgeSeconds', resolved.alarms.requestQueueAgeSeconds, 1, 1_209_600);
  int('alarms.uncollectedAnswerAgeSeconds', resolved.alarms.uncollectedAnswerAgeSeconds, 60, 345_599);
  int('alarms.functionErrors', resolved.alarms.functionErrors, 1, 1_000_000);
  int('alarms.functionUrl5xx', resolved.alarms.functionUrl5xx, 1, 1_000_000);
  int('alarms.latencyMs', resolved.alarms.latencyMs, 1, 900_000);
  int('alarms.detectionThrottles', resolved.alarms.detectionThrottles, 1, 1_000_000);
  if (!Array.isArray(resolved.replyQueues)) problems.push('replyQueues must be an array of client names');
  else {
    if (resolved.replyQueues.length > MAX_REPLY_QUEUES)
      problems.push(
        `replyQueues: at most ${MAX_REPLY_QUEUES} (their URLs share the functions' 4 KB environment), got ${resolved.replyQueues.length}`,
      );
    const seen = new Set<string>();
    for (const name of resolved.replyQueues) {
      if (typeof name !== 'string' || !/^[A-Za-z][A-Za-z0-9]{0,31}$/.test(name))
        problems.push(
          `replyQueues: ${JSON.stringify(String(name).slice(0, 40))} is not a client name (a letter, then up to 31 letters or digits)`,
        );
      else if (seen.has(name)) problems.push(`replyQueues: "${name}" is named twice`);
      seen.add(name);
    }
  }
  // The request queue's visibility timeout (6× recognition timeout + batching window) must fit SQS's 12 hours.
  if (requestVisibilitySeconds(resolved) > 43_200)
    problems.push(
      'recognition.timeoutSeconds × 6 + maxBatchingWindowSeconds must not exceed 43200 (the SQS visibility maximum)',
    );

  if (problems.length) throw new FaceRecognitionPipelineError(problems);
  return resolved;
}

/**
 * The facerec reference deployment: a detection function behind a Function URL sends one message per face
 * to a request queue; a recognition function consumes it in batches and answers on a response queue. Both
 * functions run the same container image (the repository's root Dockerfile, models baked in) with a
 * different `CMD`.
 *
 * @example
 * ```ts
 * const pipeline = new FaceRecognitionPipeline(stack, 'Faces', {
 *   recognition: { reservedConcurrency: 10 },
 *   maxConcurrency: 10,
 * });
 * pipeline.functionUrl.url; // the detection endpoint
 * ```
 */
export class FaceRecognitionPipeline extends Construct {
  /** The detection function (Function URL). */
  readonly detectionFunction: lambda.DockerImageFunction;
  /** The recognition function (SQS trigger). */
  readonly recognitionFunction: lambda.DockerImageFunction;
  /** The detection Function URL resource. */
  readonly functionUrl: lambda.FunctionUrl;
  /** The detection endpoint (a token until deploy). */
  readonly url: string;
  /** Detection → recognition queue. */
  readonly requestQueue: sqs.Queue;
  /** Answers to the client (to every client whose requests name no reply queue). */
  readonly responseQueue: sqs.Queue;
  /** One reply queue per client named in the `replyQueues` prop, by name (answers to that client only). */
  readonly replyQueues: Readonly<Record<string, sqs.Queue>>;
  /**
   * Remembers which faces were answered, shared by every recognition container (`FACEREC_IDEMPOTENCY_TABLE`):
   * a redelivered SQS message is answered once, not once per container. Partition key `id`; items expire
   * through the table's TTL attribute `expiration`.
   */
  readonly idempotencyTable: dynamodb.Table;
  /** Dead-letter queue of the request queue. */
  readonly requestDeadLetterQueue: sqs.Queue;
  /** Dead-letter queue of the response queue. */
  readonly responseDeadLetterQueue: sqs.Queue;
  /** URL of the request queue. */
  readonly requestQueueUrl: string;
  /** URL of the response queue (pass it to `facerec client --response-queue-url`). */
  readonly responseQueueUrl: string;
  /** The gallery bucket (prop `galleryBucket`), or undefined. */
  readonly galleryBucket: s3.Bucket | undefined;
  /** `s3://<bucket>/gallery.json` when {@link galleryBucket} is set (a token until deploy). */
  readonly galleryUrl: string | undefined;
  /** The topic every alarm notifies (the `alarmTopic` prop, or one the construct created). */
  readonly alarmTopic: sns.ITopic;
  /** Every alarm the construct creates, by purpose. */
  readonly alarms: {
    readonly requestDlqDepth: cloudwatch.Alarm;
    readonly responseDlqDepth: cloudwatch.Alarm;
    readonly requestQueueAge: cloudwatch.Alarm;
    /** Answers waiting in the response queue that no client collects (`uncollectedAnswerAgeSeconds`). */
    readonly uncollectedAnswers: cloudwatch.Alarm;
    readonly detectionErrors: cloudwatch.Alarm;
    readonly recognitionErrors: cloudwatch.Alarm;
    /** 5xx answers of the detection Function URL (`Url5xxCount`): failures detection answers itself. */
    readonly detectionUrl5xx: cloudwatch.Alarm;
    /** Recognition's "failed to start" log lines, through a metric filter on its log group. */
    readonly recognitionStartFailures: cloudwatch.Alarm;
    /** Average latency of an answer on the server: `DetectionLatency` + `AnswerLatency`. */
    readonly latency: cloudwatch.Alarm;
    /** Detection invocations throttled (429 to the client). */
    readonly detectionThrottles: cloudwatch.Alarm;
  };
  /** Per reply queue (prop `replyQueues`), by client name: its answers that the client does not collect. */
  readonly uncollectedReplyAlarms: Readonly<Record<string, cloudwatch.Alarm>>;
  /** The pipeline's dashboard (prop `dashboard`), or undefined. */
  readonly dashboard: cloudwatch.Dashboard | undefined;

  constructor(scope: Construct, id: string, props: FaceRecognitionPipelineProps = {}) {
    super(scope, id);
    const p = resolvePipelineProps(props);

    // Queues: SSE with SQS-owned keys (no KMS key to pay for or grant), TLS-only policies, DLQ after 5 receives.
    const queue = (name: string, visibilityTimeout: Duration | undefined, dlq?: sqs.IQueue) =>
      new sqs.Queue(this, name, {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        removalPolicy: p.removalPolicy,
        retentionPeriod: dlq ? Duration.days(4) : Duration.days(14),
        ...(visibilityTimeout ? { visibilityTimeout } : {}),
        ...(dlq ? { deadLetterQueue: { queue: dlq, maxReceiveCount: MAX_RECEIVE_COUNT } } : {}),
      });
    this.requestDeadLetterQueue = queue('RequestDeadLetterQueue', undefined);
    this.responseDeadLetterQueue = queue('ResponseDeadLetterQueue', undefined);
    this.requestQueue = queue(
      'RequestQueue',
      Duration.seconds(requestVisibilitySeconds(p)),
      this.requestDeadLetterQueue,
    );
    this.responseQueue = queue('ResponseQueue', undefined, this.responseDeadLetterQueue);
    // Reply queues redrive to the response DLQ: one dead-letter queue, and one depth alarm, for every answer.
    this.replyQueues = Object.freeze(
      Object.fromEntries(
        p.replyQueues.map((name) => [
          name,
          queue(`ReplyQueue${name}`, undefined, this.responseDeadLetterQueue),
        ]),
      ),
    );
    const replyQueues = Object.values(this.replyQueues);

    // One image for both functions: the asset is built and pushed once, each function picks its handler by CMD.
    const source = p.source;
    const image = (handler: 'detection' | 'recognition') => {
      const cmd = [`packages/lambda-runtime/dist/lambda/${handler}.handler`];
      if (source.kind === 'prebuilt') {
        return lambda.DockerImageCode.fromEcr(source.image.repository, {
          tagOrDigest: source.image.tagOrDigest,
          cmd,
        });
      }
      return lambda.DockerImageCode.fromImageAsset(source.imageDirectory, {
        file: source.dockerFile,
        platform: p.architecture === 'arm64' ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
        buildArgs: {
          PROVIDER: p.provider,
          EMBEDDER: p.embedder.description.id,
          ...(p.weights === undefined ? {} : { WEIGHTS: p.weights }),
          ...(p.precision === 'int8' ? { PRECISION: 'int8' } : {}),
          ...(p.calibration === undefined ? {} : { CALIBRATION: p.calibration }),
          // Checked at synth to lie inside the build context; the build reads it from there.
          GALLERY: path.relative(source.imageDirectory, p.gallery!).split(path.sep).join('/'),
          ...source.buildArgs,
        },
        cmd,
      });
    };
    if (source.kind === 'build' && source.buildArgs.NODE_IMAGE === undefined) {
      const age = baseImageAgeDays(path.join(source.imageDirectory, source.dockerFile));
      if (age !== undefined && age.days > BASE_IMAGE_MAX_AGE_DAYS)
        Annotations.of(this).addWarningV2(
          PIPELINE_WARNINGS.baseImageAge,
          `FaceRecognitionPipeline: the Dockerfile's base image ${age.image} is ${age.days} days old: a function ` +
            'built from it gets no operating-system or Node.js security fixes published since. Pin a newer dated ' +
            "tag (ARG NODE_IMAGE, or buildArgs: { NODE_IMAGE: '…' }); see the deploy guide's \"The base image\".",
        );
    }
    // Lambda pins a tag to the digest it names when a function is created or updated: which image runs then
    // depends on when each function last was. A value known only at deploy (a parameter) is not judged.
    const tag = source.kind === 'prebuilt' ? source.image.tagOrDigest : undefined;
    if (tag !== undefined && !Token.isUnresolved(tag) && !IMAGE_DIGEST.test(tag))
      Annotations.of(this).addWarningV2(
        PIPELINE_WARNINGS.mutableImageTag,
        `FaceRecognitionPipeline: the prebuilt image is named by the tag "${tag.slice(0, 128)}": Lambda runs the ` +
          'image the tag named when each function was last created or updated, so after a push the two functions ' +
          'can run different images, a deploy that changes nothing else picks up no new push, and a later update ' +
          "takes whatever the tag names then, unchecked by synth. Name it by its digest (tagOrDigest: 'sha256:…').",
      );
    if (p.gallery === undefined)
      Annotations.of(this).addWarningV2(
        PIPELINE_WARNINGS.noGalleryProp,
        'FaceRecognitionPipeline: a prebuilt image and no gallery prop, so synth could not check that the ' +
          "image's gallery was enrolled with the functions' embedder. Pass gallery: '<the same file>'.",
      );
    // The idempotency records: small, short-lived (an hour), read and written once per face.
    this.idempotencyTable = new dynamodb.Table(this, 'IdempotencyTable', {
      partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: 'expiration',
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: p.removalPolicy,
    });
    const environment: Record<string, string> = {
      FACEREC_PROVIDER: p.provider,
      FACEREC_EMBEDDER: p.embedder.description.id,
      // Both resolve the embedder (detection for its crop policy): a plugin's options may require weights.
      ...(p.weights === undefined ? {} : { FACEREC_WEIGHTS: p.weights }),
      FACEREC_REQUEST_QUEUE_URL: this.requestQueue.queueUrl,
      FACEREC_RESPONSE_QUEUE_URL: this.responseQueue.queueUrl,
      ...(replyQueues.length
        ? {
            FACEREC_REPLY_QUEUES: Fn.join(
              ',',
              replyQueues.map((q) => q.queueUrl),
            ),
          }
        : {}),
      FACEREC_CACHE_DIR: p.modelCacheDir,
      NODE_OPTIONS: '--enable-source-maps',
    };
    // Read by recognition alone (FUNCTION_VARIABLES): set on detection, they would only suggest it uses them.
    const recognitionOnly: Record<string, string> = {
      FACEREC_PRECISION: p.precision,
      FACEREC_GALLERY: p.galleryPath,
    };
    const logGroups: Partial<Record<'detection' | 'recognition', logs.LogGroup>> = {};
    const fn = (name: 'Detection' | 'Recognition', handler: 'detection' | 'recognition') => {
      const settings = p[handler];
      const logGroup = new logs.LogGroup(this, `${name}Logs`, {
        retention: p.logRetention,
        removalPolicy: p.removalPolicy,
      });
      logGroups[handler] = logGroup;
      // Its own role, allowed to write to its own log group only (the AWS-managed AWSLambdaBasicExecutionRole
      // lets a function create any log group and write to every one in the account).
      const role = new iam.Role(this, `${name}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `facerec ${handler} function`,
      });
      // logs:CreateLogStream and logs:PutLogEvents on the group's ARN, whose ":*" covers its streams.
      logGroup.grantWrite(role);
      return new lambda.DockerImageFunction(this, `${name}Function`, {
        role,
        description: `facerec ${handler} (${p.provider}, ${p.embedder.description.modelId(p.embedder.options)})`,
        code: image(handler),
        architecture: p.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
        memorySize: settings.memorySize,
        timeout: Duration.seconds(settings.timeoutSeconds),
        ...(settings.reservedConcurrency === false
          ? {}
          : { reservedConcurrentExecutions: settings.reservedConcurrency }),
        environment: handler === 'recognition' ? { ...environment, ...recognitionOnly } : environment,
        logGroup,
        tracing: lambda.Tracing.ACTIVE,
      });
    };
    this.detectionFunction = fn('Detection', 'detection');
    this.recognitionFunction = fn('Recognition', 'recognition');

    // Least privilege. Detection sends faces to the request queue, and answers frames with no face straight
    // on the response queue (nothing for recognition to do), so it may send to both and read neither.
    this.requestQueue.grantSendMessages(this.detectionFunction);
    this.responseQueue.grantSendMessages(this.detectionFunction);
    // Recognition consumes the request queue (the event source grants receive/delete/visibility/attributes
    // on it alone) and sends its answers to the response queue.
    this.recognitionFunction.addEventSource(
      new SqsEventSource(this.requestQueue, {
        batchSize: p.batchSize,
        maxBatchingWindow: Duration.seconds(p.maxBatchingWindowSeconds),
        reportBatchItemFailures: true,
        maxConcurrency: p.maxConcurrency,
      }),
    );
    this.responseQueue.grantSendMessages(this.recognitionFunction);
    // Both functions answer on a client's reply queue when its request names one (the allow-list above).
    for (const q of replyQueues) {
      q.grantSendMessages(this.detectionFunction);
      q.grantSendMessages(this.recognitionFunction);
    }
    // Recognition only: the three item operations the idempotency store uses, on this table alone.
    this.recognitionFunction.addEnvironment('FACEREC_IDEMPOTENCY_TABLE', this.idempotencyTable.tableName);
    this.idempotencyTable.grant(
      this.recognitionFunction,
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    );

    const authType =
      p.functionUrlAuth === 'NONE' ? lambda.FunctionUrlAuthType.NONE : lambda.FunctionUrlAuthType.AWS_IAM;
    this.functionUrl = this.detectionFunction.addFunctionUrl({ authType });
    if (p.functionUrlAuth === 'NONE')
      Annotations.of(this).addWarningV2(
        PIPELINE_WARNINGS.publicFunctionUrl,
        'FaceRecognitionPipeline: functionUrlAuth is NONE, so the detection Function URL is public: anyone ' +
          'who finds it can run inference on your account. Use AWS_IAM (the default) outside throwaway demos.',
      );
    this.url = this.functionUrl.url;
    this.requestQueueUrl = this.requestQueue.queueUrl;
    this.responseQueueUrl = this.responseQueue.queueUrl;

    // Every alarm notifies one topic (and, from alarmEmail, a mailbox), when it fires and when it clears.
    this.alarmTopic =
      props.alarmTopic ??
      new sns.Topic(this, 'AlarmTopic', { displayName: 'facerec alarms', enforceSSL: true });
    if (p.alarmEmail !== undefined) {
      suppressNag(this.alarmTopic.addSubscription(new EmailSubscription(p.alarmEmail)), [
        {
          id: 'Serverless-SNSRedrivePolicy',
          reason:
            'A mailbox for alarm notifications: a message its mail server refuses would sit unread in a ' +
            'dead-letter queue as well, and the alarm state it announced stays in CloudWatch (the alarms ' +
            'notify again when they clear). Subscribe a queue or endpoint with its own redrive policy to ' +
            'alarmTopic for delivery that must not be lost.',
        },
      ]);
    }
    const notify = new SnsAction(this.alarmTopic);
    const alarm = (name: string, metric: cloudwatch.IMetric, threshold: number, over = false) => {
      const created = new cloudwatch.Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: over
          ? cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
          : cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `facerec ${name}`,
      });
      created.addAlarmAction(notify);
      created.addOkAction(notify);
      return created;
    };
    const period = Duration.minutes(5);
    const det = PIPELINE_METRICS.detection;
    const rec = PIPELINE_METRICS.recognition;
    /** One of the metrics a function's Lambda entry publishes (`PIPELINE_METRICS`), per 5 minutes. */
    const ownMetric =
      (fn: lambda.IFunction, service: string) => (metricName: string, statistic: string, label?: string) =>
        new cloudwatch.Metric({
          namespace: PIPELINE_METRICS.namespace,
          metricName,
          // As the entry writes them: the service, and the function's name (two pipelines stay apart).
          dimensionsMap: { service, FunctionName: fn.functionName },
          statistic,
          period,
          ...(label ? { label } : {}),
        });
    const detectionMetric = ownMetric(this.detectionFunction, det.service);
    const recognitionMetric = ownMetric(this.recognitionFunction, rec.service);
    // An answer's latency on the server: the frame's detection, then its face's wait in the request queue and
    // recognition. A period with frames but no face (no answer latency) counts detection alone.
    const latency = new cloudwatch.MathExpression({
      expression: 'FILL(detection, 0) + FILL(answer, 0)',
      usingMetrics: {
        detection: detectionMetric(det.frameLatency, 'Average'),
        answer: recognitionMetric(rec.answerLatency, 'Average'),
      },
      period,
      label: 'answer latency on the server, average (ms)',
    });
    this.alarms = {
      requestDlqDepth: alarm(
        'RequestDlqDepthAlarm',
        this.requestDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period,
          statistic: 'Maximum',
        }),
        p.alarms.dlqDepth,
        true,
      ),
      responseDlqDepth: alarm(
        'ResponseDlqDepthAlarm',
        this.responseDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period,
          statistic: 'Maximum',
        }),
        p.alarms.dlqDepth,
        true,
      ),
      requestQueueAge: alarm(
        'RequestQueueAgeAlarm',
        this.requestQueue.metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum' }),
        p.alarms.requestQueueAgeSeconds,
      ),
      uncollectedAnswers: alarm(
        'UncollectedAnswersAlarm',
        this.responseQueue.metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum' }),
        p.alarms.uncollectedAnswerAgeSeconds,
      ),
      detectionErrors: alarm(
        'DetectionErrorsAlarm',
        this.detectionFunction.metricErrors({ period, statistic: 'Sum' }),
        p.alarms.functionErrors,
      ),
      recognitionErrors: alarm(
        'RecognitionErrorsAlarm',
        this.recognitionFunction.metricErrors({ period, statistic: 'Sum' }),
        p.alarms.functionErrors,
      ),
      // Detection answers its own failures (503 when it failed to start or cannot queue a frame, 500), so
      // they are no Lambda errors: the Function URL's count of 5xx answers sees them, and timeouts too.
      // Dimension FunctionName: the URL's requests to $LATEST, where the URL points.
      detectionUrl5xx: alarm(
        'DetectionUrl5xxAlarm',
        this.detectionFunction.metric('Url5xxCount', { period, statistic: 'Sum' }),
        p.alarms.functionUrl5xx,
      ),
      // Recognition that failed to start hands every record back (no Lambda error; the DLQ alarm fires only
      // after 5 receives) and logs one line per invocation, counted here.
      recognitionStartFailures: alarm(
        'RecognitionStartFailuresAlarm',
        new logs.MetricFilter(this, 'RecognitionStartFailures', {
          logGroup: logGroups.recognition!,
          filterPattern: logs.FilterPattern.stringValue('$.message', '=', RECOGNITION_START_FAILURE),
          metricNamespace: START_FAILURE_METRIC.namespace,
          metricName: START_FAILURE_METRIC.metricName,
          metricValue: '1',
          // The logger adds the invocation's function name to the line: one series per function, so two
          // pipelines in an account do not share one.
          dimensions: { FunctionName: '$.function_name' },
          unit: cloudwatch.Unit.COUNT,
        }).metric({
          period,
          statistic: 'Sum',
          dimensionsMap: { FunctionName: this.recognitionFunction.functionName },
        }),
        1,
      ),
      latency: alarm('LatencyAlarm', latency, p.alarms.latencyMs),
      // A Function URL answers a throttled invocation 429: frames the client must send again.
      detectionThrottles: alarm(
        'DetectionThrottlesAlarm',
        this.detectionFunction.metricThrottles({ period, statistic: 'Sum' }),
        p.alarms.detectionThrottles,
      ),
    };

    // One alarm per reply queue, not one over all of them: an alarm's metric math takes at most 10 metrics, and
    // replyQueues may name 20 clients. Each names the client whose answers wait.
    this.uncollectedReplyAlarms = Object.freeze(
      Object.fromEntries(
        Object.entries(this.replyQueues).map(([name, q]) => [
          name,
          alarm(
            `UncollectedAnswers${name}Alarm`,
            q.metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum' }),
            p.alarms.uncollectedAnswerAgeSeconds,
          ),
        ]),
      ),
    );

    if (p.dashboard) {
      const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
      const sum = 'Sum';
      const functions = [this.detectionFunction, this.recognitionFunction];
      const named = (fn: lambda.IFunction) => (fn === this.detectionFunction ? 'detection' : 'recognition');
      dashboard.addWidgets(
        new cloudwatch.AlarmStatusWidget({
          title: 'Alarms',
          alarms: [...Object.values(this.alarms), ...Object.values(this.uncollectedReplyAlarms)],
          width: 24,
        }),
      );
      dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Frames per 5 minutes',
          width: 8,
          left: [
            detectionMetric(det.framesAccepted, sum, 'accepted (200)'),
            detectionMetric(det.framesRefused, sum, 'refused (4xx)'),
            detectionMetric(det.framesFailed, sum, 'failed (5xx)'),
            this.detectionFunction.metricThrottles({ period, statistic: sum, label: 'throttled (429)' }),
          ],
        }),
        new cloudwatch.GraphWidget({
          title: 'Faces per 5 minutes',
          width: 8,
          left: [
            detectionMetric(det.facesDetected, sum, 'queued by detection'),
            recognitionMetric(rec.facesAnswered, sum, 'answered'),
            recognitionMetric(rec.facesUnknown, sum, 'answered unknown'),
            recognitionMetric(rec.facesFailed, sum, 'handed back to the queue'),
          ],
        }),
        new cloudwatch.GraphWidget({
          title: 'Latency (ms)',
          width: 8,
          left: [
            latency,
            detectionMetric(det.frameLatency, 'p90', 'detection p90'),
            recognitionMetric(rec.answerLatency, 'p90', 'queue wait + recognition p90'),
            recognitionMetric(rec.batchLatency, 'p90', 'recognition batch p90'),
          ],
          leftAnnotations: [{ value: p.alarms.latencyMs, label: 'latency alarm' }],
        }),
      );
      dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: 'Queues',
          width: 12,
          left: [
            this.requestQueue.metricApproximateNumberOfMessagesVisible({ period, label: 'faces waiting' }),
            this.requestDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period,
              label: 'faces dead-lettered',
            }),
            this.responseDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period,
              label: 'answers dead-lettered',
            }),
          ],
          right: [
            this.requestQueue.metricApproximateAgeOfOldestMessage({ period, label: 'oldest face (s)' }),
            this.responseQueue.metricApproximateAgeOfOldestMessage({ period, label: 'oldest answer (s)' }),
          ],
        }),
        new cloudwatch.GraphWidget({
          title: 'Functions',
          width: 12,
          left: functions.map((fn) =>
            fn.metric('ConcurrentExecutions', {
              period,
              statistic: 'Maximum',
              label: `${named(fn)} instances`,
            }),
          ),
          right: functions.map((fn) =>
            fn.metricDuration({ period, statistic: 'p90', label: `${named(fn)} duration p90 (ms)` }),
          ),
        }),
      );
      this.dashboard = dashboard;
    } else this.dashboard = undefined;

    new CfnOutput(this, 'FunctionUrl', { value: this.url, description: 'facerec detection endpoint' });
    new CfnOutput(this, 'RequestQueueUrl', {
      value: this.requestQueueUrl,
      description: 'facerec request queue',
    });
    // The gallery in S3: recognition may read that one object (and list the bucket, so that a missing object
    // reads as "not found" rather than "access denied"); who may write it is the user's IAM.
    if (p.galleryBucket) {
      const bucket = new s3.Bucket(this, 'GalleryBucket', {
        versioned: true,
        encryption: s3.BucketEncryption.S3_MANAGED,
        enforceSSL: true,
        blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
        objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removalPolicy: RemovalPolicy.RETAIN,
        // Every change to the gallery leaves the previous version behind: a person removed is still in those
        // (face embeddings, personal data) until they expire.
        lifecycleRules: [
          {
            id: 'ExpireReplacedGalleryVersions',
            noncurrentVersionExpiration: Duration.days(p.galleryVersionRetentionDays),
          },
        ],
      });
      this.galleryBucket = bucket;
      this.galleryUrl = `s3://${bucket.bucketName}/gallery.json`;
      this.recognitionFunction.addEnvironment('FACEREC_GALLERY', this.galleryUrl);
      this.recognitionFunction.addEnvironment(
        'FACEREC_GALLERY_REFRESH_SECONDS',
        String(p.galleryRefreshSeconds),
      );
      this.recognitionFunction.addToRolePolicy(
        new iam.PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [bucket.arnForObjects('gallery.json')],
        }),
      );
      // Listing lets S3 answer 404 for a gallery not uploaded yet (without it, 403 "access denied"). No prefix
      // condition: a GetObject carries no s3:prefix, so S3 would find the permission missing all the same. The
      // bucket is the gallery's own: its keys are gallery.json's.
      this.recognitionFunction.addToRolePolicy(
        new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [bucket.bucketArn] }),
      );
      new CfnOutput(this, 'GalleryUrl', {
        value: this.galleryUrl,
        description: 'facerec gallery (facerec gallery add|remove|list <this URL> …)',
      });
    } else {
      this.galleryBucket = undefined;
      this.galleryUrl = undefined;
    }

    new CfnOutput(this, 'ResponseQueueUrl', {
      value: this.responseQueueUrl,
      description: 'facerec response queue (facerec client --response-queue-url)',
    });

    for (const [name, q] of Object.entries(this.replyQueues)) {
      new CfnOutput(this, `ReplyQueueUrl${name}`, {
        value: q.queueUrl,
        description: `facerec reply queue of client ${name} (facerec client --reply-queue-url)`,
      });
    }

    this.suppressNagFindings();

    // What each function will read at start, checked at synth by the same code (addEnvironment included: a
    // FACEREC_THRESHOLD of 5 would have every request answered 503 after the deploy), against what the
    // construct set from its props (its variables as it leaves them, here).
    const registry = props.registry ?? MODELS;
    const functions = [
      [this.detectionFunction, 'detection'],
      [this.recognitionFunction, 'recognition'],
    ] as const;
    for (const [fn, role] of functions) {
      const variables = functionVariables(fn);
      const setByConstruct = new Set(Object.keys(variables));
      const fromProps = Object.fromEntries(
        Object.entries(variables).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
      );
      fn.node.addValidation({ validate: () => environmentProblems(fn, role, registry, fromProps) });
      // Warnings must be added before synthesis validates: an aspect runs then, after the app's addEnvironment.
      Aspects.of(fn).add({
        visit: (node) => {
          if (node !== fn) return;
          for (const warning of unreadVariables(fn, role, setByConstruct))
            Annotations.of(fn).addWarningV2(PIPELINE_WARNINGS.unreadVariable, warning);
        },
      });
    }
  }

  /** cdk-nag findings that do not apply to this design, each with its reason. */
  private suppressNagFindings(): void {
    if (this.galleryBucket) {
      suppressNag(this.galleryBucket, [
        {
          id: 'AwsSolutions-S1',
          reason:
            'One small object read by one function and written by its operators; CloudTrail data events, ' +
            'if the account wants them, record who changed it, and the bucket is versioned.',
        },
      ]);
    }
    suppressNag(this.idempotencyTable, [
      {
        id: 'AwsSolutions-DDB3',
        reason:
          'Point-in-time recovery would back up idempotency records that expire within an hour and can be ' +
          'lost without harm (a lost record means at most one duplicate answer, which carries request_id ' +
          'and face_index for clients to drop).',
      },
      {
        id: 'Serverless-DynamoDBPointInTimeRecovery',
        reason: 'Short-lived idempotency records (TTL one hour); see AwsSolutions-DDB3.',
      },
    ]);
    if (this.alarmTopic instanceof sns.Topic && this.alarmTopic.node.scope === this) {
      suppressNag(this.alarmTopic, [
        {
          id: 'AwsSolutions-SNS2',
          reason:
            'CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed SNS key, and the topic ' +
            'carries alarm state changes only (no images, embeddings or request data); it enforces TLS ' +
            '(AwsSolutions-SNS3). Pass alarmTopic for a topic under a customer-managed key.',
        },
      ]);
    }
    for (const dlq of [this.requestDeadLetterQueue, this.responseDeadLetterQueue]) {
      suppressNag(dlq, [
        {
          id: 'Serverless-SQSRedrivePolicy',
          reason:
            'This queue is itself a dead-letter queue: nothing consumes it automatically, its depth alarm pages ' +
            'an operator, and a redrive from it would only move failed messages further from view.',
        },
      ]);
    }
    for (const fn of [this.detectionFunction, this.recognitionFunction]) {
      // The function's role is its sibling (made above), where CDK's X-Ray statement lands.
      suppressNag(fn.role as iam.Role, [
        {
          id: 'AwsSolutions-IAM5',
          reason:
            'X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions, so the ' +
            'tracing statement CDK adds must use Resource "*".',
          appliesTo: ['Resource::*'],
        },
      ]);
      suppressNag(fn, [
        {
          id: 'Serverless-LambdaDLQ',
          reason:
            'Never invoked asynchronously: detection is invoked synchronously through its Function URL and ' +
            'recognition by an SQS event source, whose failed messages go to the request queue DLQ.',
        },
        {
          id: 'Serverless-LambdaAsyncFailureDestination',
          reason: 'Never invoked asynchronously (Function URL and SQS event source only), so no destination.',
        },
      ]);
    }
    suppressNag(this.recognitionFunction, [
      {
        id: 'Serverless-LambdaEventSourceMappingDestination',
        reason:
          'SQS event source mappings do not support on-failure destinations; failed records return to the ' +
          'request queue and move to its dead-letter queue after 5 receives.',
      },
    ]);
  }
}

const LEFT_OUT =
  "is left out of the image's build context by imageDirectory's .dockerignore: the image build would not find " +
  'it. Move it elsewhere in imageDirectory, or let .dockerignore keep it';

/**
 * Whether the image build's context leaves `target` out: a file, or a folder with every file below it named like
 * `kind` (the images a calibration folder holds, the mirror's checkpoints). CDK stages a Docker asset through the
 * context's `.dockerignore` (Docker's rules), so a gallery under a `test` folder passes every other check here
 * and is missing from the build, which then fails at deploy; CDK's own matcher says it at synth, as CDK applies
 * it (a folder counts as left out only when nothing below it can be kept).
 */
function leftOutOfContext(imageDirectory: string, target: string, kind?: RegExp): boolean {
  const ignoreFile = path.join(imageDirectory, '.dockerignore');
  if (!existsSync(ignoreFile)) return false;
  const patterns = readFileSync(ignoreFile, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const strategy = IgnoreStrategy.docker(imageDirectory, patterns);
  // A link inside the context to a file or folder it leaves out is staged as a link to nothing: its target
  // counts, when it lies in the context too (CDK copies a target outside it).
  const root = realpathSync(imageDirectory);
  const inContext = (p: string): string[] => {
    let real: string;
    try {
      real = realpathSync(p);
    } catch {
      return [p]; // a link to nothing: nothing to build from either way
    }
    const relative = path.relative(root, real);
    return relative.startsWith('..') ? [p] : [p, path.join(imageDirectory, relative)];
  };
  if (kind === undefined) return inContext(target).some((p) => strategy.ignores(p));
  if (inContext(target).some((p) => strategy.completelyIgnores(p))) return true;
  return filesUnder(target, kind).some((file) => inContext(file).some((p) => strategy.ignores(p)));
}

/**
 * The files below `folder` named like `kind`, at most 10,000, leaving out `node_modules` and hidden folders (a
 * calibration folder given as the whole checkout would otherwise be walked file by file).
 */
function filesUnder(folder: string, kind: RegExp): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (found.length >= 10_000) return;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) walk(full);
      } else if (kind.test(entry.name)) found.push(full);
    }
  };
  walk(folder);
  return found;
}

/**
 * Stand-ins for the values CloudFormation fills in at deploy (queue URLs, the table's name, the gallery's S3
 * URL), which synth cannot know: each is checked as a value of its kind would be.
 */
const DEPLOY_TIME_STAND_INS: Readonly<Record<string, string>> = Object.freeze({
  FACEREC_REQUEST_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/requests',
  FACEREC_RESPONSE_QUEUE_URL: 'https://sqs.eu-west-1.amazonaws.com/123456789012/responses',
  FACEREC_REPLY_QUEUES: 'https://sqs.eu-west-1.amazonaws.com/123456789012/replies',
  FACEREC_IDEMPOTENCY_TABLE: 'idempotency-table',
  FACEREC_GALLERY: 's3://gallery-bucket/gallery.json',
});

/** A function's environment variables as CloudFormation will get them (a token resolved to its intrinsic). */
function functionVariables(fn: lambda.Function): Readonly<Record<string, unknown>> {
  const cfn = fn.node.defaultChild as lambda.CfnFunction;
  const resolved = Stack.of(fn).resolve(cfn.environment) as
    | { variables?: Record<string, unknown> }
    | undefined;
  return { ...resolved?.variables };
}

/**
 * The variables only the other function reads, set on `fn` beyond what the construct set (`FACEREC_THRESHOLD`
 * on detection): each changes nothing where it is. Said as synth warnings, since the function still starts.
 */
function unreadVariables(
  fn: lambda.Function,
  role: 'detection' | 'recognition',
  setByConstruct: ReadonlySet<string>,
): string[] {
  const variables = functionVariables(fn);
  const other = role === 'detection' ? 'recognition' : 'detection';
  return FUNCTION_VARIABLES[other]
    .filter((name) => variables[name] !== undefined && !setByConstruct.has(name))
    .map(
      (name) =>
        `FaceRecognitionPipeline: ${name} is set on the ${role} function, and only the ${other} function reads it: set it there`,
    );
}

/**
 * The problems the function's runtime would find in its environment at start (`loadConfig`, the functions'
 * own check), the `FACEREC_` variables it would not read (a misspelt name), and a value the construct set from
 * its props changed afterwards, as synth-time validation errors: a bad value set with `addEnvironment` would
 * otherwise be found after the deploy, by every request.
 */
function environmentProblems(
  fn: lambda.Function,
  role: 'detection' | 'recognition',
  registry: ModelRegistry,
  /**
   * The plain values the construct set from its props (the image was built, the gallery checked, for these).
   * Values that reference other resources are left out: their logical ids may change after construction
   * (`overrideLogicalId`), which changes no value the props chose.
   */
  fromProps: Readonly<Record<string, string>>,
): string[] {
  const variables = functionVariables(fn);
  const env: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(variables)) {
    env[name] = typeof value === 'string' ? value : DEPLOY_TIME_STAND_INS[name];
  }
  const problems: string[] = [];
  const where = `the ${role} function's environment`;
  for (const [name, value] of Object.entries(fromProps)) {
    if (name.startsWith('FACEREC_') && variables[name] !== value) {
      problems.push(
        // The value is not repeated: FACEREC_GALLERY may be a database URL with its password.
        `${where}: ${name} is set by the construct from its props, and was changed afterwards: ` +
          "the image, the gallery and the other function were built for the props' value; change the props instead",
      );
    }
  }
  try {
    loadConfig(env, registry, { role });
  } catch (error) {
    problems.push(`${where}: ${(error as Error).message}`);
  }
  // Powertools takes its namespace from here; the alarms and the dashboard, built before any addEnvironment,
  // read the pipeline's: the latency alarm would never fire. (The value is not repeated, as above.)
  if (
    variables.POWERTOOLS_METRICS_NAMESPACE !== undefined &&
    // Empty reads as unset (the entries take `||` the pipeline's).
    variables.POWERTOOLS_METRICS_NAMESPACE !== '' &&
    variables.POWERTOOLS_METRICS_NAMESPACE !== PIPELINE_METRICS.namespace
  ) {
    problems.push(
      `${where}: POWERTOOLS_METRICS_NAMESPACE names another namespace than "${PIPELINE_METRICS.namespace}", the one ` +
        "the pipeline's alarms and dashboard read (its latency alarm would never fire); leave it unset",
    );
  }
  for (const { name, meant } of unknownVariables(env)) {
    problems.push(
      `${where}: ${name} is not a variable facerec reads` + (meant ? ` (did you mean ${meant}?)` : ''),
    );
  }
  return problems;
}
