import { describe, expect, it, vi } from 'vitest';
import { DisposedError, InvalidInputError, InvalidOptionsError } from '../errors.js';
import { runMtcnnCascade } from './cascade.js';
import { MtcnnDetector } from './detector.js';
import type { MtcnnNetworks, PNetOutput } from './networks.js';
import type { FrameSampling } from './sampling.js';

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

  it('refuses an image given without its array, and options it does not take, naming them', async () => {
    const detector = new MtcnnDetector('test', async () => {
      throw new Error('not reached: refused before the networks are needed');
    });
    const image = { width: 2, height: 2, data: new Uint8Array(12) };
    await expect(detector.detectFaces(image as never)).rejects.toThrow(
      new InvalidInputError('detectFaces: images must be an array of RgbImage (one image: [image])'),
    );
    // A misspelt `crop` meant no crops, silently; also with no images.
    await expect(detector.detectFaces([], { cropp: {} } as object)).rejects.toThrow(
      /Unrecognized key: "cropp"/,
    );
    await expect(detector.detectFaces([], { minFaceSize: 10 } as object)).rejects.toThrow(
      InvalidOptionsError,
    );
  });
});

/** P-Net's maps for `count` `height`×`width` inputs with no face anywhere (every probability 0). */
const faceless = (count: number, height: number, width: number): PNetOutput => {
  const [h, w] = [Math.ceil((height - 2) / 2) - 4, Math.ceil((width - 2) / 2) - 4];
  return {
    reg: new Float32Array(4 * count * h * w),
    prob: new Float32Array(2 * count * h * w),
    height: h,
    width: w,
  };
};

describe('runMtcnnCascade', () => {
  it('finds no face, loading and running nothing, in frames narrower than the smallest face searched for', async () => {
    const never = () => {
      throw new Error('must not be called');
    };
    const networks = new Proxy({}, { get: () => never }) as unknown as MtcnnNetworks;
    const sampling = { load: never } as unknown as FrameSampling;
    // A 10,000,000×2 frame, as a malicious client might send (its data is never read), and a 19×500 one.
    const tall = { width: 10_000_000, height: 2, data: new Uint8Array(0) };
    const narrow = { width: 19, height: 500, data: new Uint8Array(0) };
    const options = {
      minFaceSize: 20,
      thresholds: [0.6, 0.7, 0.7] as [number, number, number],
      factor: 0.709,
    };
    expect(await runMtcnnCascade([tall, narrow], networks, options, sampling)).toEqual([[], []]);
  });

  it('calls afterPNet once per call, after every P-Net input and strip, also when one fails', async () => {
    const calls: string[] = [];
    let failAt = Number.POSITIVE_INFINITY;
    const networks: MtcnnNetworks = {
      // No face anywhere: every probability 0, so R-Net and O-Net are never needed.
      pnet: async (_input, count, height, width, run = {}) => {
        if (calls.length === failAt) throw new Error('P-Net failed');
        calls.push(run.transient ? `strip of ${run.levelPixels}` : `level of ${height * width}`);
        return faceless(count, height, width);
      },
      rnet: async () => {
        throw new Error('must not be called');
      },
      onet: async () => {
        throw new Error('must not be called');
      },
      pnetPixelLimit: () => 10_000,
      afterPNet: async () => {
        calls.push('afterPNet');
      },
      dispose: async () => undefined,
    };
    const image = { width: 200, height: 150, data: new Uint8Array(200 * 150 * 3) };
    const options = {
      minFaceSize: 20,
      thresholds: [0.6, 0.7, 0.7] as [number, number, number],
      factor: 0.709,
    };
    expect(await runMtcnnCascade([image], networks, options)).toEqual([[]]);
    // The first level (121×91, as facenet-pytorch rounds) above the limit goes in strips; the smaller ones whole; afterPNet last.
    expect(calls.filter((c) => c === 'strip of 11011').length).toBeGreaterThan(1);
    expect(calls.some((c) => c.startsWith('level of'))).toBe(true);
    expect(calls.indexOf('afterPNet')).toBe(calls.length - 1);
    // A failing strip: the error reaches the caller, and afterPNet still ran, once.
    const before = calls.length;
    failAt = before + 1;
    await expect(runMtcnnCascade([image], networks, options)).rejects.toThrow('P-Net failed');
    expect(calls.slice(before)).toEqual(['strip of 11011', 'afterPNet']);
  });
});

describe('MtcnnDetector working copy', () => {
  it('finds no face, resampling and running nothing, in a frame above the working size too thin for one', async () => {
    // 25,000,000×1 (a 73 KB PNG): its shorter side shrinks below 12 px, so no face fits. Widened to 12 px, the
    // working copy was 14,400,000×12 (173 megapixels, 19 GB of memory while detecting).
    const never = () => {
      throw new Error('must not be called');
    };
    // Not a thenable (the loader's promise resolves to it), otherwise nothing may be read.
    const networks = new Proxy(
      {},
      { get: (_, key) => (key === 'then' ? undefined : never) },
    ) as unknown as MtcnnNetworks;
    const detector = new MtcnnDetector('test', async () => networks);
    const thin = { width: 25_000_000, height: 1, data: new Uint8Array(25_000_000 * 3) };
    const flat = { width: 2_000_000, height: 12, data: new Uint8Array(2_000_000 * 12 * 3) };
    expect(await detector.detectFaces([thin, flat])).toEqual([
      { faces: [], crops: [] },
      { faces: [], crops: [] },
    ]);
  });
});

describe('MtcnnDetector and dispose()', () => {
  /** Networks that find nothing, record their calls, refuse runs once released, and hold P-Net on `gate`. */
  const recording = (gate: Promise<void> = Promise.resolve()) => {
    const calls: string[] = [];
    /** P-Net's input sizes, height × width. */
    const sizes: number[] = [];
    let released = false;
    const run = (name: string) => {
      if (released) throw new Error('Session already disposed.');
      calls.push(name);
    };
    const networks: MtcnnNetworks = {
      pnet: async (_input, count, height, width) => {
        await gate;
        run('pnet');
        sizes.push(height * width);
        return faceless(count, height, width);
      },
      rnet: async (_input, count) => {
        run('rnet');
        return { reg: new Float32Array(4 * count), prob: new Float32Array(2 * count) };
      },
      onet: async (_input, count) => {
        run('onet');
        return {
          reg: new Float32Array(4 * count),
          landmarks: new Float32Array(10 * count),
          prob: new Float32Array(2 * count),
        };
      },
      dispose: async () => {
        released = true;
        calls.push('dispose');
      },
    };
    return { networks, calls, sizes };
  };
  const image = { width: 40, height: 30, data: new Uint8Array(40 * 30 * 3) };

  it('refuses a detection asked for after dispose() while another runs, with no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let open!: () => void;
      const { networks, calls } = recording(new Promise<void>((resolve) => (open = resolve)));
      const detector = new MtcnnDetector('test', async () => networks);
      const first = detector.detect(image);
      await new Promise((resolve) => setTimeout(resolve, 20)); // the first run now waits inside P-Net
      const disposing = detector.dispose();
      const late = detector.detect(image);
      late.catch(() => undefined); // awaited below; only the detector's own promises are watched
      await new Promise((resolve) => setTimeout(resolve, 50)); // time for Node to report an unhandled rejection
      open();
      expect(await first).toEqual([]);
      await expect(late).rejects.toBeInstanceOf(DisposedError);
      await disposing;
      expect(calls.at(-1)).toBe('dispose');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('finishes a warm-up asked for just before dispose() before releasing the networks', async () => {
    const { networks, calls } = recording();
    const detector = new MtcnnDetector('test', async () => networks);
    const warm = detector.warmUp({ width: 40, height: 30 });
    const disposing = detector.dispose(); // same tick
    await warm;
    await disposing;
    expect(calls.filter((c) => c === 'pnet').length).toBeGreaterThan(0);
    expect(calls.indexOf('dispose')).toBe(calls.length - 1);
    await expect(detector.warmUp()).rejects.toBeInstanceOf(DisposedError);
  });

  it('warms a frame above the working size up on its working copy, as detections run it', async () => {
    const { networks, sizes } = recording();
    const reserved: number[] = [];
    networks.reserve = (pixels) => reserved.push(pixels);
    // 400×300 above 10,000 pixels: a 115×86 working copy, with the minimum face size scaled alike (20 → 12), so
    // a first level at scale 1: 116×87 (facenet-pytorch's int(side · scale + 1)). Before: 241×181, the frame's.
    const detector = new MtcnnDetector('test', async () => networks, { maxPixels: 10_000 });
    await detector.warmUp({ width: 400, height: 300 });
    expect(reserved).toEqual([116 * 87]);
    expect(Math.max(...sizes)).toBe(116 * 87);
    // Detecting such a frame runs the same sizes.
    const warmUpSizes = new Set(sizes);
    sizes.length = 0;
    await detector.detect({ width: 400, height: 300, data: new Uint8Array(400 * 300 * 3) });
    expect(new Set(sizes)).toEqual(warmUpSizes);
    // A frame whose working copy is too thin for P-Net (12×5,000,000 → 0×1,414): nothing to run there.
    sizes.length = 0;
    await detector.warmUp({ width: 12, height: 5_000_000 });
    expect(sizes).toEqual([]);
    await detector.dispose();
  });
});
