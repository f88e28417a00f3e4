import { readFile } from 'node:fs/promises';
import { decodeImage, FacerecError, type RgbImage } from '@facerec/framework';
import { info } from './output.js';

/**
 * Runs `each` on every image file in turn, decoded. An image that fails with a facerec error (bytes that are
 * not an image, an unsupported format, a refused size, …) is reported on stderr and handed to `failed`, and
 * does not hide the results for the others; it still fails the command (exit code 2). Other errors propagate.
 */
export async function forEachImage(
  images: readonly string[],
  each: (image: string, decoded: RgbImage) => Promise<void>,
  failed?: (image: string, message: string) => void,
): Promise<void> {
  let failures = 0;
  for (const image of images) {
    try {
      await each(image, await decodeImage(await readFile(image)));
    } catch (error) {
      if (!FacerecError.isInstance(error)) throw error;
      failures++;
      info(`${image}: ${error.message}`);
      failed?.(image, error.message);
    }
  }
  if (failures) process.exitCode = 2;
}
