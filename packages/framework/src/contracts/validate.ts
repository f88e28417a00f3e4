import { InvalidInputError } from '../errors.js';
import type { RgbImage } from '../image/types.js';

/**
 * Checks that `image` is a well-formed {@link RgbImage}; providers call this before touching the pixels so a
 * malformed image becomes an `InvalidInputError` naming what is wrong, not an out-of-bounds read. It takes any
 * value (JavaScript callers and other libraries' images reach it) and says what was passed instead.
 */
export function assertRgbImage(image: unknown, what = 'image'): asserts image is RgbImage {
  // An encoded file (bytes) or its path where decoded pixels belong: say how to get them.
  if (typeof image === 'string' || image instanceof Uint8Array || image instanceof ArrayBuffer) {
    const given = typeof image === 'string' ? 'a path' : 'encoded bytes';
    throw new InvalidInputError(
      `${what} is ${given}, not an RgbImage (decoded pixels): decode it first, decodeImage(${typeof image === 'string' ? 'await readImageFile(path)' : 'bytes'})`,
    );
  }
  if (typeof image !== 'object' || image === null) throw new InvalidInputError(`${what} is not an RgbImage`);
  // The common slip: detectFaces' crops passed as they come ({ detection, cropBox, image }).
  if (!('width' in image) && 'image' in image && 'cropBox' in image) {
    throw new InvalidInputError(
      `${what} is a FaceCrop ({ detection, cropBox, image }), not an RgbImage: pass its .image (crops.map((c) => c.image))`,
    );
  }
  // Other libraries' images, said with what to pass instead (their dimensions read as undefined otherwise).
  if ('shape' in image && Array.isArray(image.shape) && 'dtype' in image) {
    throw new InvalidInputError(
      `${what} is a tensor, not an RgbImage: pass { width, height, data } with data a Uint8Array of RGB bytes (for a tf.Tensor3D of int32 pixels: { width: shape[1], height: shape[0], data: Uint8Array.from(tensor.dataSync()) })`,
    );
  }
  if (!('width' in image) && 'info' in image && typeof image.info === 'object' && 'data' in image) {
    throw new InvalidInputError(
      `${what} is sharp's { data, info }, not an RgbImage: pass { width: info.width, height: info.height, data } of 3-channel raw pixels (sharp: .removeAlpha().raw())`,
    );
  }
  const width = 'width' in image ? image.width : undefined;
  const height = 'height' in image ? image.height : undefined;
  const data = 'data' in image ? image.data : undefined;
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (typeof value !== 'number') {
      // Quoted, cut: "invalid dimensions 4×4" read as valid.
      throw new InvalidInputError(
        `${what}.${name} is ${typeof value === 'string' ? `the string ${JSON.stringify(value.slice(0, 20))}` : String(value === null ? null : typeof value)}: it must be a whole number ≥ 1`,
      );
    }
  }
  if (
    typeof width !== 'number' ||
    typeof height !== 'number' ||
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    width < 1 ||
    height < 1
  ) {
    throw new InvalidInputError(`${what} has invalid dimensions ${width}×${height} (whole numbers ≥ 1)`);
  }
  if (!(data instanceof Uint8Array)) {
    const hint =
      data instanceof Uint8ClampedArray
        ? data.length === width * height * 4
          ? ' of RGB bytes (this one holds RGBA, as a canvas ImageData does: drop every fourth byte)'
          : ' (for a Uint8ClampedArray of RGB bytes: new Uint8Array(data.buffer, data.byteOffset, data.length))'
        : '';
    throw new InvalidInputError(`${what}.data must be a Uint8Array${hint}`);
  }
  if (data.length !== width * height * 3) {
    const channels = data.length / (width * height);
    const hint =
      channels === 4
        ? ' (4 bytes per pixel: RGBA? drop the alpha channel)'
        : channels === 1
          ? ' (1 byte per pixel: greyscale? repeat it in 3 channels)'
          : '';
    throw new InvalidInputError(
      `${what}.data has ${data.length} bytes; a ${width}×${height} RGB image needs ${width * height * 3}${hint}`,
    );
  }
}

/**
 * Checks a batch of face crops for an embedder: an array of well-formed images, each exactly the embedder's
 * input size. Every crop is checked before any inference, so one bad crop fails the call without wasted work.
 */
export function assertEmbedderInputs(
  faces: readonly RgbImage[],
  inputSize: { readonly width: number; readonly height: number },
  modelId: string,
): void {
  if (!Array.isArray(faces)) throw new InvalidInputError('embed: faces must be an array of RgbImage crops');
  const { width, height } = inputSize;
  // An indexed loop, not forEach, which skips the holes of a sparse array (they would embed as black crops).
  for (let i = 0; i < faces.length; i++) {
    const face = faces[i]!;
    assertRgbImage(face, `face ${i}`);
    if (face.width !== width || face.height !== height) {
      throw new InvalidInputError(
        `face ${i} is ${face.width}×${face.height}; ${modelId} takes ${width}×${height} crops`,
      );
    }
  }
}
