import { InvalidInputError } from '../errors.js';
import type { RgbImage } from '../image/types.js';

/**
 * Checks that `image` is a well-formed {@link RgbImage}; providers call this before touching the pixels so a
 * malformed image becomes an `InvalidInputError` naming what is wrong, not an out-of-bounds read.
 */
export function assertRgbImage(image: RgbImage, what = 'image'): void {
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
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new InvalidInputError(`${what} has invalid dimensions ${String(width)}×${String(height)}`);
  }
  if (!(data instanceof Uint8Array)) throw new InvalidInputError(`${what}.data must be a Uint8Array`);
  if (data.length !== width * height * 3) {
    throw new InvalidInputError(
      `${what}.data has ${data.length} bytes; a ${width}×${height} RGB image needs ${width * height * 3}`,
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
