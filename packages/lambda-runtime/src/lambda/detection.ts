/**
 * Lambda entry point of the detection function (Function URL). Configure it with the environment variables
 * of `loadConfig`; the model loads during the init phase, once per container.
 */
import { PIPELINE_METRICS } from '@facerec/framework';
import { composeDetection } from '../container.js';
import type { FunctionUrlEvent, FunctionUrlResult } from '../detection.js';
import type { LambdaInvocationContext } from '../logger.js';
import type { LambdaContextLike } from '../sqs-batch.js';
import { describeFailure, startEntry } from './entry.js';

// Top-level await: the models load and the detector warms up (`FACEREC_WARMUP`) during Lambda's init
// phase, before the first request rather than in it. A failure makes every invocation log it, with its
// message, and answer 503 in the API's JSON shape.
const entry = await startEntry('detection', composeDetection);
const { logger, metrics } = entry;

/**
 * The Lambda handler. The context's remaining time bounds publishing: a queue out of reach is answered 503 before
 * the invocation times out.
 */
export const handler = async (
  event: FunctionUrlEvent,
  context?: LambdaInvocationContext & Partial<LambdaContextLike>,
): Promise<FunctionUrlResult> => {
  if (context) logger.addContext?.(context);
  try {
    const remaining = context?.getRemainingTimeInMillis?.();
    return await answer(event, remaining === undefined ? undefined : Date.now() + remaining);
  } finally {
    metrics.publish();
  }
};

async function answer(event: FunctionUrlEvent, deadline: number | undefined): Promise<FunctionUrlResult> {
  const { handler: detect, failure } = await entry.started();
  if (detect === undefined) {
    metrics.add(PIPELINE_METRICS.detection.framesFailed, 'Count', 1);
    logger.error('the detection function failed to start', {
      error: describeFailure(failure),
    });
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
}
