/**
 * Lambda entry point of the detection function (Function URL). Configure it with the environment variables
 * of {@link loadConfig}; the model loads during the init phase, once per container.
 */
import { loadConfig } from '../config.js';
import { composeDetection, createPipelineContainer } from '../container.js';
import type { FunctionUrlEvent, FunctionUrlResult } from '../detection.js';
import { createLogger } from '../logger.js';

const ready = composeDetection(createPipelineContainer(loadConfig()));
// Top-level await: the models load and the detector warms up (`FACEREC_WARMUP`) during Lambda's init
// phase, before the first request rather than in it. A failure is not thrown here (that would only say
// "init failed"): every invocation logs it, with its message, and answers 503 in the API's JSON shape.
const failure = await ready.then(
  () => undefined,
  (error: unknown) => error,
);
const logger = failure === undefined ? undefined : createLogger('facerec');

/** The Lambda handler. */
export const handler = async (event: FunctionUrlEvent): Promise<FunctionUrlResult> => {
  if (failure !== undefined) {
    logger?.error('the detection function failed to start', {
      error: failure instanceof Error ? `${failure.name}: ${failure.message}` : String(failure),
    });
    return {
      statusCode: 503,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ error: 'the detection function failed to start; its logs say why' }),
    };
  }
  return (await ready)(event);
};
