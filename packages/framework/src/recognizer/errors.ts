/**
 * Errors of the recognizer module. They extend the package's base classes (`../errors.ts`) and so carry the
 * same `Symbol.for` marker and static `isInstance`; each declares its own `errorName`.
 */
import { FacerecInputError } from '../errors.js';

/** A photo in which the detector found no face, where one was needed (verification). */
export class NoFaceError extends FacerecInputError {
  static override readonly errorName: string = 'NoFaceError';
  /** The photo, as the caller named it (a file name), or `the first photo` / `the second photo`. */
  readonly photo: string;
  constructor(photo: string, options?: { cause?: unknown }) {
    super('NO_FACE', `no face found in ${photo}`, options);
    this.photo = photo;
  }
}
