import { assertRgbImage } from '../contracts/validate.js';
import { InvalidInputError, InvalidOptionsError } from '../errors.js';
import type { RgbImage } from './types.js';
import { assertPositiveInteger } from './validate.js';

/**
 * Memory order of a multi-channel float image: `HWC` interleaves channels per pixel (as decoded images
 * are), `CHW` stores one full plane per channel (as NCHW tensors are, without the batch axis).
 */
export type ImageLayout = 'HWC' | 'CHW';

/**
 * Area resampling's windows: output `i` of `outSize` averages the half-open input range
 * `[floor(i*in/out), ceil((i+1)*in/out))`, with the ceiling taken as an integer floor so that no float
 * rounding can move a boundary (PyTorch's adaptive pooling uses integer division too; the quotients are
 * exact for any size below 2^26). Shared with the MTCNN cascade's summed-area resampling.
 */
export const areaWindowStart = (i: number, inSize: number, outSize: number): number =>
  Math.floor((i * inSize) / outSize);

/** One past the last input index of output `i`'s window (see {@link areaWindowStart}). */
export const areaWindowEnd = (i: number, inSize: number, outSize: number): number =>
  Math.floor(((i + 1) * inSize + outSize - 1) / outSize);

/** Every output's window, as {@link areaWindowStart} / {@link areaWindowEnd}. */
function areaRanges(inSize: number, outSize: number): { start: Int32Array; end: Int32Array } {
  const start = new Int32Array(outSize);
  const end = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) {
    start[i] = areaWindowStart(i, inSize, outSize);
    end[i] = areaWindowEnd(i, inSize, outSize);
  }
  return { start, end };
}

/**
 * Resizes a float image by area averaging, matching PyTorch's `F.interpolate(x, size, mode="area")`
 * (which is `adaptive_avg_pool2d`): output pixel `(i, j)` is the mean of the input rectangle
 * `[floor(i*srcH/dstH), ceil((i+1)*srcH/dstH)) × [floor(j*srcW/dstW), ceil((j+1)*srcW/dstW))`, per
 * channel. Works for downscaling, upscaling and non-integer ratios. The output has the input's layout.
 *
 * Separable (a row pass, then a column pass), with sums in float64; results agree with PyTorch to float32
 * rounding.
 *
 * @param src - `channels * srcH * srcW` samples in `layout` order.
 * @param out - optional destination of `channels * dstH * dstW` samples, not overlapping `src`, to reuse
 *   across calls: allocating a fresh multi-MB array per pyramid level costs more than the averaging
 *   where first-touched memory is slow (microVMs such as Lambda's).
 * @returns `out` when given, else a new array.
 * @throws {@link InvalidInputError} when a size is not a positive integer, or `src` or `out` has the wrong
 *   length.
 * @throws {@link InvalidOptionsError} when `layout` is neither `HWC` nor `CHW`.
 *
 * @example
 * // 1280×720 RGB frame to a 0.709-scale pyramid level, both HWC
 * const level = resizeArea(frame, 3, 720, 1280, 510, 907, 'HWC');
 */
export function resizeArea(
  src: Float32Array,
  channels: number,
  srcH: number,
  srcW: number,
  dstH: number,
  dstW: number,
  layout: ImageLayout,
  out?: Float32Array,
): Float32Array {
  const component = 'resizeArea';
  assertPositiveInteger(component, 'channels', channels);
  assertPositiveInteger(component, 'srcH', srcH);
  assertPositiveInteger(component, 'srcW', srcW);
  assertPositiveInteger(component, 'dstH', dstH);
  assertPositiveInteger(component, 'dstW', dstW);
  if (layout !== 'HWC' && layout !== 'CHW') {
    throw new InvalidOptionsError(component, `layout must be "HWC" or "CHW", got ${String(layout)}`);
  }
  if (!(src instanceof Float32Array) || src.length !== channels * srcH * srcW) {
    throw new InvalidInputError(
      `${component}: expected a Float32Array of ${channels}*${srcH}*${srcW} = ${channels * srcH * srcW} samples` +
        `, got ${src instanceof Float32Array ? src.length : typeof src}`,
    );
  }
  const outLength = channels * dstH * dstW;
  if (out !== undefined && (!(out instanceof Float32Array) || out.length !== outLength)) {
    throw new InvalidInputError(`${component}: out must be a Float32Array of ${outLength} samples`);
  }
  if (
    out !== undefined &&
    out.buffer === src.buffer &&
    out.byteOffset < src.byteOffset + src.byteLength &&
    src.byteOffset < out.byteOffset + out.byteLength
  ) {
    throw new InvalidInputError(`${component}: out must not overlap src`);
  }

  // Both layouts reduce to `planes` stacked H×W images whose pixels hold `inner` interleaved samples:
  // CHW is C planes of one sample, HWC is one plane of C samples.
  const planes = layout === 'CHW' ? channels : 1;
  const inner = layout === 'CHW' ? 1 : channels;
  const srcRow = srcW * inner;
  const dstRow = dstW * inner;
  const rows = areaRanges(srcH, dstH);
  const cols = areaRanges(srcW, dstW);
  const colScale = new Float64Array(dstW);
  for (let j = 0; j < dstW; j++) colScale[j] = 1 / (cols.end[j]! - cols.start[j]!);

  // The passes are fused one output row at a time through a single float64 row buffer. A whole
  // intermediate image would be ~15 MB per full frame, and first-touching freshly allocated memory costs
  // more than the arithmetic in Firecracker microVMs (as on Lambda): it made calls several times slower.
  const result = out ?? new Float32Array(outLength);
  const row = new Float64Array(srcRow);
  for (let p = 0; p < planes; p++) {
    for (let i = 0; i < dstH; i++) {
      const y0 = rows.start[i]!;
      const y1 = rows.end[i]!;
      row.fill(0);
      // No special case for one-row windows: every loop then gets type feedback from the first rows, and
      // V8's optimised code does not bail out later on a path it has not seen.
      for (let y = y0; y < y1; y++) {
        const r = (p * srcH + y) * srcRow;
        for (let k = 0; k < srcRow; k++) row[k] = row[k]! + src[r + k]!;
      }
      const rowScale = 1 / (y1 - y0);
      for (let k = 0; k < srcRow; k++) row[k] = row[k]! * rowScale;
      averageColumns(row, srcW, dstW, inner, cols.start, cols.end, colScale, result, (p * dstH + i) * dstRow);
    }
  }
  return result;
}

/**
 * Column pass over one row of `srcW` pixels of `inner` samples, written to `out` from `at`. RGB (`inner`
 * 3) and single samples get their own loops: keeping the sums in locals is several times faster than
 * the generic per-sample loop.
 */
function averageColumns(
  row: Float64Array,
  srcW: number,
  dstW: number,
  inner: number,
  start: Int32Array,
  end: Int32Array,
  scale: Float64Array,
  out: Float32Array,
  at: number,
): void {
  if (dstW === srcW) {
    for (let k = 0; k < row.length; k++) out[at + k] = row[k]!;
  } else if (inner === 3) {
    for (let j = 0; j < dstW; j++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let a = start[j]! * 3, last = end[j]! * 3; a < last; a += 3) {
        r += row[a]!;
        g += row[a + 1]!;
        b += row[a + 2]!;
      }
      const s = scale[j]!;
      out[at + j * 3] = r * s;
      out[at + j * 3 + 1] = g * s;
      out[at + j * 3 + 2] = b * s;
    }
  } else if (inner === 1) {
    for (let j = 0; j < dstW; j++) {
      let acc = 0;
      for (let a = start[j]!, last = end[j]!; a < last; a++) acc += row[a]!;
      out[at + j] = acc * scale[j]!;
    }
  } else {
    for (let j = 0; j < dstW; j++) {
      for (let c = 0; c < inner; c++) {
        let acc = 0;
        for (let a = start[j]! * inner + c, last = end[j]! * inner; a < last; a += inner) acc += row[a]!;
        out[at + j * inner + c] = acc * scale[j]!;
      }
    }
  }
}

/** Pillow's fixed-point precision for 8-bit resampling: 32 bits less 8 for the sample, less 2 for headroom. */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** Rounds a fixed-point accumulator to a sample the way Pillow's `clip8` does (saturating). */
const clip8 = (acc: number): number => (acc <= 0 ? 0 : acc >= 256 * ONE ? 255 : acc >> PRECISION_BITS);

const triangle = (x: number): number => {
  const a = x < 0 ? -x : x;
  return a < 1 ? 1 - a : 0;
};

interface PilCoefficients {
  /** Most taps any output sample uses; `weights` holds `ksize` slots per output sample. */
  readonly ksize: number;
  /** Per output sample: first input index, then number of taps. */
  readonly bounds: Int32Array;
  /** Fixed-point weights, `ksize` per output sample, zero past the sample's taps. */
  readonly weights: Int32Array;
}

/**
 * Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear (triangle) filter over an input
 * span `[0, inSize)`. Operations are kept in Pillow's order, in float64 like its C doubles, because a
 * different association can flip a coefficient's rounding and move an output sample by one level.
 */
function pilBilinearCoefficients(inSize: number, outSize: number): PilCoefficients {
  const scale = inSize / outSize;
  // Downscaling widens the triangle by the scale factor, which is what antialiases; upscaling keeps it at 1.
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // the triangle filter's own support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // C's (int) cast truncates toward zero; Math.trunc reproduces it, including for negative values.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const taps = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < taps; x++) {
      w[x] = triangle((x + xmin - center + 0.5) * ss);
      sum += w[x]!;
    }
    for (let x = 0; x < taps; x++) {
      const k = sum !== 0 ? w[x]! / sum : w[x]!;
      weights[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = taps;
  }
  return { ksize, bounds, weights };
}

/**
 * Cap on the working memory of one crop: far above any face crop (the full height of a 25 MP frame
 * resized to 1000 px wide needs 30 MB).
 */
const MAX_WORKING_BYTES = 1 << 30;

/** A crop rectangle in whole pixels: `[left, top, right, bottom]`, right and bottom exclusive. */
export type CropBox = readonly [left: number, top: number, right: number, bottom: number];

/**
 * Crops and resizes an RGB image exactly as Pillow's `img.crop(box).resize(size, Image.BILINEAR)` does
 * for 8-bit RGB, bit for bit: an antialiased triangle filter (support widened by the downscale factor),
 * applied horizontally then vertically, with Pillow's 22-bit fixed-point coefficients and rounding to 8
 * bits after each pass. facenet-pytorch cuts its face crops this way, so matching it keeps embeddings
 * comparable with the reference implementation.
 *
 * Parts of `box` outside the image read as black, as with Pillow's `crop`.
 *
 * @param box - integer `[left, top, right, bottom]`, with `right > left` and `bottom > top`; may extend
 *   past the image.
 * @param size - output `[width, height]`.
 * @throws {@link InvalidInputError} for a malformed image, a non-integer or empty box, or a bad size.
 *
 * @example
 * // facenet-pytorch's extract_face with margin 0 and image_size 160
 * const box = [Math.trunc(Math.max(x1, 0)), Math.trunc(Math.max(y1, 0)),
 *   Math.trunc(Math.min(x2, image.width)), Math.trunc(Math.min(y2, image.height))] as const;
 * const crop = resizeBilinearPil(image, box, [160, 160]);
 */
export function resizeBilinearPil(src: RgbImage, box: CropBox, size: readonly [number, number]): RgbImage {
  const component = 'resizeBilinearPil';
  assertRgbImage(src, `${component}: image`);
  if (!Array.isArray(box) || box.length !== 4 || !box.every((v) => Number.isSafeInteger(v))) {
    throw new InvalidInputError(`${component}: box must be four integers [left, top, right, bottom]`);
  }
  const [left, top, right, bottom] = box;
  if (right <= left || bottom <= top) {
    throw new InvalidInputError(`${component}: box [${box.join(', ')}] is empty`);
  }
  if (!Array.isArray(size) || size.length !== 2) {
    throw new InvalidInputError(`${component}: size must be [width, height]`);
  }
  const [outW, outH] = size;
  assertPositiveInteger(component, 'width', outW);
  assertPositiveInteger(component, 'height', outH);

  const cropW = right - left;
  const cropH = bottom - top;
  // Boxes come from detectors and sit near the image, but a wild one (huge, or far outside) would
  // otherwise surface as an engine RangeError from an allocation instead of a typed input error. Bound:
  // the intermediate (at most cropH rows of outW pixels), the output, and ~2 int32 coefficients per input
  // and output sample on each axis.
  const workingBytes = (cropH + outH) * outW * 3 + 4 * (2 * (cropW + cropH) + 3 * (outW + outH));
  if (workingBytes > MAX_WORKING_BYTES) {
    throw new InvalidInputError(
      `${component}: box [${box.join(', ')}] resized to ${outW}×${outH} needs more than ${MAX_WORKING_BYTES} bytes`,
    );
  }
  const horizontal = pilBilinearCoefficients(cropW, outW);
  const vertical = pilBilinearCoefficients(cropH, outH);

  // Like Pillow, the horizontal pass only produces the crop rows that some output row reads.
  const firstRow = vertical.bounds[0]!;
  const lastRow = vertical.bounds[(outH - 1) * 2]! + vertical.bounds[(outH - 1) * 2 + 1]!;
  const tmpH = lastRow - firstRow;

  // Taps that fall outside the source image multiply black pixels and add nothing, so each output column
  // keeps only its in-image taps; this is how the crop's black padding is applied without materialising it.
  const tapFrom = new Int32Array(outW);
  const tapTo = new Int32Array(outW);
  for (let xx = 0; xx < outW; xx++) {
    const first = left + horizontal.bounds[xx * 2]!;
    tapFrom[xx] = Math.max(0, -first);
    tapTo[xx] = Math.max(tapFrom[xx]!, Math.min(horizontal.bounds[xx * 2 + 1]!, src.width - first));
  }

  const { data, width } = src;
  // Hot loops below read the coefficient arrays through locals (not object properties), keep to 32-bit
  // integer arithmetic, and the vertical pass walks rows in memory order, accumulating a whole output row at
  // once. Exact: weights are non-negative and sum to about 2^22, so every partial sum of 8-bit samples times
  // weights stays below 2^31 (no wrap-around), and integer additions in any order give the same result.
  const hBounds = horizontal.bounds;
  const hWeights = horizontal.weights;
  const hSize = horizontal.ksize;
  const tmp = new Uint8Array(outW * tmpH * 3);
  for (let y = 0; y < tmpH; y++) {
    const sy = top + firstRow + y;
    // A crop row outside the image is all black; the zero-filled buffer already holds that.
    if (sy < 0 || sy >= src.height) continue;
    const rowBase = sy * width;
    const tmpBase = y * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      let r = HALF;
      let g = HALF;
      let b = HALF;
      const kBase = xx * hSize;
      const pxBase = rowBase + left + hBounds[xx * 2]!;
      for (let x = tapFrom[xx]!, end = tapTo[xx]!; x < end; x++) {
        const k = hWeights[kBase + x]!;
        const at = (pxBase + x) * 3;
        r = (r + Math.imul(data[at]!, k)) | 0;
        g = (g + Math.imul(data[at + 1]!, k)) | 0;
        b = (b + Math.imul(data[at + 2]!, k)) | 0;
      }
      const o = tmpBase + xx * 3;
      tmp[o] = clip8(r);
      tmp[o + 1] = clip8(g);
      tmp[o + 2] = clip8(b);
    }
  }

  const rowLen = outW * 3;
  const vBounds = vertical.bounds;
  const vWeights = vertical.weights;
  const vSize = vertical.ksize;
  const out = new Uint8Array(outH * rowLen);
  const acc = new Int32Array(rowLen);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = vBounds[yy * 2]! - firstRow;
    const taps = vBounds[yy * 2 + 1]!;
    const kBase = yy * vSize;
    acc.fill(HALF);
    for (let y = 0; y < taps; y++) {
      const k = vWeights[kBase + y]!;
      if (k === 0) continue;
      const from = (ymin + y) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] = (acc[i]! + Math.imul(tmp[from + i]!, k)) | 0;
    }
    const o = yy * rowLen;
    for (let i = 0; i < rowLen; i++) out[o + i] = clip8(acc[i]!);
  }
  return { width: outW, height: outH, data: out };
}
