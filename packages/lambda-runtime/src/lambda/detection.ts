/**
 * Lambda entry point of the detection function (Function URL). Configure it with the environment variables
 * of {@link loadConfig}; the model loads during the init phase, once per container.
 */
import { loadConfig } from '../config.js';
import { composeDetection, createPipelineContainer } from '../container.js';
import type { FunctionUrlEvent, FunctionUrlResult } from '../detection.js';

const ready = composeDetection(createPipelineContainer(loadConfig()));
// Surface init failures on the first invocation rather than as an unhandled rejection.
ready.catch(() => undefined);

/** The Lambda handler. */
export const handler = async (event: FunctionUrlEvent): Promise<FunctionUrlResult> => (await ready)(event);
