/**
 * Lambda entry point of the detection function (Function URL). Configure it with the environment variables
 * of {@link loadConfig}; the model loads during the init phase, once per container.
 */
import { loadConfig } from '../config.js';
import { composeDetection, createPipelineContainer } from '../container.js';
import type { FunctionUrlEvent, FunctionUrlResult } from '../detection.js';

const ready = composeDetection(createPipelineContainer(loadConfig()));
// Top-level await: the models load and the detector warms up (`FACEREC_WARMUP`) during Lambda's init
// phase, before the first request rather than in it. A failure is not thrown here (that would only say
// "init failed"): it surfaces, with its message, on every invocation.
await ready.catch(() => undefined);

/** The Lambda handler. */
export const handler = async (event: FunctionUrlEvent): Promise<FunctionUrlResult> => (await ready)(event);
