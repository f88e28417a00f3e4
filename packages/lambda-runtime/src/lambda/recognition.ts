/**
 * Lambda entry point of the recognition function (SQS trigger with `ReportBatchItemFailures`). Configure it
 * with the environment variables of `loadConfig`; model and gallery load during init, once per container.
 */
import { PIPELINE_METRICS } from '@facerec/framework';
import { composeRecognition } from '../container.js';
import type { LambdaInvocationContext } from '../logger.js';
import type { LambdaContextLike, SqsBatchResponse, SqsEvent } from '../sqs-batch.js';
import { describeFailure, startEntry } from './entry.js';

// Top-level await: the model and the gallery load during Lambda's init phase, before the first request
// rather than in it. A failure makes every invocation log it, with its message, and fail its records; a
// gallery not uploaded yet or out of reach is tried again (see `startEntry`).
const entry = await startEntry('recognition', composeRecognition);
const { logger, metrics } = entry;

/**
 * The Lambda handler. The context's remaining time bounds how long a face stays claimed "in progress" by this
 * invocation (see `FACEREC_IDEMPOTENCY_TABLE`).
 */
export const handler = async (
  event: SqsEvent,
  context?: LambdaContextLike & LambdaInvocationContext,
): Promise<SqsBatchResponse> => {
  if (context) logger.addContext?.(context);
  try {
    const { handler: recognise, failure } = await entry.started();
    if (recognise === undefined) {
      logger.error('the recognition function failed to start', { error: describeFailure(failure) });
      metrics.add(PIPELINE_METRICS.recognition.facesFailed, 'Count', event.Records.length);
      // Every record back to the queue (retried, then dead-lettered), without a stack trace in the logs.
      return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
    }
    return await recognise(event, context);
  } finally {
    metrics.publish();
  }
};
