import { FacerecError } from '@facerec/framework';

/** The queue file could not be opened: in use by another process, not a queue file, or not writable. */
export class QueueFileError extends FacerecError {
  static override readonly errorName: string = 'QueueFileError';
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super('QUEUE_FILE', `queue file ${file}: ${message}`, options);
    this.file = file;
  }
}
