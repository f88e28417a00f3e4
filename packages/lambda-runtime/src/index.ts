/**
 * `@facerec/lambda-runtime`: the detection and recognition handlers of the facerec pipeline, and the
 * composition root that builds them from environment variables.
 *
 * @packageDocumentation
 */

export { loadConfig, type PipelineConfig } from './config.js';
export {
  composeDetection,
  composeRecognition,
  createPipelineContainer,
  EMBEDDER_INPUT_SIZE,
  type PipelineOverrides,
  type PipelineProvider,
  TOKENS,
} from './container.js';
export {
  createDetectionHandler,
  type DetectionHandlerOptions,
  type FaceCropper,
  type FunctionUrlEvent,
  type FunctionUrlResult,
} from './detection.js';
export { type IdempotencyStore, InMemoryIdempotencyStore } from './idempotency.js';
export { type LocalRuntime, type LocalRuntimeOptions, startLocalRuntime } from './local/runtime.js';
export {
  formatWorkloadReport,
  loadFrames,
  localResponses,
  queueResponses,
  type RequestOutcome,
  type ResponseSource,
  runWorkload,
  type WorkloadFrame,
  type WorkloadOptions,
  type WorkloadReport,
} from './local/workload.js';
export { createLogger, type PipelineLogger, silentLogger } from './logger.js';
export {
  type DetectionRequest,
  detectionRequestSchema,
  type FaceMessage,
  faceMessageSchema,
  NO_FACE,
  type ResponseMessage,
  responseMessageSchema,
} from './messages.js';
export {
  createRecognitionHandler,
  type RecognitionHandlerOptions,
  resizeToEmbedderInput,
  type SqsBatchResponse,
  type SqsEvent,
  type SqsRecord,
} from './recognition.js';
