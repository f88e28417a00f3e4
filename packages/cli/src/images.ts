import type { Dirent } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_DECODE_LIMITS,
  type DecodeLimits,
  decodeImage,
  ENROLL_EXTENSIONS,
  FacerecInputError,
  ImageTooLargeError,
  InvalidInputError,
  InvalidOptionsError,
  MAX_DECODE_LIMITS,
  type RgbImage,
  readImageFile,
} from '@facerec/framework';
import { visibleText } from '@facerec/framework/internal';
import { Option } from 'commander';
import { debugWanted, imageProgress, info, numberFlag, type RowProgress } from './output.js';

/** The decoder's limits for the images a command reads: `--max-image-bytes` and `--max-image-pixels`. */
export type ImageLimits = Required<DecodeLimits>;

/**
 * `--max-image-bytes`, for every command that reads images (with {@link maxImagePixelsOption}): the decoder's
 * limits, by default `DEFAULT_DECODE_LIMITS` and at most `MAX_DECODE_LIMITS`, as `FACEREC_MAX_IMAGE_*` on Lambda.
 */
export function maxImageBytesOption(): Option {
  return new Option(
    '--max-image-bytes <n>',
    `largest image file read, in bytes (default ${DEFAULT_DECODE_LIMITS.maxBytes}: 10 MiB; at most ${MAX_DECODE_LIMITS.maxBytes})`,
  );
}

/** `--max-image-pixels` (see {@link maxImageBytesOption}). */
export function maxImagePixelsOption(): Option {
  return new Option(
    '--max-image-pixels <n>',
    `largest image decoded, in pixels, width × height (default ${DEFAULT_DECODE_LIMITS.maxPixels}; at most ${MAX_DECODE_LIMITS.maxPixels}: a 48-megapixel photo needs 48000000)`,
  );
}

/** The values of {@link maxImageBytesOption} and {@link maxImagePixelsOption}, as commander gives them. */
export interface ImageLimitFlags {
  readonly maxImageBytes?: string;
  readonly maxImagePixels?: string;
}

/**
 * The limits those flags set; each checked before any image is read or model loaded, against
 * `MAX_DECODE_LIMITS` or the command's own lower `ceilings`.
 */
export function imageLimitsFlag(
  command: string,
  opts: ImageLimitFlags,
  ceilings: DecodeLimits = MAX_DECODE_LIMITS,
): ImageLimits {
  const limit = (flag: string, value: string | undefined, max: number) =>
    numberFlag(command, flag, value, { integer: true, min: 1024, max });
  return {
    maxBytes:
      limit('--max-image-bytes', opts.maxImageBytes, ceilings.maxBytes ?? MAX_DECODE_LIMITS.maxBytes) ??
      DEFAULT_DECODE_LIMITS.maxBytes,
    maxPixels:
      limit('--max-image-pixels', opts.maxImagePixels, ceilings.maxPixels ?? MAX_DECODE_LIMITS.maxPixels) ??
      DEFAULT_DECODE_LIMITS.maxPixels,
  };
}

/** The flag that sets a decoding limit, and the most it takes. */
function limitFlag(limit: 'bytes' | 'pixels'): { flag: string; ceiling: number } {
  return limit === 'bytes'
    ? { flag: '--max-image-bytes', ceiling: MAX_DECODE_LIMITS.maxBytes }
    : { flag: '--max-image-pixels', ceiling: MAX_DECODE_LIMITS.maxPixels };
}

/**
 * What would take the images refused as too large (an enrollment's skipped photos): each flag with the largest
 * value needed, and how many are beyond the flags' ceilings, to resize.
 */
export function tooLargeHint(
  over: readonly { readonly limit: 'bytes' | 'pixels'; readonly actual: number }[],
): string {
  const take: string[] = [];
  let beyond = 0;
  for (const limit of ['bytes', 'pixels'] as const) {
    const { flag, ceiling } = limitFlag(limit);
    const sizes = over.filter((o) => o.limit === limit).map((o) => o.actual);
    const within = sizes.filter((v) => v <= ceiling);
    beyond += sizes.length - within.length;
    if (within.length) take.push(`${flag} ${Math.max(...within)}`);
  }
  const taken = over.length - beyond;
  return [
    // With some beyond the ceilings, how many the flags take: "takes it" read as if it took all of them.
    take.length
      ? `${take.join(' and ')} ${take.length === 1 ? 'takes' : 'take'} ${beyond ? `${taken} of them` : taken === 1 ? 'it' : 'them'}`
      : '',
    beyond
      ? `${beyond} beyond ${MAX_DECODE_LIMITS.maxBytes} bytes or ${MAX_DECODE_LIMITS.maxPixels} pixels: resize ${beyond === 1 ? 'it' : 'them'}`
      : '',
  ]
    .filter(Boolean)
    .join('; ');
}

/**
 * An image over a limit, said with what to do: the flag and the value that would take it, when the flag can
 * go that high; else to resize it. A pipe or stream over the byte limit (`sized: false`) has no known size: the
 * flag is named without a value.
 */
function explainTooLarge(error: ImageTooLargeError, sized = true): ImageTooLargeError {
  const { limit, actual } = error;
  const { flag, ceiling } = limitFlag(limit);
  error.message += !sized
    ? `; ${flag} raises the limit (up to ${ceiling})`
    : actual > ceiling
      ? `; resize ${limit === 'bytes' ? 'or recompress ' : ''}it (${flag} goes up to ${ceiling})`
      : `; ${flag} ${actual} takes it`;
  return error;
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
/** How deep below a folder argument images are looked for. */
const MAX_FOLDER_DEPTH = 32;

/**
 * The image files that command-line arguments name: a file as given (whatever its extension: the decoder
 * decides), a folder as the images below it, recursively: files with the extensions `enroll` takes
 * (`ENROLL_EXTENSIONS`, any case), sorted by name folder by folder (32 folders deep at most), hidden files and
 * folders skipped, linked folders not followed (no cycles; a linked file is taken). A folder holding no image is refused, naming it, rather than doing nothing.
 * A shell glob of a large archive can exceed the system's argument limit; a folder cannot.
 */
export async function expandImageArguments(command: string, args: readonly string[]): Promise<string[]> {
  if (args.filter((arg) => arg === '-').length > 1) throw stdinTwice(command);
  const out: string[] = [];
  for (const arg of args) {
    const folder = await stat(arg).then(
      (s) => s.isDirectory(),
      () => false, // readInput names a missing or unreadable file when its turn comes
    );
    if (!folder) {
      out.push(arg);
      continue;
    }
    const found: string[] = [];
    // Files of other types, by extension: named when the folder holds no image at all.
    const others = new Map<string, number>();
    // By hand, not readdir's `recursive`, which follows linked folders (Node 20), into a loop for a link to a
    // folder above it.
    const walk = async (dir: string, depth: number): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        const why = UNREADABLE[(error as NodeJS.ErrnoException).code ?? ''];
        if (why === undefined) throw error;
        if (dir === arg) {
          throw new InvalidInputError(`cannot read the folder ${visibleText(dir)}: ${why}`, { cause: error });
        }
        // A folder below the one given: said, and its images left out; the others still run (exit code 2).
        info(`cannot read the folder ${visibleText(dir)}: ${why}; the images in it are left out`);
        process.exitCode = 2;
        return;
      }
      for (const entry of entries.sort((a, b) => byCodeUnit(a.name, b.name))) {
        if (entry.name.startsWith('.')) continue;
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          if (depth < MAX_FOLDER_DEPTH) await walk(file, depth + 1);
        } else if (
          ENROLL_EXTENSIONS.includes(path.extname(entry.name).toLowerCase()) &&
          (entry.isFile() ||
            (entry.isSymbolicLink() &&
              (await stat(file).then(
                (s) => s.isFile(),
                // A broken link named like an image is taken, so that reading it says so (as enroll lists it),
                // rather than skipped without a word.
                () => true,
              ))))
        ) {
          found.push(file);
        } else if (entry.isFile()) {
          const type = path.extname(entry.name).toLowerCase() || 'no extension';
          others.set(type, (others.get(type) ?? 0) + 1);
        } else if (
          ENROLL_EXTENSIONS.includes(path.extname(entry.name).toLowerCase()) &&
          !entry.isSymbolicLink()
        ) {
          // A FIFO, socket or device named like an image: not read (a FIFO nobody writes to would wait for
          // ever), but said, as enroll lists it, and the command fails as for a folder it cannot read.
          info(`${visibleText(file)}: not a regular file (a FIFO, socket or device); left out`);
          process.exitCode = 2;
        }
      }
    };
    await walk(arg, 0);
    if (!found.length) {
      const held = [...others].map(([type, n]) => `${n} ${type}`).join(', ');
      throw new InvalidOptionsError(
        command,
        `${arg} is a folder without images (${ENROLL_EXTENSIONS.join(', ')}, in it or below)${held ? `; it holds files of other types: ${held}` : ''}`,
      );
    }
    // A loop, not push(...found): a folder of 200,000 images (CelebA's) overflowed the call stack.
    for (const file of found) out.push(file);
  }
  return out;
}

/** `-` given twice: standard input holds one image, read once (the second read found it empty). */
export const stdinTwice = (command: string): InvalidOptionsError =>
  new InvalidOptionsError(command, '- (standard input) can be given once: it holds one image');

/**
 * One image's failure on stderr, prefixed with the image unless it is {@link readInput}'s, which names it; with
 * `FACEREC_DEBUG` set, its stack trace too, as for every other error.
 */
export function reportImageError(image: string, error: Error): void {
  if (debugWanted()) info(String(error.stack));
  const { message } = error;
  const shown = visibleText(image);
  info(message.startsWith(`cannot read ${shown}: `) ? message : `${shown}: ${message}`);
}

/**
 * Image runs in progress, worker providers open (their threads run or release models), and whether stdout's
 * reader went away: see {@link stdoutReaderGone}.
 */
let imageRuns = 0;
let workerProvidersOpen = 0;
let readerGone = false;

/**
 * Stdout's reader went away (`… | head`). An image run in progress stops starting images and ends normally once
 * those in flight have: their models may run on worker threads, and exiting under them aborted the process
 * (SIGABRT, now and then). So does a command whose worker threads are still open: after its run, while it
 * releases their models, a late EPIPE ended the process under them. Returns whether such work was in progress;
 * when none was, the caller ends the process.
 */
export function stdoutReaderGone(): boolean {
  readerGone = true;
  return imageRuns > 0 || workerProvidersOpen > 0;
}

/**
 * Says that worker threads run models until the function returned is called (once their provider is closed):
 * meanwhile stdout's reader going away does not end the process (see {@link stdoutReaderGone}).
 */
export function holdWhileWorkersRun(): () => void {
  workerProvidersOpen++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    workerProvidersOpen--;
  };
}

/** Whether stdout still has a reader: a loop over images stops starting new ones once it has none. */
export function stdoutWanted(): boolean {
  return !readerGone;
}

/**
 * Runs `each` on every image file, decoded. An image that is bad input (bytes that are not an image, an
 * unsupported format, a refused size, …) is reported on stderr and handed to `failed`, and does not hide the
 * results for the others; it still fails the command (exit code 2). Other errors (a model that cannot be
 * downloaded, …) stop the command: they are not about one image, and exit with code 1.
 *
 * With `concurrency` above 1, that many images are in flight at once (their decoding, and their models' work
 * on worker threads, overlap); what `each` returns — a function that prints its image's results — is called in
 * the images' order all the same, as are `failed` and the progress.
 */
export async function forEachImage(
  images: readonly string[],
  limits: ImageLimits,
  /** Resolves to nothing, or to a function that prints the image's results (called in the images' order). */
  each: (image: string, decoded: RgbImage, index: number) => Promise<unknown>,
  failed?: (image: string, message: string) => void,
  /** Show progress on stderr (for output that is not for people: --json's, --jsonl's). */
  progress?: RowProgress,
  concurrency = 1,
  /** What each image writes as it goes (detect's crops), said when a signal stops the command. */
  writtenAsItGoes?: string,
): Promise<void> {
  type Outcome = { report: unknown } | { bad: Error } | { fatal: unknown };
  const run = async (index: number): Promise<Outcome> => {
    const image = images[index]!;
    try {
      return { report: await each(image, await decodeWithin(await readInput(image, limits), limits), index) };
    } catch (error) {
      return FacerecInputError.isInstance(error) ? { bad: error } : { fatal: error };
    }
  };
  let failures = 0;
  let finished = 0;
  const shown = progress !== undefined && images.length > 1 ? imageProgress(progress.label) : undefined;
  const interrupted = onInterrupt(images.length, () => finished, progress, shown, writtenAsItGoes);
  const inFlight: Promise<Outcome>[] = [];
  imageRuns++;
  try {
    for (let next = 0, done = 0; done < images.length; done++, finished = done) {
      while (next < images.length && inFlight.length < Math.max(1, concurrency) && !readerGone)
        inFlight.push(run(next++));
      // Nobody reads the results any more (`| head`): the images in flight have ended, the rest are not started.
      if (inFlight.length === 0) break;
      const image = images[done]!;
      const outcome = await inFlight.shift()!;
      if ('fatal' in outcome) throw outcome.fatal;
      if ('bad' in outcome) {
        failures++;
        reportImageError(image, outcome.bad);
        failed?.(image, outcome.bad.message);
      } else if (typeof outcome.report === 'function') outcome.report();
      shown?.onProgress({ done: done + 1, total: images.length, file: image });
    }
  } finally {
    imageRuns--;
    interrupted.release();
    shown?.stop();
    // A fatal error leaves images in flight: let them end (their outcomes are not used) before the caller
    // disposes of the models they run on.
    await Promise.allSettled(inFlight);
  }
  reportFailures(images.length, failures);
}

/**
 * Closes a run over `total` images of which `failures` could not be used: after a long run the failures are far
 * up the output, so a count says why the exit code is 2.
 */
export function reportFailures(total: number, failures: number): void {
  if (!failures) return;
  if (total > 1) {
    info(
      `${total} images: ${total - failures} done, ${failures} could not be used (each named above; exit 2)`,
    );
  }
  process.exitCode = 2;
}

/**
 * Until `release()`, a Ctrl-C or SIGTERM says how far a run over `total` images got (`finished()` of them) and
 * what was written: output printed only at the end (`--json`) is not, text and `--jsonl` output is, for the
 * images done. The process then ends by the signal itself, as without the handler (exit status 128 + its
 * number): process.exit() here ran native destructors under onnxruntime's running inference and aborted. A
 * run over one image says nothing more than its own output.
 */
export function onInterrupt(
  total: number,
  finished: () => number,
  progress: RowProgress | undefined,
  shown: { stop(): void } | undefined,
  /** What each image writes as it goes (detect's crops). */
  writtenAsItGoes?: string,
): { release(): void } {
  const onSignal = (signal: NodeJS.Signals) => {
    shown?.stop();
    const written = writtenAsItGoes ? `${writtenAsItGoes} of the images done are written` : undefined;
    const done = `interrupted after ${finished()} of ${total} images`;
    info(
      progress?.format === 'json'
        ? `${done}: no results printed (--json prints them at the end; --jsonl as each image is done)` +
            (written ? `; ${written}` : ': nothing written')
        : `${done}: ${progress?.format === 'jsonl' ? 'their rows are out, on stdout' : 'their results are printed above'}` +
            (written ? `; ${written} (and of some in progress)` : ''),
    );
    release();
    process.kill(process.pid, signal);
  };
  const release = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  if (total > 1) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { release };
}

/** File-system errors that are about the path given (the caller's mistake), and how they are said. */
const UNREADABLE: Readonly<Record<string, string>> = Object.freeze({
  ENOENT: 'no such file',
  EISDIR: 'is a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ELOOP: 'a loop of symbolic links',
  ENOTDIR: 'a part of its path is a file, not a folder',
  ENAMETOOLONG: 'the name is too long',
  ENXIO: 'a special file with nothing to read from it',
});

/**
 * A file named on the command line: one that is missing, a folder or unreadable is the caller's mistake
 * (exit code 2, the other files still run), not an internal error; one over the decoder's byte limit is refused
 * before it is read (`ImageTooLargeError`, exit code 2). `-` is standard input.
 */
export async function readInput(file: string, limits: ImageLimits): Promise<Uint8Array> {
  try {
    return await readImageFile(file === '-' ? process.stdin : file, limits);
  } catch (error) {
    if (ImageTooLargeError.isInstance(error)) {
      // A file's size is known; standard input's, a pipe's or a device's is not.
      const sized =
        file !== '-' &&
        (await stat(file).then(
          (s) => s.isFile(),
          () => false,
        ));
      explainTooLarge(error, sized);
      error.message = `cannot read ${visibleText(file)}: ${error.message}`;
      throw error;
    }
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === undefined ? undefined : UNREADABLE[code];
    if (!why) throw error;
    // A link that leads nowhere is said as such (its target, not the link, is missing or loops).
    const link =
      file !== '-' &&
      (await lstat(file).then(
        (s) => s.isSymbolicLink(),
        () => false,
      ));
    throw new InvalidInputError(
      `cannot read ${visibleText(file)}: ${link ? `a broken link (${why})` : why}`,
      {
        cause: error,
      },
    );
  }
}

/** `decodeImage` under `limits`, an image over them said as {@link explainTooLarge} does. */
export async function decodeWithin(bytes: Uint8Array, limits: ImageLimits): Promise<RgbImage> {
  try {
    return await decodeImage(bytes, limits);
  } catch (error) {
    throw ImageTooLargeError.isInstance(error) ? explainTooLarge(error) : error;
  }
}

/**
 * {@link readInput}, decoded; a file that is not a usable image is bad input naming it (exit code 2), the error
 * keeping its class (`InvalidImageError`, `ImageTooLargeError`, …).
 */
export async function decodeInput(file: string, limits: ImageLimits): Promise<RgbImage> {
  const bytes = await readInput(file, limits);
  try {
    return await decodeWithin(bytes, limits);
  } catch (error) {
    if (FacerecInputError.isInstance(error)) error.message = `${visibleText(file)}: ${error.message}`;
    throw error;
  }
}
