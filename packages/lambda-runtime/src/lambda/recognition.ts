/**
 * Lambda entry point of the recognition function (SQS trigger with `ReportBatchItemFailures`). Configure it
 * with the environment variables of {@link loadConfig}; model and gallery load during init, once per container.
 */
import { loadConfig } from '../config.js';
import { composeRecognition, createPipelineContainer } from '../container.js';
import type { SqsBatchResponse, SqsEvent } from '../recognition.js';

const ready = composeRecognition(createPipelineContainer(loadConfig()));
ready.catch(() => undefined);

/** The Lambda handler. */
export const handler = async (event: SqsEvent): Promise<SqsBatchResponse> => (await ready)(event);
