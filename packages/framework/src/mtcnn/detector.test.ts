import { describe, expect, it, vi } from 'vitest';
import { InvalidOptionsError } from '../errors.js';
import { MtcnnDetector } from './detector.js';
import type { MtcnnNetworks } from './networks.js';

describe('MtcnnDetector construction', () => {
  it('does not start loading the networks when its options are invalid', () => {
    const load = vi.fn(async (): Promise<MtcnnNetworks> => {
      throw new Error('no models here');
    });
    expect(() => new MtcnnDetector('test', load, { thresholds: [0.6, 1.5, 0.7] })).toThrow(
      InvalidOptionsError,
    );
    expect(() => new MtcnnDetector('test', load, { minFaceSze: 10 } as object)).toThrow(InvalidOptionsError);
    expect(load).not.toHaveBeenCalled();
  });

  it('loads once, and reports a failed load on use rather than as an unhandled rejection', async () => {
    const load = vi.fn(async (): Promise<MtcnnNetworks> => {
      throw new Error('no models here');
    });
    const detector = new MtcnnDetector('test', load);
    expect(load).toHaveBeenCalledTimes(1);
    await expect(detector.ready()).rejects.toThrow('no models here');
    await expect(detector.warmUp()).rejects.toThrow('no models here');
    expect(load).toHaveBeenCalledTimes(1);
  });
});
