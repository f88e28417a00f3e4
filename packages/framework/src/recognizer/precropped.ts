/**
 * Pre-cropped faces: a photo that is itself a face crop (a gallery portrait, a passport-style photo) has the
 * face fill the whole frame, and MTCNN, whose P-Net needs some context around a face, may then find nothing,
 * or only a small spurious box (an eye, a mouth). Padding the frame gives it that context back.
 */
import type {
  DetectedFaces,
  DetectFacesOptions,
  FaceDetection,
  FaceDetector,
} from '../contracts/detector.js';
import type { RgbImage } from '../image/types.js';
import { boxArea } from '../mtcnn/cascade.js';
import { extractFace } from '../mtcnn/extract.js';

/** When the fallback runs, and what it accepts. */
export interface PrecroppedFallbackOptions {
  /** Frames whose longer side is larger than this are photos, not face crops: never padded. Default 640 px. */
  readonly maxFrameSize?: number;
  /** The fallback runs when the largest face covers less than this share of the frame (or none). Default 0.1. */
  readonly triggerShare?: number;
  /** A face found in the padded frame is kept when it covers at least this share of the original. Default 0.25. */
  readonly acceptShare?: number;
  /** Padding on each side, as a share of the frame's longer side (edges replicated). Default 0.5. */
  readonly padding?: number;
}

const DEFAULTS: Required<PrecroppedFallbackOptions> = {
  maxFrameSize: 640,
  triggerShare: 0.1,
  acceptShare: 0.25,
  padding: 0.5,
};

/** `image` with `pad` pixels added on every side, each copying the nearest edge pixel. */
function padEdges(image: RgbImage, pad: number): RgbImage {
  const { width, height } = image;
  const w = width + 2 * pad;
  const h = height + 2 * pad;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(height - 1, Math.max(0, y - pad));
    for (let x = 0; x < w; x++) {
      const sx = Math.min(width - 1, Math.max(0, x - pad));
      const from = (sy * width + sx) * 3;
      data.set(image.data.subarray(from, from + 3), (y * w + x) * 3);
    }
  }
  return { width: w, height: h, data };
}

/** The largest face's share of the frame (a loop, not Math.max(...): a detector may return 200,000 faces). */
const share = (faces: readonly FaceDetection[], image: RgbImage) =>
  faces.reduce((largest, face) => Math.max(largest, boxArea(face)), 0) / (image.width * image.height);

/** What the fallback needs of a detector: `detectFaces`, which enrollment's detectors have too. */
export type DetectFaces = FaceDetector['detectFaces'];

/**
 * `detectFaces` with the pre-cropped fallback (see {@link withPrecroppedFallback}): the wrapped function's own
 * answer, except for small frames where it finds no face or only faces far smaller than the frame, which are
 * padded and detected again.
 */
export function precroppedDetectFaces(
  detectFaces: DetectFaces,
  options: PrecroppedFallbackOptions = {},
): DetectFaces {
  const o = { ...DEFAULTS, ...options };
  const eligible = (image: RgbImage, faces: readonly FaceDetection[]) =>
    Math.max(image.width, image.height) <= o.maxFrameSize && share(faces, image) < o.triggerShare;
  return async (images, detectOptions: DetectFacesOptions = {}): Promise<DetectedFaces[]> => {
    // The wrapped detector's own answer (crop policy checked there), patched where the fallback finds a face.
    const first = await detectFaces(images, detectOptions);
    const indices = images.flatMap((image, i) => (eligible(image, first[i]!.faces) ? [i] : []));
    if (!indices.length) return first;
    const pads = indices.map((i) => Math.round(o.padding * Math.max(images[i]!.width, images[i]!.height)));
    const padded = await detectFaces(indices.map((i, k) => padEdges(images[i]!, pads[k]!)));
    const out = [...first];
    indices.forEach((i, k) => {
      const pad = pads[k]!;
      const faces = padded[k]!.faces.map(
        (f): FaceDetection => ({
          ...f,
          box: [f.box[0] - pad, f.box[1] - pad, f.box[2] - pad, f.box[3] - pad],
          landmarks: f.landmarks.map(([x, y]) => [x - pad, y - pad]) as FaceDetection['landmarks'],
        }),
      );
      if (share(faces, images[i]!) < o.acceptShare) return;
      const crop = detectOptions.crop;
      out[i] = { faces, crops: crop ? faces.map((f) => extractFace(images[i]!, f, crop)) : [] };
    });
    return out;
  };
}

/**
 * Wraps a detector so that a small frame in which it finds no face, or only faces far smaller than the frame,
 * is padded (edges replicated, half the longer side on every side) and detected again; when the padded
 * frame holds a face covering at least a quarter of the original, those detections replace the first ones,
 * in the original frame's coordinates (a box may extend past the frame, as MTCNN's own boxes do). Everywhere
 * else the results are the wrapped detector's own, unchanged: frames larger than `maxFrameSize` (640 px) and
 * frames with a face covering a tenth of them are never padded.
 *
 * Measured on `../shared/faces`: MTCNN alone finds every face of the 67 reference faces cut as 150 px `square`
 * crops, and the fallback adds nothing on the crop of the one false detection; bbt's leonard4 cut at the frame's
 * edges and stretched to a square (as other tools cut, and `square` did before it padded) gives MTCNN only a box
 * of 3 % of the frame, and the fallback finds it. bbt's own 150×150 face shots are all found without it.
 *
 * @example
 * const detector = withPrecroppedFallback(provider.detector('mtcnn'));
 * const [faces] = await detector.detectBatch([portraitCrop]);
 */
export function withPrecroppedFallback(
  detector: FaceDetector,
  options: PrecroppedFallbackOptions = {},
): FaceDetector {
  const detectFaces = precroppedDetectFaces(detector.detectFaces.bind(detector), options);
  const detectBatch = async (images: readonly RgbImage[]) => (await detectFaces(images)).map((f) => f.faces);
  return {
    specificationVersion: detector.specificationVersion,
    provider: detector.provider,
    modelId: detector.modelId,
    ready: () => detector.ready(),
    warmUp: (frame) => detector.warmUp(frame),
    dispose: () => detector.dispose(),
    detect: async (image) => (await detectBatch([image]))[0]!,
    detectBatch,
    detectFaces,
  };
}
