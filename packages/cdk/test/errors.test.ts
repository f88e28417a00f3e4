import { describe, expect, it, vi } from 'vitest';
import { FaceRecognitionPipelineError, FacerecCdkError } from '../src/errors.js';

describe('@facerec/cdk errors', () => {
  it('each class matches its own instances only', () => {
    const pipeline = new FaceRecognitionPipelineError(['galleryPath must be an absolute path']);
    expect(pipeline.name).toBe('FaceRecognitionPipelineError');
    expect(FaceRecognitionPipelineError.isInstance(pipeline)).toBe(true);
    expect(FacerecCdkError.isInstance(pipeline)).toBe(true);

    const base = new FacerecCdkError('something else');
    expect(base.name).toBe('FacerecCdkError');
    expect(FacerecCdkError.isInstance(base)).toBe(true);
    expect(FaceRecognitionPipelineError.isInstance(base)).toBe(false);
    expect(FacerecCdkError.isInstance(new Error('x'))).toBe(false);
  });

  it('keeps isInstance working across two copies of the module (duplicate installs)', async () => {
    vi.resetModules();
    const copy = await import('../src/errors.js');
    expect(copy.FaceRecognitionPipelineError).not.toBe(FaceRecognitionPipelineError);
    const fromCopy = new copy.FaceRecognitionPipelineError(['x']);
    expect(fromCopy).not.toBeInstanceOf(FaceRecognitionPipelineError);
    expect(FaceRecognitionPipelineError.isInstance(fromCopy)).toBe(true);
    expect(FacerecCdkError.isInstance(fromCopy)).toBe(true);
    expect(copy.FaceRecognitionPipelineError.isInstance(new FacerecCdkError('y'))).toBe(false);
  });
});
