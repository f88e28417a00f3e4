/**
 * Lambda entry point of the recognition function (SQS trigger with `ReportBatchItemFailures`). Configure it
 * with the environment variables of `loadConfig`; model and gallery load during init, once per container.
 */
import { composeRecognition } from '../container.js';
import type { LambdaInvocationContext } from '../logger.js';
import type { LambdaContextLike, SqsBatchResponse, SqsEvent } from '../sqs-batch.js';
import { composeEntry, describeFailure } from './entry.js';

const { ready, logger } = composeEntry(composeRecognition);
// Top-level await: the model and the gallery load during Lambda's init phase, before the first request
// rather than in it. A failure (a bad environment variable, a model or gallery that cannot load) is not thrown
// here (that would only say "init failed"): every invocation logs it, with its message, and fails its records.
const failure = await ready.then(
  () => undefined,
  (error: unknown) => error,
);

/**
 * The Lambda handler. The context's remaining time bounds how long a face stays claimed "in progress" by this
 * invocation (see `FACEREC_IDEMPOTENCY_TABLE`).
 */
export const handler = async (
  event: SqsEvent,
  context?: LambdaContextLike & LambdaInvocationContext,
): Promise<SqsBatchResponse> => {
  if (context) logger.addContext?.(context);
  if (failure !== undefined) {
    logger.error('the recognition function failed to start', { error: describeFailure(failure) });
    // Every record back to the queue (retried, then dead-lettered), without a stack trace in the logs.
    return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
  }
  return (await ready)(event, context);
};
