import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { withChildSignal } from '../src/local/signals.js';

describe('withChildSignal', () => {
  it('leaves nothing on a long-lived parent signal, however many times it runs', async () => {
    const parent = new AbortController();
    for (let i = 0; i < 1000; i++) {
      await withChildSignal(parent.signal, async (signal) => {
        expect(signal.aborted).toBe(false);
        expect(getEventListeners(parent.signal, 'abort')).toHaveLength(1);
      });
    }
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
    // A run that throws unlinks too.
    await expect(
      withChildSignal(parent.signal, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
  });

  it('aborts the child when the parent aborts during the run, when the run asks, or at once for an aborted parent', async () => {
    const parent = new AbortController();
    const seen = await withChildSignal(parent.signal, async (signal) => {
      const aborted = new Promise<string>((resolve) =>
        signal.addEventListener('abort', () => resolve('aborted')),
      );
      parent.abort();
      return aborted;
    });
    expect(seen).toBe('aborted');
    expect(await withChildSignal(parent.signal, async (signal) => signal.aborted)).toBe(true);
    const own = await withChildSignal(new AbortController().signal, async (signal, abort) => {
      abort();
      return signal.aborted;
    });
    expect(own).toBe(true);
  });
});
