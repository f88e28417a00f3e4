import { InvalidInputError } from '../errors.js';

const isPositiveInteger = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

/** Throws {@link InvalidInputError} naming `component` and `name` unless `value` is a positive safe integer. */
export function assertPositiveInteger(component: string, name: string, value: number): void {
  if (!isPositiveInteger(value)) {
    throw new InvalidInputError(`${component}: ${name} must be a positive integer, got ${String(value)}`);
  }
}
