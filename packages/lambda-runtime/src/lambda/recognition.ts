/**
 * Lambda entry point of the recognition function (SQS trigger with `ReportBatchItemFailures`). Configure it
 * with the environment variables of `loadConfig`; model and gallery load during init, once per container.
 */
import { createRecognitionLambda } from './functions.js';

// Top-level await: the model and the gallery load during Lambda's init phase, before the first request
// rather than in it. A failure makes every invocation log it, with its message, and fail its records; a
// gallery not uploaded yet or out of reach is tried again (see `createRecognitionLambda`).
export const handler = await createRecognitionLambda();
