/**
 * Lambda entry point of the recognition function (SQS trigger with `ReportBatchItemFailures`). Configure it
 * with the environment variables of {@link loadConfig}; model and gallery load during init, once per container.
 */
import { loadConfig } from '../config.js';
import { composeRecognition, createPipelineContainer, TOKENS } from '../container.js';
import type { LambdaInvocationContext, PipelineLogger } from '../logger.js';
import type { LambdaContextLike, SqsBatchResponse, SqsEvent } from '../sqs-batch.js';

const container = createPipelineContainer(loadConfig());
const ready = composeRecognition(container);
const logger = container.resolve<PipelineLogger>(TOKENS.logger);
// Top-level await: the model and the gallery load during Lambda's init phase, before the first request
// rather than in it. A failure is not thrown here (that would only say "init failed"): it surfaces, with
// its message, on every invocation.
await ready.catch(() => undefined);

/**
 * The Lambda handler. The context's remaining time bounds how long a face stays claimed "in progress" by this
 * invocation (see `FACEREC_IDEMPOTENCY_TABLE`).
 */
export const handler = async (
  event: SqsEvent,
  context?: LambdaContextLike & LambdaInvocationContext,
): Promise<SqsBatchResponse> => {
  if (context) logger.addContext?.(context);
  return (await ready)(event, context);
};
