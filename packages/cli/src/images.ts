import { readFile } from 'node:fs/promises';
import { decodeImage, FacerecInputError, InvalidInputError, type RgbImage } from '@facerec/framework';
import { debugWanted, info } from './output.js';

/**
 * One image's failure on stderr, prefixed with the image unless it is {@link readInput}'s, which names it; with
 * `FACEREC_DEBUG` set, its stack trace too, as for every other error.
 */
export function reportImageError(image: string, error: Error): void {
  if (debugWanted()) info(String(error.stack));
  const { message } = error;
  info(message.startsWith(`cannot read ${image}: `) ? message : `${image}: ${message}`);
}

/**
 * Runs `each` on every image file in turn, decoded. An image that is bad input (bytes that are not an image,
 * an unsupported format, a refused size, …) is reported on stderr and handed to `failed`, and does not hide
 * the results for the others; it still fails the command (exit code 2). Other errors (a model that cannot be
 * downloaded, …) stop the command: they are not about one image, and exit with code 1.
 */
export async function forEachImage(
  images: readonly string[],
  each: (image: string, decoded: RgbImage) => Promise<void>,
  failed?: (image: string, message: string) => void,
): Promise<void> {
  let failures = 0;
  for (const image of images) {
    try {
      await each(image, await decodeImage(await readInput(image)));
    } catch (error) {
      if (!FacerecInputError.isInstance(error)) throw error;
      failures++;
      reportImageError(image, error);
      failed?.(image, error.message);
    }
  }
  if (failures) process.exitCode = 2;
}

/**
 * A file named on the command line: one that is missing, a folder or unreadable is the caller's mistake
 * (exit code 2, the other files still run), not an internal error.
 */
export async function readInput(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a folder'
          : code === 'EACCES'
            ? 'permission denied'
            : undefined;
    if (!why) throw error;
    throw new InvalidInputError(`cannot read ${file}: ${why}`, { cause: error });
  }
}

/** {@link readInput}, decoded; a file that is not a usable image is bad input naming it (exit code 2). */
export async function decodeInput(file: string): Promise<RgbImage> {
  const bytes = await readInput(file);
  try {
    return await decodeImage(bytes);
  } catch (error) {
    if (!FacerecInputError.isInstance(error)) throw error;
    throw new InvalidInputError(`${file}: ${error.message}`, { cause: error });
  }
}
