import type { Box, FaceCrop, FaceDetection } from '../contracts/detector.js';
import type { CropPolicy } from '../contracts/embedder.js';
import { assertRgbImage } from '../contracts/validate.js';
import { resizeBilinearPil } from '../image/resample.js';
import type { RgbImage } from '../image/types.js';
import { alignedCropTransform, eyesMouthSquare, warpFootprint, warpSimilarity } from './align.js';
import { boxArea } from './cascade.js';
import { parseCuttableCropPolicy } from './crop.js';
import type { SelectionMethod } from './options.js';

/**
 * The integer crop box facenet-pytorch's `extract_face` uses: the box grown by `margin` pixels of the
 * final crop, truncated to ints and clamped to the image (with `clampAtZero` false, a left or top edge left
 * of or above the image stays there, rounded down: the `square` policy's unclamped square).
 */
export function cropBox(
  box: Box,
  width: number,
  height: number,
  imageSize: number,
  margin: number,
  clampAtZero = true,
): Box {
  const mx = (margin * (box[2] - box[0])) / (imageSize - margin);
  const my = (margin * (box[3] - box[1])) / (imageSize - margin);
  const low = clampAtZero ? (v: number) => Math.trunc(Math.max(v, 0)) : Math.floor;
  const x1 = low(box[0] - mx / 2);
  const y1 = low(box[1] - my / 2);
  // A box entirely outside the image still yields a (1-pixel) crop rather than an empty one.
  const x2 = Math.max(Math.trunc(Math.min(box[2] + mx / 2, width)), x1 + 1);
  const y2 = Math.max(Math.trunc(Math.min(box[3] + my / 2, height)), y1 + 1);
  return [x1, y1, x2, y2];
}

/**
 * Cuts a face out of `image` with an embedder's crop policy (see `CropPolicy.shape`), always one resampling of
 * the frame's pixels:
 * - `box`: like facenet-pytorch's `extract_face` — the box grown by `margin`, clamped to the image, then a
 *   PIL-compatible bilinear resize to `crop.size` (the facenet-pytorch reference path, bit for bit);
 * - `square`: the same for the smallest square around the box, cut at the frame's edges; a cut that is not
 *   square is padded back to one with black on the side(s) the frame cut off, so that a face at the frame's
 *   edge keeps its aspect ratio (stretched, a square cut to a third of its width filled the crop 3× too wide).
 *   A face shot tighter than the square on every side is cut whole, unpadded, as before;
 * - `eyes-mouth`: face-api.js's crop for its recognition net, frame edges included ({@link eyesMouthCrop});
 * - `aligned`: a similarity warp that fits the five landmarks to dlib's template ({@link warpSimilarity});
 *   its `cropBox` is the integer box around the (rotated) region.
 */
export function extractFace(image: RgbImage, detection: FaceDetection, crop: CropPolicy): FaceCrop {
  parseCuttableCropPolicy(crop, 'extractFace crop');
  return cutFace(image, detection, crop);
}

/**
 * {@link extractFace} of a crop policy checked already, once per call rather than once per face (MTCNN's
 * `detectFaces`, whose options were parsed).
 */
export function cutFace(image: RgbImage, detection: FaceDetection, crop: CropPolicy): FaceCrop {
  const size = crop.size.width;
  if (crop.shape === 'aligned') {
    const transform = alignedCropTransform(detection.landmarks, size, crop.margin);
    return {
      detection,
      cropBox: warpFootprint(transform, size),
      image: warpSimilarity(image, transform, size),
    };
  }
  if (crop.shape === 'eyes-mouth') return eyesMouthCrop(image, detection, crop);
  if (crop.shape === 'square') return squareCrop(image, detection, crop);
  // facenet-pytorch grows the box by margin pixels of the final (square) crop; MTCNN crops are square.
  const box = cropBox(detection.box, image.width, image.height, size, crop.margin);
  return { detection, cropBox: box, image: resizeBilinearPil(image, box, [size, crop.size.height]) };
}

/**
 * A face image already cut out (a crop file, a crop another tool made) brought to `crop.size` as the crop policy
 * shapes a face: stretched for `box` (facenet-pytorch resizes its box whatever its aspect), padded to a centred
 * square with black and then resized for the square policies (`square`, `eyes-mouth`, `aligned`: face-api.js's
 * `padToSquare` before its net). An image of that size already is returned as it is. Stretching a 122×178 crop
 * to face-api.js's 150×150 instead moved its descriptor 0.30 from face-api.js's own (0.035 for a square crop).
 *
 * @example
 * const input = fitFaceCrop(await decodeImage(cropBytes), embedder.preprocessing.crop);
 * const [embedding] = await embedder.embed([input]);
 */
export function fitFaceCrop(image: RgbImage, crop: CropPolicy): RgbImage {
  assertRgbImage(image, 'fitFaceCrop: image');
  parseCuttableCropPolicy(crop, 'fitFaceCrop crop');
  const { width, height } = crop.size;
  if (image.width === width && image.height === height) return image;
  const whole: Box = [0, 0, image.width, image.height];
  if (crop.shape === 'box') return resizeBilinearPil(image, whole, [width, height]);
  // face-api.js's padToSquare(x, true): of the d missing columns (rows), round(d / 2) go after the image.
  const missing = Math.abs(image.width - image.height);
  return paddedToSquare(image, whole, missing - Math.round(missing / 2), crop);
}

/**
 * face-api.js's crop for its recognition net, as its `withFaceDescriptors()` cuts it (`alignDlib`, then
 * `extractFaceTensors`, then `NetInput.toBatchTensor`): the {@link eyesMouthSquare} (widened by `margin` pixels of
 * the final crop), cut at the frame's edges, and the part inside padded back to a centred square with black before
 * the resize (PIL-compatible bilinear, like the other policies; face-api.js's tfjs resize scores the same in
 * scripts/bench-crops.ts). On a face shot tighter than that square (../shared/faces/face-api.js/bbt) the crop is
 * the whole frame, as in face-api.js's own examples, which describe those shots whole.
 *
 * One difference: face-api.js moves a square that starts left of or above the frame inside it rather than
 * cutting it. Its 68 landmarks never leave the detection box, so that shift is small there; MTCNN places the
 * landmarks of a face cut by the frame where the face would be, outside it, and moving the square would swap
 * the missing half-face for background (../shared/faces: AUC 0.9997 cutting vs 0.9981 moving on the photos,
 * equal on the bbt face shots).
 */
function eyesMouthCrop(image: RgbImage, detection: FaceDetection, crop: CropPolicy): FaceCrop {
  const size = crop.size.width;
  const cut = cutAtFrame(image, eyesMouthSquare(detection.landmarks, size / (size - crop.margin)));
  const w = cut[2] - cut[0];
  const h = cut[3] - cut[1];
  // face-api.js's padToSquare(x, true): of the d missing columns (rows), round(d / 2) go after the image.
  const missing = Math.max(w, h) - Math.min(w, h);
  return {
    detection,
    cropBox: cut,
    image: paddedToSquare(image, cut, missing - Math.round(missing / 2), crop),
  };
}

/** The part of an integer box inside the frame; a box entirely outside still yields 1 pixel, not none. */
function cutAtFrame(image: RgbImage, box: Box): Box {
  const x1 = Math.min(Math.max(0, box[0]), image.width - 1);
  const y1 = Math.min(Math.max(0, box[1]), image.height - 1);
  return [
    x1,
    y1,
    Math.max(Math.min(image.width, box[2]), x1 + 1),
    Math.max(Math.min(image.height, box[3]), y1 + 1),
  ];
}

/**
 * `cut` padded back to a square with black, `before` of the missing columns (or rows) before it, and resized
 * to the crop's size.
 */
function paddedToSquare(image: RgbImage, cut: Box, before: number, crop: CropPolicy): RgbImage {
  const w = cut[2] - cut[0];
  const h = cut[3] - cut[1];
  const side = Math.max(w, h);
  const left = h > w ? before : 0;
  const top = w > h ? before : 0;
  return resizeBilinearPil(
    copyRegion(image, cut),
    [-left, -top, side - left, side - top],
    [crop.size.width, crop.size.height],
  );
}

/** The `square` policy (see {@link extractFace}). */
function squareCrop(image: RgbImage, detection: FaceDetection, crop: CropPolicy): FaceCrop {
  const size = crop.size.width;
  const whole = cropBox(squareAround(detection.box), Infinity, Infinity, size, crop.margin, false);
  const cut = cutAtFrame(image, whole);
  const w = cut[2] - cut[0];
  const h = cut[3] - cut[1];
  // Inside the frame, or cut square (a face shot tighter than the square): the cut as it is, as `box` does.
  if (w === h || cut.every((v, i) => v === whole[i])) {
    return { detection, cropBox: cut, image: resizeBilinearPil(image, cut, [size, crop.size.height]) };
  }
  // The padding goes where the frame cut the square off, in proportion (a face at the left edge keeps its place).
  const missing = Math.max(w, h) - Math.min(w, h);
  const [before, after] =
    w < h ? [cut[0] - whole[0], whole[2] - cut[2]] : [cut[1] - whole[1], whole[3] - cut[3]];
  const lead =
    before + after > 0
      ? Math.round((missing * before) / (before + after))
      : missing - Math.round(missing / 2);
  return { detection, cropBox: cut, image: paddedToSquare(image, cut, lead, crop) };
}

/** The pixels of an integer box inside `image`, as their own image (so a resize reads black around them). */
function copyRegion(image: RgbImage, [x1, y1, x2, y2]: Box): RgbImage {
  const width = x2 - x1;
  const height = y2 - y1;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((y1 + y) * image.width + x1) * 3;
    data.set(image.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, data };
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
