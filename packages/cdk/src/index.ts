/**
 * `@facerec/cdk`: the facerec reference deployment as one AWS CDK construct, {@link FaceRecognitionPipeline}.
 */
export { FaceRecognitionPipelineError, FacerecCdkError } from './errors.js';
export {
  BAKED_MODEL_DIR,
  FaceRecognitionPipeline,
  type FaceRecognitionPipelineProps,
  MAX_RECEIVE_COUNT,
  MAX_REPLY_QUEUES,
  PIPELINE_DEFAULTS,
  PIPELINE_WARNINGS,
  type PipelineAlarmThresholds,
  type PipelineFunctionOptions,
  type PipelineImage,
  type ResolvedPipelineProps,
  resolvePipelineProps,
  VISIBILITY_TIMEOUT_FACTOR,
} from './pipeline.js';
