import type { Box, FaceCrop, FaceDetection } from '../contracts/detector.js';
import type { CropPolicy } from '../contracts/embedder.js';
import { resizeBilinearPil } from '../image/resample.js';
import type { RgbImage } from '../image/types.js';
import { boxArea } from './cascade.js';
import type { SelectionMethod } from './options.js';

/**
 * The integer crop box facenet-pytorch's `extract_face` uses: the box grown by `margin` pixels of the
 * final crop, truncated to ints and clamped to the image.
 */
export function cropBox(box: Box, width: number, height: number, imageSize: number, margin: number): Box {
  const mx = (margin * (box[2] - box[0])) / (imageSize - margin);
  const my = (margin * (box[3] - box[1])) / (imageSize - margin);
  const x1 = Math.trunc(Math.max(box[0] - mx / 2, 0));
  const y1 = Math.trunc(Math.max(box[1] - my / 2, 0));
  // A box entirely outside the image still yields a (1-pixel) crop rather than an empty one.
  const x2 = Math.max(Math.trunc(Math.min(box[2] + mx / 2, width)), x1 + 1);
  const y2 = Math.max(Math.trunc(Math.min(box[3] + my / 2, height)), y1 + 1);
  return [x1, y1, x2, y2];
}

/**
 * Cuts a face out of `image` with an embedder's crop policy, like facenet-pytorch's `extract_face`: the
 * region (`box`, or the `square` around it), grown by `margin`, clamped, then a PIL-compatible bilinear
 * resize to `crop.size`.
 */
export function extractFace(image: RgbImage, detection: FaceDetection, crop: CropPolicy): FaceCrop {
  const region = crop.shape === 'square' ? squareAround(detection.box) : detection.box;
  // facenet-pytorch grows the box by margin pixels of the final (square) crop; MTCNN crops are square.
  const box = cropBox(region, image.width, image.height, crop.size.width, crop.margin);
  return {
    detection,
    cropBox: box,
    image: resizeBilinearPil(image, box, [crop.size.width, crop.size.height]),
  };
}

/** The smallest square with the same centre as `box` that contains it. */
export function squareAround(box: Box): Box {
  const side = Math.max(box[2] - box[0], box[3] - box[1]);
  const cx = (box[0] + box[2]) / 2;
  const cy = (box[1] + box[3]) / 2;
  return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2];
}

/**
 * The standardised embedder input for a crop: `(x − 127.5) / 128`, CHW float32 (facenet-pytorch's
 * `fixed_image_standardization`, applied by MTCNN when `post_process=True`).
 */
export function standardiseCrop(crop: RgbImage): Float32Array {
  const n = crop.width * crop.height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    out[i] = (crop.data[3 * i]! - 127.5) / 128;
    out[n + i] = (crop.data[3 * i + 1]! - 127.5) / 128;
    out[2 * n + i] = (crop.data[3 * i + 2]! - 127.5) / 128;
  }
  return out;
}

/**
 * Picks one face as facenet-pytorch's `select_boxes` does; returns an empty array when none qualifies
 * (`largest_over_threshold` with no face above the threshold).
 */
export function selectFace(
  faces: readonly FaceDetection[],
  method: SelectionMethod,
  image: { width: number; height: number },
  probabilityThreshold: number,
): FaceDetection[] {
  if (faces.length === 0) return [];
  const by = (key: (f: FaceDetection) => number, pool: readonly FaceDetection[]) =>
    pool.reduce((best, f) => (key(f) > key(best) ? f : best));
  switch (method) {
    case 'largest':
      return [by(boxArea, faces)];
    case 'probability':
      return [by((f) => f.score, faces)];
    case 'largest_over_threshold': {
      const pool = faces.filter((f) => f.score > probabilityThreshold);
      return pool.length ? [by(boxArea, pool)] : [];
    }
    case 'center_weighted_size': {
      const cx = image.width / 2;
      const cy = image.height / 2;
      const centreWeight = 2.0;
      return [
        by((f) => {
          const dx = (f.box[0] + f.box[2]) / 2 - cx;
          const dy = (f.box[1] + f.box[3]) / 2 - cy;
          return boxArea(f) - (dx * dx + dy * dy) * centreWeight;
        }, faces),
      ];
    }
  }
}
