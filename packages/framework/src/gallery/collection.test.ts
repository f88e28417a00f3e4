import { describe, expect, it } from 'vitest';
import { InvalidImageError } from '../errors.js';
import { fakePreprocessing } from '../testing/fakes.js';
import { addFacesFromPhotos } from './collection.js';

describe('addFacesFromPhotos', () => {
  it('names the photo that cannot be decoded, keeping the error class, and adds nothing', async () => {
    const added: unknown[] = [];
    const store = { assertCompatible: () => undefined, add: async (...args: unknown[]) => added.push(args) };
    const unreachable = () => {
      throw new Error('not reached: decoding fails first');
    };
    const error = await addFacesFromPhotos(store as never, {
      identity: 'alice',
      photos: [{ photo: new TextEncoder().encode('not an image'), source: 'notes.png' }],
      detector: { detectFaces: unreachable },
      embedder: {
        modelId: 'm',
        weightsSha256: undefined,
        dimension: 4,
        preprocessing: fakePreprocessing(8),
        embed: unreachable,
      },
    }).catch((e: unknown) => e);
    expect(InvalidImageError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/^notes\.png: /);
    expect((error as InvalidImageError).code).toBe('INVALID_IMAGE');
    expect(added).toEqual([]);
  });
});
