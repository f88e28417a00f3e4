import { describe, expect, it, vi } from 'vitest';
import {
  CheckpointError,
  FacerecError,
  FacerecInputError,
  ImageTooLargeError,
  InvalidImageError,
  ModelUnavailableError,
} from './errors.js';
import * as framework from './index.js';

describe('error markers', () => {
  const errorClasses = Object.entries(framework).filter(
    (entry): entry is [string, typeof FacerecError] =>
      typeof entry[1] === 'function' &&
      (entry[1] === FacerecError || entry[1].prototype instanceof FacerecError),
  );

  it('finds the exported error classes', () => {
    expect(errorClasses.length).toBeGreaterThanOrEqual(17);
  });

  it.each(errorClasses)('%s declares its own errorName, equal to its exported name', (name, cls) => {
    expect(Object.hasOwn(cls, 'errorName')).toBe(true);
    expect(cls.errorName).toBe(name);
  });

  it('names errors and matches them by the declared marker, not by the (minifiable) class name', () => {
    // What a minifier makes of `class TooDarkError extends FacerecInputError`.
    const Minified = class extends FacerecInputError {
      static override readonly errorName: string = 'facerec-test/TooDarkError';
      constructor() {
        super('TOO_DARK', 'too dark');
      }
    };
    Object.defineProperty(Minified, 'name', { value: 'a' });
    const error = new Minified();
    expect(error.name).toBe('facerec-test/TooDarkError');
    expect(Minified.isInstance(error)).toBe(true);
    expect(FacerecInputError.isInstance(error)).toBe(true);
    expect(FacerecError.isInstance(error)).toBe(true);
    expect(InvalidImageError.isInstance(error)).toBe(false);

    // Another class (another name, another bundle) with the same marker is the same error to isInstance.
    const Twin = class extends FacerecInputError {
      static override readonly errorName: string = 'facerec-test/TooDarkError';
    };
    Object.defineProperty(Twin, 'name', { value: 'b' });
    expect(Twin.isInstance(error)).toBe(true);
    expect(Minified.isInstance(new Twin('TOO_DARK', 'too dark'))).toBe(true);
  });

  it('falls back to the class name for a subclass that declares no errorName', () => {
    class PluginError extends FacerecError {}
    const error = new PluginError('PLUGIN', 'plugin failed');
    expect(error.name).toBe('PluginError');
    expect(PluginError.isInstance(error)).toBe(true);
    expect(FacerecError.isInstance(error)).toBe(true);
    expect(FacerecInputError.isInstance(error)).toBe(false);
  });

  it('keeps isInstance working across two copies of the module (duplicate installs)', async () => {
    vi.resetModules();
    const copy = await import('./errors.js');
    expect(copy.InvalidImageError).not.toBe(InvalidImageError);

    const fromCopy = new copy.InvalidImageError('not an image');
    expect(fromCopy).not.toBeInstanceOf(InvalidImageError);
    expect(InvalidImageError.isInstance(fromCopy)).toBe(true);
    expect(FacerecInputError.isInstance(fromCopy)).toBe(true);
    expect(FacerecError.isInstance(fromCopy)).toBe(true);
    expect(ImageTooLargeError.isInstance(fromCopy)).toBe(false);

    const fromHere = new ModelUnavailableError('pnet', 'offline');
    expect(copy.ModelUnavailableError.isInstance(fromHere)).toBe(true);
    expect(copy.FacerecError.isInstance(fromHere)).toBe(true);
    expect(copy.FacerecInputError.isInstance(fromHere)).toBe(false);
    expect(copy.CheckpointError.isInstance(fromHere)).toBe(false);
    expect(CheckpointError.isInstance(new copy.CheckpointError('bad'))).toBe(true);
  });

  it('rejects values that are not facerec errors', () => {
    for (const value of [
      undefined,
      null,
      'InvalidImageError',
      42,
      new Error('x'),
      { name: 'InvalidImageError' },
    ]) {
      expect(FacerecError.isInstance(value)).toBe(false);
      expect(InvalidImageError.isInstance(value)).toBe(false);
    }
  });
});

describe('serializeError / deserializeError', () => {
  it('keep a facerec error class, code and message through structured clone', () => {
    const sent = structuredClone(
      framework.serializeError(new framework.InvalidInputError('face 0 has invalid dimensions 0×3')),
    );
    const error = framework.deserializeError(sent);
    expect(framework.InvalidInputError.isInstance(error)).toBe(true);
    expect(framework.FacerecInputError.isInstance(error)).toBe(true);
    expect(framework.InvalidImageError.isInstance(error)).toBe(false);
    expect(error).toMatchObject({ name: 'InvalidInputError', code: 'INVALID_INPUT' });
    expect(error.message).toBe('face 0 has invalid dimensions 0×3');
  });

  it('turn any other error into a plain Error with no facerec class', () => {
    const error = framework.deserializeError(framework.serializeError(new TypeError('boom')));
    expect(framework.FacerecError.isInstance(error)).toBe(false);
    expect(error).toMatchObject({ name: 'TypeError', message: 'boom' });
    expect(framework.serializeError('text')).toEqual({
      name: 'Error',
      message: 'text',
      code: 'ERROR',
      markers: [],
    });
  });
});
