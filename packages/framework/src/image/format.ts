/** Image formats that {@link decodeImage} decodes. */
export const SUPPORTED_IMAGE_FORMATS = ['jpeg', 'png', 'webp'] as const;

/** A format {@link decodeImage} accepts. */
export type SupportedImageFormat = (typeof SUPPORTED_IMAGE_FORMATS)[number];

/** Formats recognised from their signature but refused: naming them gives callers a clearer error. */
export type UnsupportedImageFormat =
  | 'gif'
  | 'tiff'
  | 'bmp'
  | 'heif'
  | 'avif'
  | 'svg'
  | 'xml'
  | 'jp2'
  | 'jxl'
  | 'pdf'
  | 'psd'
  | 'exr';

/** Result of {@link detectImageFormat}. */
export type DetectedImageFormat = SupportedImageFormat | UnsupportedImageFormat;

const startsWith = (bytes: Uint8Array, signature: readonly number[], offset = 0): boolean => {
  if (bytes.length < offset + signature.length) return false;
  for (let i = 0; i < signature.length; i++) {
    if (bytes[offset + i] !== signature[i]) return false;
  }
  return true;
};

const ascii = (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0));

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG = [0xff, 0xd8, 0xff];
const RIFF = ascii('RIFF');
const WEBP = ascii('WEBP');
const FTYP = ascii('ftyp');
const JP2_BOX = [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a];
const JXL_BOX = [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a];
/** Sizes of the BITMAPINFOHEADER variants; checking one cuts false positives of the two-byte `BM` magic. */
const BMP_DIB_HEADER_SIZES = new Set([12, 40, 52, 56, 64, 108, 124]);
const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs', 'mif1', 'msf1']);

const latin1 = (bytes: Uint8Array, start: number, end: number): string =>
  String.fromCharCode(...bytes.subarray(start, Math.min(end, bytes.length)));

function detectIsoBmff(bytes: Uint8Array): 'heif' | 'avif' | undefined {
  if (!startsWith(bytes, FTYP, 4) || bytes.length < 12) return undefined;
  const boxSize = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  // Brands are the major brand (8..12) then compatible brands from 16 to the end of the ftyp box: an AVIF
  // may declare the generic `mif1` as major brand and `avif` only among the compatible ones.
  const brands = [latin1(bytes, 8, 12)];
  for (let at = 16; at + 4 <= Math.min(boxSize, bytes.length, 256); at += 4)
    brands.push(latin1(bytes, at, at + 4));
  if (brands.some((b) => AVIF_BRANDS.has(b))) return 'avif';
  if (brands.some((b) => HEIF_BRANDS.has(b))) return 'heif';
  return undefined;
}

/** Markup (SVG, XML, HTML) is text whose first non-blank character is `<`, after an optional UTF-8 BOM. */
function detectMarkup(bytes: Uint8Array): 'svg' | 'xml' | undefined {
  let at = startsWith(bytes, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (
    at < bytes.length &&
    (bytes[at] === 0x20 || bytes[at] === 0x09 || bytes[at] === 0x0a || bytes[at] === 0x0d)
  ) {
    at++;
  }
  if (bytes[at] !== 0x3c) return undefined;
  return latin1(bytes, at, at + 4096)
    .toLowerCase()
    .includes('<svg')
    ? 'svg'
    : 'xml';
}

/**
 * Identifies an image format from its leading bytes (magic numbers), without parsing the rest.
 *
 * Returns a supported format (`jpeg`, `png`, `webp`), a recognised but unsupported one (`gif`, `tiff`,
 * `svg`, ...), or `undefined` when the bytes match no known signature. SVG has no magic number, so any
 * text starting with `<` is reported as `svg` (when `<svg` appears early) or `xml`.
 *
 * @example
 * detectImageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])); // 'jpeg'
 */
export function detectImageFormat(bytes: Uint8Array): DetectedImageFormat | undefined {
  if (startsWith(bytes, JPEG)) return 'jpeg';
  if (startsWith(bytes, PNG)) return 'png';
  if (startsWith(bytes, RIFF) && startsWith(bytes, WEBP, 8)) return 'webp';
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'gif';
  if (
    startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) ||
    startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a]) ||
    startsWith(bytes, [0x49, 0x49, 0x2b, 0x00]) ||
    startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2b])
  ) {
    return 'tiff';
  }
  if (startsWith(bytes, ascii('BM')) && bytes.length >= 18) {
    const dibSize = bytes[14]! | (bytes[15]! << 8) | (bytes[16]! << 16) | (bytes[17]! << 24);
    if (BMP_DIB_HEADER_SIZES.has(dibSize)) return 'bmp';
  }
  const isoBmff = detectIsoBmff(bytes);
  if (isoBmff) return isoBmff;
  if (startsWith(bytes, JP2_BOX) || startsWith(bytes, [0xff, 0x4f, 0xff, 0x51])) return 'jp2';
  if (startsWith(bytes, JXL_BOX) || startsWith(bytes, [0xff, 0x0a])) return 'jxl';
  if (startsWith(bytes, ascii('%PDF-'))) return 'pdf';
  if (startsWith(bytes, ascii('8BPS'))) return 'psd';
  if (startsWith(bytes, [0x76, 0x2f, 0x31, 0x01])) return 'exr';
  return detectMarkup(bytes);
}

/** True when `format` is one {@link decodeImage} decodes. */
export function isSupportedImageFormat(format: string | undefined): format is SupportedImageFormat {
  return (SUPPORTED_IMAGE_FORMATS as readonly string[]).includes(format as string);
}
