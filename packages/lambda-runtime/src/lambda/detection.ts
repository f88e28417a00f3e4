/**
 * Lambda entry point of the detection function (Function URL). Configure it with the environment variables
 * of `loadConfig`; the model loads during the init phase, once per container.
 */
import { createDetectionLambda } from './functions.js';

// Top-level await: the models load and the detector warms up (`FACEREC_WARMUP`) during Lambda's init
// phase, before the first request rather than in it. A failure makes every invocation log it, with its
// message, and answer 503 in the API's JSON shape (see `createDetectionLambda`).
export const handler = await createDetectionLambda();
