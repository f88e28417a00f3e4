/**
 * Errors specific to `@facerec/provider-onnx`. Everything else (bad options, unknown models, bad input,
 * unreadable checkpoints, use after dispose) uses the framework's errors, so callers handle every provider
 * alike.
 */
import { FacerecError } from '@facerec/framework';

/**
 * onnxruntime-node (a peer dependency with a native addon) could not be loaded: not installed, or its
 * binary does not run on this platform. Not a caller-input error: the environment cannot serve the request
 * (HTTP 5xx). The message says what to install; `cause` holds the loader's error.
 */
export class OnnxRuntimeUnavailableError extends FacerecError {
  static override readonly errorName: string = 'OnnxRuntimeUnavailableError';
  constructor(options?: { cause?: unknown }) {
    super(
      'ONNXRUNTIME_UNAVAILABLE',
      'onnxruntime-node could not be loaded; install it next to @facerec/provider-onnx (npm install onnxruntime-node)',
      options,
    );
  }
}

/**
 * A graph the builder produced is inconsistent (a duplicated value name, no outputs, a layer plan it cannot
 * lower): a bug in facerec or in a network plan, never a fault of the caller's input.
 */
export class GraphBuildError extends FacerecError {
  static override readonly errorName: string = 'GraphBuildError';
  constructor(message: string) {
    super('GRAPH_BUILD', message);
  }
}
