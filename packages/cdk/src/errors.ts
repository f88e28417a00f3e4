const MARKER = Symbol.for('facerec.cdk.error');

/** Base class of every error `@facerec/cdk` throws. */
export class FacerecCdkError extends Error {
  /** Marks facerec CDK errors for {@link FacerecCdkError.isInstance}. */
  readonly [MARKER] = true;

  /** True for any `@facerec/cdk` error, even across duplicate installs of the package. */
  static isInstance(error: unknown): error is FacerecCdkError {
    return typeof error === 'object' && error !== null && MARKER in error;
  }
}

/** Invalid {@link FaceRecognitionPipelineProps}: `problems` names every bad prop. */
export class FaceRecognitionPipelineError extends FacerecCdkError {
  override readonly name = 'FaceRecognitionPipelineError';
  /** One line per invalid or unknown prop. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`@facerec/cdk FaceRecognitionPipeline: invalid props: ${problems.join('; ')}`);
    this.problems = problems;
  }
}
