import { describe, expect, it } from 'vitest';
import type { FaceDetection } from '../contracts/detector.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import type { RgbImage } from '../image/types.js';
import { fakeDetector } from '../testing/fakes.js';
import { withPrecroppedFallback } from './precropped.js';

const frame = (width: number, height = width): RgbImage => ({
  width,
  height,
  data: new Uint8Array(width * height * 3).fill(90),
});

const face = (box: FaceDetection['box']): FaceDetection => ({
  box,
  score: 0.9,
  landmarks: [
    [box[0], box[1]],
    [box[2], box[1]],
    [box[0], box[3]],
    [box[2], box[3]],
    [box[0], box[1]],
  ],
});

/**
 * Finds a face only with context: in a frame at least twice `needs` wide, a face of `needs` px centred; in any
 * other frame, a spurious 2 px box (or nothing when `spurious` is false).
 */
function contextDetector(needs: number, spurious = true) {
  const seen: number[] = [];
  const detect = (image: RgbImage): FaceDetection[] => {
    seen.push(image.width);
    if (image.width >= 2 * needs) {
      const x = (image.width - needs) / 2;
      const y = (image.height - needs) / 2;
      return [face([x, y, x + needs, y + needs])];
    }
    return spurious ? [face([1, 1, 3, 3])] : [];
  };
  const detector = fakeDetector(detect);
  return { detector, seen };
}

describe('withPrecroppedFallback', () => {
  it('pads a small frame with only a tiny box, and maps the padded face back', async () => {
    const { detector, seen } = contextDetector(40);
    const wrapped = withPrecroppedFallback(detector);
    // 40 px frame + 2 × 20 px padding = 80 px: the face [20, 20, 60, 60] there is [0, 0, 40, 40] here.
    expect(await wrapped.detect(frame(40))).toEqual([face([0, 0, 40, 40])]);
    expect(seen).toEqual([40, 80]);
    const [cut] = await wrapped.detectFaces([frame(40)], {
      crop: { size: { width: 16, height: 16 }, shape: 'square', margin: 0 },
    });
    expect(cut!.crops.map((c) => [c.image.width, c.cropBox])).toEqual([[16, [0, 0, 40, 40]]]);
  });

  it('leaves everything else as the detector found it', async () => {
    // A face covering a tenth of the frame or more: never padded.
    const { detector, seen } = contextDetector(10);
    const wrapped = withPrecroppedFallback(detector);
    expect(await wrapped.detect(frame(20))).toEqual([face([5, 5, 15, 15])]);
    expect(seen).toEqual([20]);
    // A frame above maxFrameSize is a photo: its tiny box stays.
    const big = contextDetector(700);
    expect(await withPrecroppedFallback(big.detector).detect(frame(700))).toEqual([face([1, 1, 3, 3])]);
    expect(big.seen).toEqual([700]);
    // A padded face that still covers under a quarter of the frame is not accepted: the first answer stands.
    const small = contextDetector(10, false);
    const wrappedSmall = withPrecroppedFallback(small.detector, { padding: 0.1 });
    expect(await wrappedSmall.detect(frame(60))).toEqual([face([25, 25, 35, 35])]);
    expect(small.seen).toEqual([60, 72]);
  });

  it('delegates the rest of the contract', async () => {
    const { detector } = contextDetector(10);
    const wrapped = withPrecroppedFallback(detector);
    expect([wrapped.provider, wrapped.modelId, wrapped.specificationVersion]).toEqual([
      'test',
      'fake-detector',
      SPECIFICATION_VERSION,
    ]);
    expect(await wrapped.detectBatch([])).toEqual([]);
  });
});
