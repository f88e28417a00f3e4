/**
 * Lambda entry point of the detection function (Function URL). Configure it with the environment variables
 * of `loadConfig`; the model loads during the init phase, once per container.
 */
import { composeDetection } from '../container.js';
import type { FunctionUrlEvent, FunctionUrlResult } from '../detection.js';
import type { LambdaInvocationContext } from '../logger.js';
import { composeEntry, describeFailure } from './entry.js';

const { ready, logger } = composeEntry(composeDetection);
// Top-level await: the models load and the detector warms up (`FACEREC_WARMUP`) during Lambda's init
// phase, before the first request rather than in it. A failure (a bad environment variable, models that
// cannot load) is not thrown here (that would only say "init failed", with a stack trace): every invocation
// logs it, with its message, and answers 503 in the API's JSON shape.
const failure = await ready.then(
  () => undefined,
  (error: unknown) => error,
);

/** The Lambda handler. */
export const handler = async (
  event: FunctionUrlEvent,
  context?: LambdaInvocationContext,
): Promise<FunctionUrlResult> => {
  if (context) logger.addContext?.(context);
  if (failure !== undefined) {
    logger.error('the detection function failed to start', {
      error: describeFailure(failure),
    });
    return {
      statusCode: 503,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ error: 'the detection function failed to start; its logs say why' }),
    };
  }
  return (await ready)(event);
};
