/**
 * Lambda entry point of the recognition function (SQS trigger with `ReportBatchItemFailures`). Configure it
 * with the environment variables of `loadConfig`; model and gallery load during init, once per container.
 */
import { InvalidInputError, PIPELINE_METRICS } from '@facerec/framework';
import { composeRecognition } from '../container.js';
import type { LambdaInvocationContext } from '../logger.js';
import type { LambdaContextLike, SqsBatchResponse, SqsEvent, SqsRecord } from '../sqs-batch.js';
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

/** The message ids of an event's records, as far as it has any (a malformed event, fewer or none). */
function recordIds(event: SqsEvent): string[] {
  const records = (event as Partial<SqsEvent> | null | undefined)?.Records;
  if (!Array.isArray(records)) return [];
  return records.flatMap((r: Partial<SqsRecord> | null | undefined) =>
    typeof r?.messageId === 'string' ? [r.messageId] : [],
  );
}
