export type { DecodeLimits } from './decode.js';
export {
  DEFAULT_DECODE_LIMITS,
  decodeImage,
  encodeJpeg,
  encodePng,
  MAX_DECODE_LIMITS,
  readImageFile,
  resizeRgb,
} from './decode.js';
export type { DetectedImageFormat, SupportedImageFormat, UnsupportedImageFormat } from './format.js';
export { detectImageFormat, isSupportedImageFormat, SUPPORTED_IMAGE_FORMATS } from './format.js';
export type { CropBox, ImageLayout } from './resample.js';
export { resizeArea, resizeBilinearPil } from './resample.js';
export type { RgbImage } from './types.js';
