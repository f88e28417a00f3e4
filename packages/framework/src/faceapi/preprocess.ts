/**
 * face-api.js's input pipeline for FaceRecognitionNet (`NetInput.toBatchTensor(150, true)` on a tensor
 * input, then `normalize(x, meanRgb) / 256`), reproduced exactly so any backend can feed the network what
 * face-api.js feeds it.
 */
import type { EmbedderPreprocessing } from '../contracts/embedder.js';
import { assertRgbImage } from '../contracts/validate.js';
import { InvalidInputError } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import { FACEAPI_RESNET_INPUT_SIZE } from './architecture.js';

/** Mean RGB face-api.js subtracts before the recognition net (dlib's training mean). */
export const FACEAPI_MEAN_RGB: readonly [number, number, number] = Object.freeze([
  122.782, 117.001, 104.298,
]) as [number, number, number];

/**
 * What face-api.js divides the mean-subtracted pixels by. justadudewhohacks/face-api.js (which produced the
 * reference descriptors) divides by 256; @vladmandic/face-api's rewrite divides by 255, which moves its
 * descriptors by about 0.01 (Euclidean) from the reference ones.
 */
export const FACEAPI_PIXEL_DIVISOR = 256;

/**
 * The recognition net's preprocessing in {@link EmbedderPreprocessing} terms: 150×150 RGB,
 * `(pixel − mean) / 256` per channel, cut with face-api.js's own geometry (`eyes-mouth`: the square its
 * `withFaceDescriptors()` cuts, from the eye and mouth centres), which scored best of every crop policy in
 * scripts/bench-crops.ts (see the README's "Recognition" table). `layout` is the ONNX graph's (NCHW); tfjs runs
 * the same numbers NHWC.
 */
export const FACEAPI_PREPROCESSING: EmbedderPreprocessing = Object.freeze({
  inputSize: Object.freeze({ width: FACEAPI_RESNET_INPUT_SIZE, height: FACEAPI_RESNET_INPUT_SIZE }),
  crop: Object.freeze({
    size: Object.freeze({ width: FACEAPI_RESNET_INPUT_SIZE, height: FACEAPI_RESNET_INPUT_SIZE }),
    shape: 'eyes-mouth',
    margin: 0,
  }),
  layout: 'NCHW',
  channelOrder: 'RGB',
  mean: FACEAPI_MEAN_RGB,
  std: Object.freeze([FACEAPI_PIXEL_DIVISOR, FACEAPI_PIXEL_DIVISOR, FACEAPI_PIXEL_DIVISOR]) as [
    number,
    number,
    number,
  ],
}) as EmbedderPreprocessing;

/**
 * An RGB image with float samples (0–255 scale), HWC like {@link RgbImage}: what tfjs holds after padding
 * and resizing, before any rounding.
 */
export interface FloatRgbImage {
  readonly width: number;
  readonly height: number;
  /** `height * width * 3` samples, R, G, B per pixel, rows top to bottom. */
  readonly data: Float32Array;
}

/**
 * face-api.js `padToSquare(x, isCenterImage = true)`: pads the shorter side with black to a square. Of the
 * `d` missing rows (or columns), `Math.round(d / 2)` go after the image (bottom / right) and the rest before.
 */
export function padToSquareCentered(image: RgbImage | FloatRgbImage): FloatRgbImage {
  const { width, height, data } = image;
  const side = Math.max(width, height);
  const diff = side - Math.min(width, height);
  const before = diff - Math.round(diff * 0.5);
  const left = height > width ? before : 0;
  const top = width > height ? before : 0;
  const out = new Float32Array(side * side * 3);
  for (let y = 0; y < height; y++) {
    const src = y * width * 3;
    const dst = ((y + top) * side + left) * 3;
    for (let i = 0; i < width * 3; i++) out[dst + i] = data[src + i]!;
  }
  return { width: side, height: side, data: out };
}

/**
 * `tf.image.resizeBilinear(x, [height, width])` with its defaults (`alignCorners = false`,
 * `halfPixelCenters = false`), as tfjs's CPU kernel computes it: source coordinate `dst · in / out`, the
 * neighbour clamped at the last row/column, interpolated in double precision and stored as float32.
 */
export function resizeBilinearTfjs(image: FloatRgbImage, width: number, height: number): FloatRgbImage {
  const { width: inW, height: inH, data } = image;
  const out = new Float32Array(width * height * 3);
  const rowRatio = inH / height;
  const colRatio = inW / width;
  let o = 0;
  for (let r = 0; r < height; r++) {
    const fr = rowRatio * r;
    const r0 = Math.max(0, Math.floor(fr));
    const dr = fr - r0;
    const r1 = Math.min(inH - 1, Math.ceil(fr));
    for (let c = 0; c < width; c++) {
      const fc = colRatio * c;
      const c0 = Math.max(0, Math.floor(fc));
      const dc = fc - c0;
      const c1 = Math.min(inW - 1, Math.ceil(fc));
      const tl = (r0 * inW + c0) * 3;
      const tr = (r0 * inW + c1) * 3;
      const bl = (r1 * inW + c0) * 3;
      const br = (r1 * inW + c1) * 3;
      for (let k = 0; k < 3; k++) {
        const top = data[tl + k]! + (data[tr + k]! - data[tl + k]!) * dc;
        const bottom = data[bl + k]! + (data[br + k]! - data[bl + k]!) * dc;
        out[o++] = top + (bottom - top) * dr;
      }
    }
  }
  return { width, height, data: out };
}

/**
 * The 150×150 image face-api.js's recognition net sees for a whole image: padded to a centred square with
 * black, then resized bilinearly (tfjs semantics) to 150×150, unrounded. A 150×150 image passes unchanged.
 * This is face-api.js's path for tensor inputs; for `<img>`/canvas inputs browsers resample with their own
 * filter, which moves descriptors by a few hundredths.
 *
 * @throws InvalidInputError for a malformed image.
 * @example
 * const input = faceApiInput(await decodeImage(bytes)); // { width: 150, height: 150, data: Float32Array }
 */
export function faceApiInput(image: RgbImage): FloatRgbImage {
  assertRgbImage(image);
  const size = FACEAPI_RESNET_INPUT_SIZE;
  const square = padToSquareCentered(image);
  if (square.width === size) return square;
  return resizeBilinearTfjs(square, size, size);
}

/**
 * {@link faceApiInput} rounded to 8 bits, as a 150×150 {@link RgbImage} crop for `FaceEmbedder.embed`. The
 * rounding (at most half a grey level) moves raw descriptors by about 0.002–0.004; use the float input where the
 * embedder accepts it to match face-api.js exactly.
 */
export function prepareFaceApiInput(image: RgbImage): RgbImage {
  const { width, height, data } = faceApiInput(image);
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = Math.min(255, Math.max(0, Math.round(data[i]!)));
  return { width, height, data: out };
}

/**
 * Writes 150×150 inputs (8-bit crops or {@link faceApiInput} results) into one float32 batch, normalised
 * as the net expects: `(pixel − FACEAPI_MEAN_RGB) / 256`, laid out NCHW (ONNX) or NHWC (tfjs).
 *
 * @throws InvalidInputError when an input is not 150×150 or its data has the wrong length.
 */
export function toFaceApiBatch(
  inputs: readonly (RgbImage | FloatRgbImage)[],
  layout: 'NCHW' | 'NHWC' = 'NCHW',
): Float32Array {
  const size = FACEAPI_RESNET_INPUT_SIZE;
  const plane = size * size;
  const out = new Float32Array(inputs.length * 3 * plane);
  const inv = 1 / FACEAPI_PIXEL_DIVISOR;
  inputs.forEach((input, n) => {
    assertFaceApiInput(input, `input ${n}`);
    const d = input.data;
    const base = n * 3 * plane;
    for (let c = 0; c < 3; c++) {
      const mean = FACEAPI_MEAN_RGB[c]!;
      if (layout === 'NCHW') {
        const o = base + c * plane;
        for (let i = 0; i < plane; i++) out[o + i] = (d[3 * i + c]! - mean) * inv;
      } else {
        for (let i = 0; i < plane; i++) out[base + 3 * i + c] = (d[3 * i + c]! - mean) * inv;
      }
    }
  });
  return out;
}

/** Throws InvalidInputError unless `input` is a well-formed 150×150 RGB image (8-bit or float). */
export function assertFaceApiInput(input: RgbImage | FloatRgbImage, what = 'input'): void {
  if (typeof input === 'object' && input !== null && input.data instanceof Float32Array) {
    const { width, height, data } = input;
    if (data.length !== width * height * 3 || !Number.isInteger(width) || !Number.isInteger(height)) {
      throw new InvalidInputError(
        `${what} has ${data.length} float samples; a ${String(width)}×${String(height)} RGB image needs ${width * height * 3}`,
      );
    }
    // NaN and ±Infinity: onnxruntime and tfjs's cpu backend propagate them to the output (refused there), tfjs's
    // wasm backend turned them into a finite descriptor of nothing.
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new InvalidInputError(`${what} has a sample that is not a finite number (at index ${bad})`);
  } else {
    assertRgbImage(input as RgbImage, what);
  }
  const size = FACEAPI_RESNET_INPUT_SIZE;
  if (input.width !== size || input.height !== size) {
    throw new InvalidInputError(
      `${what} is ${input.width}×${input.height}; the face-api.js recognition net takes ${size}×${size} (see faceApiInput)`,
    );
  }
}
