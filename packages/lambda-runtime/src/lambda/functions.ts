/**
 * The Lambda functions' handlers as the stock entry modules (`@facerec/lambda-runtime/lambda/detection` and
 * `…/recognition`) run them, for entry modules of your own: the same start (configuration from the
 * environment, models and warm-up), the same retry of a start that failed on the gallery's store, the same
 * logs, metrics and invocation deadline, against your model registry.
 */
import {
  InvalidInputError,
  MODELS,
  type ModelRegistry,
  PIPELINE_METRICS,
  type Transport,
} from '@facerec/framework';
import { loadConfig } from '@facerec/framework/registry';
import { composeDetection, composeRecognition, createPipelineContainer } from '../container.js';
import type { FunctionUrlEvent, FunctionUrlResult } from '../detection.js';
import type { LambdaInvocationContext } from '../logger.js';
import type { LambdaContextLike, SqsBatchResponse, SqsEvent, SqsRecord } from '../sqs-batch.js';
import { describeFailure, type LambdaEntry, startEntry } from './entry.js';

/** Options of {@link createDetectionLambda} and {@link createRecognitionLambda}. */
export interface LambdaFunctionOptions {
  /**
   * The registry `FACEREC_EMBEDDER` names a model of, and whose default detector runs
   * (`MODELS.with(yourEmbedder)`). Default: the built-in `MODELS`.
   */
  readonly registry?: ModelRegistry;
  /**
   * The queues, in place of SQS (`FACEREC_REQUEST_QUEUE_URL` and the others then name its queues): an
   * `InMemoryQueueTransport` (`@facerec/transport-memory`) runs the stock functions, start-up failures, metrics
   * and deadlines included, in a test without an SQS server. Default: SQS.
   */
  readonly transport?: Transport;
}

/** The detection function's handler (Function URL events). */
export type DetectionLambdaHandler = (
  event: FunctionUrlEvent,
  context?: LambdaInvocationContext & Partial<LambdaContextLike>,
) => Promise<FunctionUrlResult>;

/** The recognition function's handler (SQS events, `ReportBatchItemFailures`). */
export type RecognitionLambdaHandler = (
  event: SqsEvent,
  context?: LambdaContextLike & LambdaInvocationContext,
) => Promise<SqsBatchResponse>;

/** {@link startEntry} with the configuration from the environment, read against `registry`. */
const start = <H>(
  service: 'detection' | 'recognition',
  compose: Parameters<typeof startEntry<H>>[1],
  { registry = MODELS, transport }: LambdaFunctionOptions,
): Promise<LambdaEntry<H>> =>
  startEntry(service, compose, (metrics) =>
    createPipelineContainer(loadConfig(process.env, registry, { role: service }), {
      metrics,
      ...(transport ? { transport } : {}),
    }),
  );

/**
 * Starts the detection function (call it with top-level await, so that the models load and the detector warms
 * up during Lambda's init phase) and returns its handler. A failed start is not thrown: each invocation logs it
 * in one line and answers 503 in the API's JSON shape; one on the gallery's store is tried again (every 10 s).
 * The context's remaining time bounds publishing: a queue out of reach is answered 503 before the invocation
 * times out.
 *
 * @example
 * // your entry module: the stock detection function, with a model of your own
 * export const handler = await createDetectionLambda({ registry: MODELS.with(myEmbedder) });
 */
export async function createDetectionLambda(
  options: LambdaFunctionOptions = {},
): Promise<DetectionLambdaHandler> {
  const entry = await start('detection', composeDetection, options);
  const { logger, metrics } = entry;
  const answer = async (event: FunctionUrlEvent, deadline: number | undefined) => {
    const { handler: detect, failure } = await entry.started();
    if (detect === undefined) {
      metrics.add(PIPELINE_METRICS.detection.framesFailed, 'Count', 1);
      logger.error('the detection function failed to start', { error: describeFailure(failure) });
      return {
        statusCode: 503,
        headers: { 'content-type': 'application/json' },
        // The API's error shape; the body is not read, so the request id is not known.
        body: JSON.stringify({
          error: 'the detection function failed to start; its logs say why',
          request_id: null,
        }),
      };
    }
    return detect(event, deadline === undefined ? {} : { deadline });
  };
  return async (event, context) => {
    if (context) logger.addContext?.(context);
    try {
      const remaining = context?.getRemainingTimeInMillis?.();
      return await answer(event, remaining === undefined ? undefined : Date.now() + remaining);
    } finally {
      metrics.publish();
    }
  };
}

/**
 * Starts the recognition function (call it with top-level await: the model and the gallery load during Lambda's
 * init phase) and returns its handler. A failed start is not thrown: each invocation logs it in one line and
 * hands its records back; one on the gallery's store (not uploaded yet, out of reach, another embedder's) is
 * tried again (every 10 s). The context's remaining time bounds how long a face stays claimed "in progress"
 * (see `FACEREC_IDEMPOTENCY_TABLE`).
 *
 * @example
 * // your entry module: the stock recognition function, with a model of your own
 * export const handler = await createRecognitionLambda({ registry: MODELS.with(myEmbedder) });
 */
export async function createRecognitionLambda(
  options: LambdaFunctionOptions = {},
): Promise<RecognitionLambdaHandler> {
  const entry = await start('recognition', composeRecognition, options);
  const { logger, metrics } = entry;
  return async (event, context) => {
    if (context) logger.addContext?.(context);
    try {
      const { handler: recognise, failure } = await entry.started();
      if (recognise === undefined) {
        // The message @facerec/cdk's start-failure alarm counts (its test reads it here).
        logger.error('the recognition function failed to start', { error: describeFailure(failure) });
        const ids = recordIds(event);
        metrics.add(PIPELINE_METRICS.recognition.facesFailed, 'Count', ids.length);
        // Every record back to the queue (retried, then dead-lettered), without a stack trace in the logs.
        return { batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })) };
      }
      return await recognise(event, context);
    } catch (error) {
      // An event SQS never sends (a console test event without Records, a record without a body): said in one
      // line, and every record that can be named handed back, rather than a stack trace from the runtime.
      if (!InvalidInputError.isInstance(error)) throw error;
      logger.error('the event is no SQS batch; its records are handed back', { error: error.message });
      return { batchItemFailures: recordIds(event).map((itemIdentifier) => ({ itemIdentifier })) };
    } finally {
      metrics.publish();
    }
  };
}

/** The message ids of an event's records, as far as it has any (a malformed event, fewer or none). */
function recordIds(event: SqsEvent): string[] {
  const records = (event as Partial<SqsEvent> | null | undefined)?.Records;
  if (!Array.isArray(records)) return [];
  return records.flatMap((r: Partial<SqsRecord> | null | undefined) =>
    typeof r?.messageId === 'string' ? [r.messageId] : [],
  );
}
