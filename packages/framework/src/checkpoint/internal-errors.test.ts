import { afterEach, describe, expect, it, vi } from 'vitest';
import { CheckpointError } from '../errors.js';
import { PickleWriter, zipCheckpoint } from './__fixtures__/pickle-builder.js';
import { readCheckpoint } from './index.js';

// Stands in for a bug in the reader: the real toStateDict, or whatever a test makes it throw.
const bug = vi.hoisted(() => ({ error: undefined as unknown }));
vi.mock('./torch.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('./torch.js')>();
  return {
    ...actual,
    toStateDict: (...args: Parameters<typeof actual.toStateDict>) => {
      if (bug.error !== undefined) throw bug.error;
      return actual.toStateDict(...args);
    },
  };
});

describe('readCheckpoint: CheckpointError wraps faults of the file only', () => {
  const emptyStateDict = zipCheckpoint(new PickleWriter().proto(2).emptyDict().stop().bytes(), {});

  afterEach(() => {
    bug.error = undefined;
  });

  it('reads the checkpoint when nothing goes wrong (sanity check for the cases below)', () => {
    expect(readCheckpoint(emptyStateDict, { source: 'ok.pt' }).size).toBe(0);
  });

  it.each([
    ['TypeError', new TypeError("Cannot read properties of undefined (reading 'shape')")],
    ['RangeError', new RangeError('Invalid typed array length: -1')],
    ['ReferenceError', new ReferenceError('storage is not defined')],
  ])('rethrows a %s from its own code unchanged', (_name, error) => {
    bug.error = error;
    let caught: unknown;
    try {
      readCheckpoint(emptyStateDict, { source: 'ok.pt' });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBe(error);
    expect(CheckpointError.isInstance(caught)).toBe(false);
  });

  it('still names the file in a CheckpointError thrown without a source', () => {
    const cause = new Error('root cause');
    bug.error = new CheckpointError('tensor "w": storage too short', { cause });
    let caught: unknown;
    try {
      readCheckpoint(emptyStateDict, { source: 'bad.pt' });
    } catch (e) {
      caught = e;
    }
    expect(CheckpointError.isInstance(caught)).toBe(true);
    expect((caught as CheckpointError).source).toBe('bad.pt');
    expect((caught as CheckpointError).message).toBe('bad.pt: tensor "w": storage too short');
    expect((caught as CheckpointError).cause).toBe(cause);
  });
});
