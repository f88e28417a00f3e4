import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { assertRgbImage } from '../contracts/validate.js';
import {
  ImageTooLargeError,
  InvalidImageError,
  InvalidInputError,
  InvalidOptionsError,
  UnsupportedImageFormatError,
} from '../errors.js';
import { readFileUpTo } from '../fs.js';
import { parseOptions } from '../options.js';
import { detectImageFormat, isSupportedImageFormat, SUPPORTED_IMAGE_FORMATS } from './format.js';
import { DEFAULT_DECODE_LIMITS, type DecodeLimits, decodeLimitsSchema } from './limits.js';
import type { RgbImage } from './types.js';

export {
  DEFAULT_DECODE_LIMITS,
  type DecodeLimits,
  decodeLimitsSchema,
  MAX_DECODE_LIMITS,
} from './limits.js';

/**
 * Embedded ICC profiles are ignored, as Pillow's `Image.open(...).convert('RGB')` ignores them: the
 * reference implementation (facenet-pytorch) sees the raw decoded samples, and converting to sRGB moved
 * its face crops by about 5 grey levels on the reference photos that carry a profile; ignoring it makes
 * them bit-identical. CMYK images are still converted, through libvips' built-in CMYK profile.
 */
const IGNORE_ICC = true;

/**
 * The longest side decoded: JPEG's own largest (WebP's is 16,383). Within the pixel limit a PNG can be 1 px by
 * 25,000,000 (97 KB), which libvips takes 15 s to decode, line by line.
 */
export const MAX_IMAGE_SIDE = 65_535;

/**
 * The most scans a JPEG may have. Encoders write 1 (baseline) to about 15 (progressive; 14 at most among the
 * shared test photos); each scan is a pass over the whole image, so 2,000 of them in a 280 KB file took 16 s to
 * decode at 25 megapixels, 65× a normal progressive JPEG.
 */
export const MAX_JPEG_SCANS = 100;

/**
 * Start-of-scan markers (0xFF 0xDA) in JPEG bytes. Entropy-coded data stuffs every 0xFF with 0x00, so the pair
 * occurs only as a marker (or inside an embedded thumbnail, itself a JPEG): an upper bound on the scans, counted
 * with native `indexOf` in milliseconds for megabytes. libvips offers no scan limit to set.
 */
function jpegScans(bytes: Uint8Array): number {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const marker = Buffer.from([0xff, 0xda]);
  let count = 0;
  for (let at = buffer.indexOf(marker); at !== -1; at = buffer.indexOf(marker, at + 2)) {
    if (++count > MAX_JPEG_SCANS) break;
  }
  return count;
}

/**
 * `error` rather than the stricter default `warning`: libjpeg warns about harmless quirks (stray bytes
 * between markers) that many cameras write, while truncation and corrupt data are still errors, so a
 * truncated JPEG fails instead of decoding to grey padding.
 */
const FAIL_ON = 'error' as const;

function resolveLimits(limits: DecodeLimits | undefined, component = 'decodeImage'): Required<DecodeLimits> {
  const parsed = parseOptions(decodeLimitsSchema, limits, component);
  return {
    maxBytes: parsed?.maxBytes ?? DEFAULT_DECODE_LIMITS.maxBytes,
    maxPixels: parsed?.maxPixels ?? DEFAULT_DECODE_LIMITS.maxPixels,
  };
}

/**
 * The decoder's message on one line: libvips repeats a warning once per scanline it affects ("VipsJpeg:
 * Premature end of JPEG file" five times over), which made a multi-line answer of a 422. Distinct lines, at
 * most three, joined; the whole error stays the `cause`.
 */
export function decoderMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // A line an earlier one already says is left out too: sharp puts libvips' first line after its own prefix
  // ("Input buffer has corrupt header: VipsJpeg: …"), and libvips then repeats that line alone.
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line, i, all) => line && !all.slice(0, i).some((earlier) => earlier.includes(line)));
  return lines.slice(0, 3).join('; ') + (lines.length > 3 ? '; …' : '');
}

/**
 * Reads an image file (or a stream: `process.stdin`) for {@link decodeImage} under the same byte limit: a file
 * over `maxBytes` is refused by its size before it is read, and a pipe, device or stream (which has no size)
 * once more than `maxBytes` have come, so a huge file or `/dev/zero` is never loaded only to be refused.
 *
 * @param limits - overrides of {@link DEFAULT_DECODE_LIMITS} (only `maxBytes` applies here).
 * @throws {@link ImageTooLargeError} over `maxBytes`; file-system errors (ENOENT, EISDIR, EACCES) as they are.
 * @example
 * const image = await decodeImage(await readImageFile('face.jpg'));
 */
export async function readImageFile(
  file: string | AsyncIterable<Uint8Array>,
  limits?: DecodeLimits,
): Promise<Buffer> {
  // Async, so that bad limits reject as every other failure does instead of throwing before the promise.
  const { maxBytes } = resolveLimits(limits, 'readImageFile');
  return readFileUpTo(file, maxBytes, (size) => {
    if (size !== undefined) return new ImageTooLargeError('bytes', size, maxBytes);
    // A pipe, device or stream: its size is unknown, only that more than the limit came.
    const error = new ImageTooLargeError('bytes', maxBytes + 1, maxBytes);
    error.message = `Image too large: more than the limit of ${maxBytes} bytes (not a regular file; read no further)`;
    return error;
  });
}

/**
 * The width and height of encoded image bytes as {@link decodeImage} will find them: a supported format, its header
 * read by libvips (off the event loop), nothing decoded. Undefined when the bytes are no supported image or their
 * header cannot be read from them (it may lie past a prefix given). What the local runtime weighs a frame by
 * before it decodes it: a header reader of its own could be made to read another size than the decoder does.
 */
export async function readImageSize(
  bytes: Uint8Array,
): Promise<{ width: number; height: number } | undefined> {
  const format = detectImageFormat(bytes);
  if (format === undefined || !isSupportedImageFormat(format)) return undefined;
  try {
    const metadata = await sharp(bytes, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
    const { width, height } = metadata;
    return metadata.format === format && width > 0 && height > 0 ? { width, height } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Decodes a JPEG, PNG or WebP into packed 8-bit RGB, applying the EXIF orientation.
 *
 * Untrusted input is checked cheaply before anything expensive happens: first the byte length, then the
 * format from the magic bytes (so SVG and other formats are never handed to the decoder), then the pixel
 * count from the header. Alpha is dropped (not blended onto a background, matching PIL's
 * `convert('RGB')`), grey images are expanded to RGB, and embedded ICC profiles are ignored (also like
 * Pillow, so pixels match what facenet-pytorch sees).
 *
 * @param bytes - the encoded file.
 * @param limits - overrides of {@link DEFAULT_DECODE_LIMITS}.
 * @throws {@link ImageTooLargeError} over `maxBytes` (`limit: 'bytes'`) or `maxPixels` (`limit: 'pixels'`).
 * @throws {@link UnsupportedImageFormatError} for a recognised format other than JPEG, PNG or WebP (GIF,
 *   TIFF, BMP, HEIF/AVIF, SVG, ...).
 * @throws {@link InvalidImageError} for unrecognised bytes and for corrupt or truncated images; for a side
 *   longer than {@link MAX_IMAGE_SIDE} and a JPEG of more than {@link MAX_JPEG_SCANS} scans (decoding costs
 *   far beyond what its pixels would: seconds for a 100 KB file).
 * @throws {@link InvalidOptionsError} when `limits` holds anything but positive integers or unknown keys.
 * @throws {@link InvalidInputError} when `bytes` is not a `Uint8Array`/`Buffer`.
 *
 * @example
 * const image = await decodeImage(await readFile('face.jpg'), { maxPixels: 12_000_000 });
 * image.data.length === image.width * image.height * 3; // true
 */
export async function decodeImage(bytes: Uint8Array, limits?: DecodeLimits): Promise<RgbImage> {
  if (!(bytes instanceof Uint8Array)) {
    throw new InvalidInputError('decodeImage: expected the encoded image as a Uint8Array or Buffer');
  }
  const { maxBytes, maxPixels } = resolveLimits(limits);
  if (bytes.byteLength > maxBytes) throw new ImageTooLargeError('bytes', bytes.byteLength, maxBytes);
  if (bytes.byteLength === 0) throw new InvalidImageError('Empty input: no image bytes');

  const format = detectImageFormat(bytes);
  if (format === undefined) {
    throw new InvalidImageError('Not an image: the bytes match no known image signature');
  }
  if (!isSupportedImageFormat(format)) throw new UnsupportedImageFormatError(format, SUPPORTED_IMAGE_FORMATS);

  // sharp would refuse an oversized header with a bare message and no dimensions; reading the header
  // without its limit lets the error report the real size. metadata() parses headers only.
  let metadata: Metadata;
  try {
    metadata = await sharp(bytes, { failOn: FAIL_ON, limitInputPixels: false }).metadata();
  } catch (error) {
    throw new InvalidImageError(`Corrupt ${format} header: ${decoderMessage(error)}`, {
      format,
      cause: error,
    });
  }
  // libvips sniffs the format itself; a disagreement means bytes crafted to pass our check as one format
  // and be parsed as another, so it is refused rather than decoded.
  if (metadata.format !== format) {
    throw new InvalidImageError(`Image signature says ${format} but the decoder found ${metadata.format}`, {
      format,
    });
  }
  const { width, height } = metadata;
  if (!(width > 0 && height > 0)) {
    throw new InvalidImageError(`Invalid ${format} dimensions ${width}×${height}`, { format });
  }
  if (width * height > maxPixels) {
    throw new ImageTooLargeError('pixels', width * height, maxPixels, `${width}×${height}`);
  }
  if (Math.max(width, height) > MAX_IMAGE_SIDE) {
    // Not an ImageTooLargeError: no limit raises it.
    throw new InvalidImageError(
      `Image ${width}×${height} has a side longer than ${MAX_IMAGE_SIDE} pixels, the longest decoded`,
      { format },
    );
  }
  if (format === 'jpeg' && jpegScans(bytes) > MAX_JPEG_SCANS) {
    throw new InvalidImageError(
      `JPEG with more than ${MAX_JPEG_SCANS} scans (encoders write up to about 15): refused, as each scan is a pass over the whole image`,
      { format },
    );
  }

  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await sharp(bytes, {
      failOn: FAIL_ON,
      limitInputPixels: maxPixels,
      autoOrient: true,
      ignoreIcc: IGNORE_ICC,
    })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true }));
  } catch (error) {
    throw new InvalidImageError(`Corrupt ${format} image: ${decoderMessage(error)}`, {
      format,
      cause: error,
    });
  }
  if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
    throw new InvalidImageError(
      `Decoder returned ${info.channels} channels and ${data.length} bytes for ${info.width}×${info.height}`,
      { format },
    );
  }
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
  };
}

const rawInput = (image: RgbImage) =>
  sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });

const asUint8Array = (buffer: Buffer): Uint8Array =>
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);

/**
 * Resizes an {@link RgbImage} to `width`×`height` (aspect not kept) with libvips, whose shrink-then-reduce
 * resampling works through the image in tiles: downscaling a 25-megapixel frame needs little memory beyond
 * the two images. Used to detect faces on a working copy of a very large frame.
 *
 * @throws {@link InvalidInputError} when `image` is not a well-formed {@link RgbImage}.
 */
export async function resizeRgb(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  assertRgbImage(image, 'resizeRgb: image');
  const data = await rawInput(image).resize({ width, height, fit: 'fill' }).raw().toBuffer();
  return { width, height, data: asUint8Array(data) };
}

/**
 * Encodes an {@link RgbImage} as PNG (lossless), e.g. to save face crops.
 *
 * @throws {@link InvalidInputError} when `image` is not a well-formed {@link RgbImage}.
 */
export async function encodePng(image: RgbImage): Promise<Uint8Array> {
  assertRgbImage(image, 'encodePng: image');
  return asUint8Array(await rawInput(image).png().toBuffer());
}

/**
 * Encodes an {@link RgbImage} as baseline JPEG.
 *
 * @param quality - 1 (smallest) to 100 (best); default 90.
 * @throws {@link InvalidInputError} when `image` is not a well-formed {@link RgbImage}.
 * @throws {@link InvalidOptionsError} when `quality` is not an integer from 1 to 100.
 */
export async function encodeJpeg(image: RgbImage, quality = 90): Promise<Uint8Array> {
  assertRgbImage(image, 'encodeJpeg: image');
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) {
    throw new InvalidOptionsError('encodeJpeg', `quality must be an integer from 1 to 100, got ${quality}`);
  }
  return asUint8Array(await rawInput(image).jpeg({ quality }).toBuffer());
}
