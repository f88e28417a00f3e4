// One Symbol.for key per class, so each class's isInstance matches its own instances (and subclasses')
// only, across duplicate installs and whatever a bundler renames. @facerec/cdk does not depend on
// @facerec/framework (which brings sharp into a CDK app), hence markers of its own.
const CDK_ERROR = Symbol.for('facerec.cdk.error');
const PIPELINE_ERROR = Symbol.for('facerec.cdk.FaceRecognitionPipelineError');

function hasMarker(error: unknown, marker: symbol): boolean {
  return typeof error === 'object' && error !== null && marker in error;
}

/** Base class of every error `@facerec/cdk` throws. */
export class FacerecCdkError extends Error {
  /** Marks facerec CDK errors for {@link FacerecCdkError.isInstance}. */
  readonly [CDK_ERROR] = true;
  override readonly name: string = 'FacerecCdkError';

  /** True for any `@facerec/cdk` error, even across duplicate installs of the package. */
  static isInstance(error: unknown): error is FacerecCdkError {
    return hasMarker(error, CDK_ERROR);
  }
}

/** Invalid {@link FaceRecognitionPipelineProps}: `problems` names every bad prop. */
export class FaceRecognitionPipelineError extends FacerecCdkError {
  /** Marks this class for {@link FaceRecognitionPipelineError.isInstance}. */
  readonly [PIPELINE_ERROR] = true;
  override readonly name: string = 'FaceRecognitionPipelineError';
  /** One line per invalid or unknown prop. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`@facerec/cdk FaceRecognitionPipeline: invalid props: ${problems.join('; ')}`);
    this.problems = problems;
  }

  /** True for a {@link FaceRecognitionPipelineError}, even one from another copy of the package. */
  static override isInstance(error: unknown): error is FaceRecognitionPipelineError {
    return hasMarker(error, PIPELINE_ERROR);
  }
}
