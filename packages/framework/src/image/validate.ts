import { InvalidInputError } from '../errors.js';
import type { RgbImage } from './types.js';

const isPositiveInteger = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

/** Throws {@link InvalidInputError} naming `component` unless `image` satisfies the {@link RgbImage} invariant. */
export function assertRgbImage(component: string, image: RgbImage): void {
  const valid =
    typeof image === 'object' &&
    image !== null &&
    isPositiveInteger(image.width) &&
    isPositiveInteger(image.height) &&
    image.data instanceof Uint8Array &&
    image.data.length === image.width * image.height * 3;
  if (!valid) {
    throw new InvalidInputError(
      `${component}: expected an RgbImage with positive integer width and height and width*height*3 bytes of data`,
    );
  }
}

/** Throws {@link InvalidInputError} naming `component` and `name` unless `value` is a positive safe integer. */
export function assertPositiveInteger(component: string, name: string, value: number): void {
  if (!isPositiveInteger(value)) {
    throw new InvalidInputError(`${component}: ${name} must be a positive integer, got ${String(value)}`);
  }
}
