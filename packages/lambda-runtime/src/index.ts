/**
 * `@facerec/lambda-runtime`: the detection and recognition handlers of the facerec pipeline, and the
 * composition root that builds them from environment variables.
 *
 * @packageDocumentation
 */

// The pipeline configuration lives in `@facerec/framework/registry` (the CDK construct checks it at synth, without
// this package); exported here too, where it was first.
export {
  BODY_LIMITS,
  type LoadConfigOptions,
  loadConfig,
  PIPELINE_VARIABLES,
  type PipelineConfig,
  unknownVariables,
} from '@facerec/framework/registry';
export {
  composeDetection,
  composeRecognition,
  createPipelineContainer,
  type PipelineOverrides,
  TOKENS,
} from './container.js';
export {
  createDetectionHandler,
  type DetectionHandler,
  type DetectionHandlerOptions,
  type FunctionUrlEvent,
  type FunctionUrlResult,
} from './detection.js';
export {
  createDynamoDbIdempotencyStore,
  type IdempotencyClaim,
  type IdempotencyStore,
  IdempotencyStoreUnavailableError,
  InMemoryIdempotencyStore,
  type InMemoryIdempotencyStoreOptions,
} from './idempotency.js';
export type { DynamoDbIdempotencyStoreOptions } from './idempotency-dynamodb.js';
export {
  createDetectionLambda,
  createRecognitionLambda,
  type DetectionLambdaHandler,
  type LambdaFunctionOptions,
  type RecognitionLambdaHandler,
} from './lambda/functions.js';
export {
  type CollectionsApi,
  type CollectionsApiOptions,
  type CollectionsRequest,
  createCollectionsApi,
} from './local/collections-api.js';
export {
  createPrometheusMetrics,
  LOCAL_METRICS,
  type PrometheusMetrics,
  prometheusName,
} from './local/prometheus.js';
export {
  assertTokenWhereNeeded,
  DEFAULT_MAX_IN_FLIGHT_PIXELS,
  type DrainOptions,
  type DrainReport,
  HEALTH_CHECK_TIMEOUT_MS,
  type HealthCheckResult,
  type LocalRuntime,
  type LocalRuntimeBacklog,
  type LocalRuntimeOptions,
  MIN_NETWORK_TOKEN_LENGTH,
  startLocalRuntime,
} from './local/runtime.js';
export {
  createWorkerProvider,
  type WorkerProvider,
  type WorkerProviderOptions,
} from './local/worker-provider.js';
export {
  formatWorkloadReport,
  INTERRUPT_GRACE_MS,
  jsonSender,
  type LatencySummary,
  loadFrames,
  localResponses,
  MAX_FRAME_FILE_BYTES,
  queueResponses,
  type RequestOutcome,
  type ResponseSource,
  runWorkload,
  type SendResult,
  type WorkloadFrame,
  type WorkloadOptions,
  type WorkloadReport,
} from './local/workload.js';
export {
  createLogger,
  type LambdaInvocationContext,
  type PipelineLogger,
  silentLogger,
} from './logger.js';
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
  createLambdaMetrics,
  type LambdaMetrics,
  noMetrics,
  type PipelineMetrics,
} from './metrics.js';
export { loadProvider } from './providers.js';
export {
  createRecognitionHandler,
  createRecognitionRecordHandler,
  idempotencyKey,
  type RecognitionHandlerOptions,
} from './recognition.js';
export {
  type LambdaContextLike,
  type QueueRecord,
  type RecordBatchContext,
  type RecordBatchHandler,
  type RecordBatchResult,
  recordHandlerOf,
  recordsFromSqsEvent,
  type SqsBatchHandler,
  type SqsBatchResponse,
  type SqsEvent,
  type SqsEventHandler,
  type SqsRecord,
  sqsBatchHandler,
} from './sqs-batch.js';
