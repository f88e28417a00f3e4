/**
 * Errors specific to `@facerec/provider-tfjs`. Everything else (bad options, unknown models, bad input,
 * use after dispose) uses the framework's errors, so callers handle every provider alike.
 */
import { FacerecError } from '@facerec/framework';

/**
 * A TensorFlow.js backend that was explicitly requested could not be started: its package is not installed,
 * failed to load, or failed to initialise. Not a caller-input error: the request was valid, the environment
 * cannot serve it (HTTP 5xx). The automatic selection never throws this; it falls back instead.
 */
export class TfjsBackendUnavailableError extends FacerecError {
  static override readonly errorName: string = 'TfjsBackendUnavailableError';
  /** The backend that was requested, e.g. `tensorflow`. */
  readonly backend: string;
  /** Why it is unavailable, e.g. `@tensorflow/tfjs-node not installed`. */
  readonly reason: string;

  constructor(backend: string, reason: string, options?: { cause?: unknown }) {
    super(
      'TFJS_BACKEND_UNAVAILABLE',
      `TensorFlow.js backend "${backend}" is unavailable: ${reason}`,
      options,
    );
    this.backend = backend;
    this.reason = reason;
  }
}
