import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type {
  FaceEmbedder,
  Gallery,
  GalleryCalibration,
  ModelRegistry,
  ResolvedThreshold,
} from '@facerec/framework';
import {
  calibrationPrecisionMismatch,
  type EmbedderPrecision,
  FacerecError,
  FacerecInputError,
  FileGallery,
  GalleryStoreNotFoundError,
  InvalidOptionsError,
  MODELS_MIRROR_ENV,
  missingThresholdMessage,
  type PullProgress,
  resolveThreshold,
} from '@facerec/framework';
import { makeFolder, visibleText } from '@facerec/framework/internal';
import cliProgress from 'cli-progress';
import { Option } from 'commander';

/**
 * Creates the folder a command writes its files in (`--crops-dir`), before any work (a model loaded, a worker
 * started): a file in the way, a folder it may not write in or one that cannot be made there is the caller's
 * mistake, said naming the flag (exit code 2), not an unexpected error.
 */
export async function prepareOutputFolder(command: string, flag: string, dir: string): Promise<void> {
  try {
    await makeFolder(dir);
    await access(dir, constants.W_OK);
  } catch (error) {
    const { code, path: where } = error as NodeJS.ErrnoException;
    const why =
      code === 'ENOTDIR' || code === 'EEXIST'
        ? where === undefined || where === path.resolve(dir)
          ? 'is a file, not a folder'
          : `a part of it, ${where}, is a file, not a folder`
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EROFS'
            ? 'on a read-only file system'
            : code === 'ENOENT'
              ? 'no folder can be made there'
              : undefined;
    if (why === undefined) throw error;
    throw new InvalidOptionsError(command, `${flag} ${dir}: ${why}`, { cause: error });
  }
}

/**
 * Checks a gallery file a command is about to (over)write, before any work: a folder there, or a file that is
 * no gallery, is refused (nothing is overwritten that facerec did not write); an existing gallery is replaced
 * with one stderr line saying what it held.
 */
export async function checkGalleryOut(command: string, file: string): Promise<void> {
  const found = await stat(file).catch((error: NodeJS.ErrnoException) => {
    // A part of the path is a file: the gallery could never be written there (found before any work).
    if (error.code === 'ENOTDIR') {
      throw new InvalidOptionsError(
        command,
        `--out ${file}: a part of ${path.dirname(file)} is a file, not a folder`,
      );
    }
    return undefined;
  });
  // The gallery is written through a temporary file beside it: its folder (or the nearest folder above that
  // exists, where the missing ones will be made) must take new files; found before the work, not after it.
  let folder = path.resolve(path.dirname(file));
  while (
    !(await stat(folder).then(
      (s) => s.isDirectory(),
      () => false,
    )) &&
    path.dirname(folder) !== folder
  )
    folder = path.dirname(folder);
  await access(folder, constants.W_OK).catch((error: NodeJS.ErrnoException) => {
    throw new InvalidOptionsError(
      command,
      `--out ${file}: cannot write in ${folder} (${error.code === 'EROFS' ? 'a read-only file system' : 'permission denied'})`,
      { cause: error },
    );
  });
  if (!found) return;
  if (found.isDirectory()) {
    throw new InvalidOptionsError(
      command,
      `--out ${file} is a folder; give a file name (e.g. ${path.join(file, 'gallery.json')})`,
    );
  }
  const existing = await FileGallery.load(file).catch(() => undefined);
  if (!existing) {
    throw new InvalidOptionsError(
      command,
      `--out ${file} exists and is not a gallery file; not overwriting it (choose another name, or delete it first)`,
    );
  }
  info(
    `replacing the gallery at ${file} (${count(existing.size, 'identity', 'identities')}, ` +
      `${count(existing.exampleCount, 'example')}${existing.calibration ? ', calibrated' : ''})`,
  );
}

/**
 * A gallery file named by `flag` (`--gallery` of recognize and gallery calibrate, `--out` of enroll and gallery
 * calibrate): a path, or a `file://` URL turned into one; another URL is refused naming the commands that take
 * stores (and never repeated back: it may hold a password).
 */
export function galleryFile(command: string, value: string, flag = '--gallery'): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined) return value;
  if (scheme === 'file') {
    try {
      return fileURLToPath(value);
    } catch (error) {
      throw new InvalidOptionsError(
        command,
        `${flag}: ${(error as Error).message}: a file URL has three slashes before an absolute path (file:///folder/gallery.json)`,
      );
    }
  }
  throw new InvalidOptionsError(
    command,
    `${flag} takes a gallery file (a path or a file:// URL); ${scheme}:// is not one. For a store (s3://, ` +
      'postgres://), `facerec gallery add/search/list` and `facerec serve --gallery <store>` take its URL',
  );
}

/**
 * Runs `open` on a gallery that must exist (recognize, calibrate, serve); a missing one is refused naming how
 * to create it, instead of the library's hint.
 */
export async function openExistingGallery<T>(open: () => Promise<T>, given?: string): Promise<T> {
  try {
    return await open();
  } catch (error) {
    if (!GalleryStoreNotFoundError.isInstance(error)) throw error;
    // The store's location as the error gives it: a URL without its credentials; with the other parameters of
    // the URL given (`max_connections=1`), so the command shown works as pasted.
    const at = withParametersOf(error.location, given);
    // Quoted for the shell where it holds ?, & or *; a password shown as *** is the user's to put back.
    const shown = /[?&*#\s]/.test(at) ? `'${at}'` : at;
    const enroll = /^[a-z][a-z0-9+.-]*:\/\//i.test(at) ? '' : `\`facerec enroll <dir> --out ${shown}\` or `;
    const password = at.includes(':***@') ? '; with your password for *** or in PGPASSWORD' : '';
    throw new GalleryStoreNotFoundError(
      at,
      ` (create it with ${enroll}\`facerec gallery add ${shown} <identity> <photo…> --embedder <id>\`${password})`,
    );
  }
}

/** `location` (a store URL) with the query parameters of `given` it lacks, passwords left out. */
function withParametersOf(location: string, given: string | undefined): string {
  if (given === undefined || !/^postgres(ql)?:\/\//i.test(location)) return location;
  try {
    const at = new URL(location);
    for (const [key, value] of new URL(given).searchParams) {
      if (!at.searchParams.has(key) && !/password/i.test(key)) at.searchParams.append(key, value);
    }
    return at.toString();
  } catch {
    return location;
  }
}

/** `n` and the noun, singular for 1: `count(1, 'face')` is `1 face`, `count(2, 'identity', 'identities')` `2 identities`. */
export function count(n: number, noun: string, nouns = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : nouns}`;
}

/** `v` rounded to `digits` decimals, as the CLI prints numbers. */
export const round = (v: number, digits: number): number => Math.round(v * 10 ** digits) / 10 ** digits;

/**
 * A threshold as the CLI prints it: to 6 decimals, where a calibrated one (a midpoint between two distances)
 * differs from the distances printed beside it. At 4, a face 0.409977 away printed "unknown 0.41" beside a
 * threshold printed 0.4100 (0.4099739 stored).
 */
export const shownThreshold = (v: number): number => round(v, 6);

/** A distance as the CLI prints it (see the framework's `shownDistance`). */
export { shownDistance } from '@facerec/framework/internal';

/** Diagnostics go to stderr so that stdout carries only results (e.g. `--json`). */
export function info(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** A flag's value as a positive integer; undefined when not given. */
export function positiveInteger(
  command: string,
  flag: string,
  value: string | undefined,
): number | undefined {
  return numberFlag(command, flag, value, { integer: true, min: 1 });
}

/** The range a numeric flag accepts: `min`/`max` inclusive, `above`/`below` exclusive. */
export interface FlagRange {
  readonly min?: number;
  readonly above?: number;
  readonly max?: number;
  readonly below?: number;
  /** Whole numbers only. */
  readonly integer?: boolean;
}

/**
 * A flag's value as a number in `range` (decimal notation: not "", "0x10" or "Infinity"); undefined when not
 * given. Every numeric flag is checked here, before any model loads, so a bad value names the flag and what
 * it accepts instead of an internal option name.
 * @throws InvalidOptionsError naming `command` and `flag`.
 */
export function numberFlag(
  command: string,
  flag: string,
  value: string | undefined,
  range: FlagRange = {},
): number | undefined {
  if (value === undefined) return undefined;
  const decimal = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(value);
  const parsed = decimal ? Number(value) : Number.NaN;
  const { min, above, max, below, integer } = range;
  const fits =
    Number.isFinite(parsed) &&
    (!integer || Number.isSafeInteger(parsed)) &&
    (min === undefined || parsed >= min) &&
    (above === undefined || parsed > above) &&
    (max === undefined || parsed <= max) &&
    (below === undefined || parsed < below);
  if (fits) return parsed;
  const kind = integer ? 'an integer' : 'a number';
  const bounds = [
    min !== undefined && max !== undefined ? `from ${min} to ${max}` : undefined,
    min !== undefined && max === undefined ? `≥ ${min}` : undefined,
    above !== undefined ? `> ${above}` : undefined,
    max !== undefined && min === undefined ? `≤ ${max}` : undefined,
    below !== undefined ? `< ${below}` : undefined,
  ].filter((b) => b !== undefined);
  const accepted =
    integer && min === 1 && bounds.length === 1
      ? 'a positive integer'
      : [kind, bounds.join(' and ')].join(' ');
  throw new InvalidOptionsError(command, `${flag} must be ${accepted.trim()}, got "${value.slice(0, 40)}"`);
}

/**
 * `--workers`: inference worker threads, "auto" (one per core, at most 4: beyond that the models' memory
 * grows faster than the throughput) or 0–64 (0: the main thread).
 */
export function workersFlag(command: string, value: string): number {
  if (value === 'auto') return Math.min(availableParallelism(), 4);
  const workers = /^\d{1,3}$/.test(value) ? Number(value) : Number.NaN;
  if (!(workers <= 64)) {
    throw new InvalidOptionsError(
      command,
      `--workers must be "auto" or an integer from 0 to 64, got "${value.slice(0, 40)}"`,
    );
  }
  const cores = availableParallelism();
  if (workers > cores) {
    // Allowed (a machine shared with other work may report fewer cores than it will have), but said: each
    // worker then waits for a core, and holds its own copy of the models.
    info(
      `${command}: --workers ${workers} on ${cores} core${cores === 1 ? '' : 's'}: more inference threads than cores do not run faster, and each holds its own models ("auto": one per core, at most 4)`,
    );
  }
  return workers;
}

/** `--threshold`: a distance, so a number ≥ 0 (0 is "never calibrated" in a gallery). */
export function thresholdFlag(command: string, value: string | undefined): number | undefined {
  // Distances between unit vectors are at most 2 (euclidean and cosine alike): more would match every face.
  // 0 is no threshold (a gallery file's "never calibrated"), so a threshold given is above it.
  return numberFlag(command, '--threshold', value, { above: 0, max: 2 });
}

/** Whether `FACEREC_DEBUG` asks for stack traces: set, and not `0`, `false`, `no` or `off`. */
export function debugWanted(): boolean {
  const value = (process.env.FACEREC_DEBUG ?? '').trim().toLowerCase();
  return value !== '' && !['0', 'false', 'no', 'off'].includes(value);
}

/** Prints an error without a stack trace (unless FACEREC_DEBUG asks for one) and returns the exit code. */
export function reportError(error: unknown): number {
  if (debugWanted() && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  if (FacerecError.isInstance(error)) {
    process.stderr.write(`facerec: ${error.message}\n`);
    // Stopped by Ctrl-C or SIGTERM once the work could be left tidy: the shell's code for an interrupt.
    if (error.code === 'INTERRUPTED') return 130;
    return FacerecInputError.isInstance(error) ? 2 : 1;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(
    `facerec: unexpected error: ${message}\n${debugWanted() ? '' : '(set FACEREC_DEBUG=1 for a stack trace)\n'}`,
  );
  return 1;
}

const MiB = 1024 * 1024;

/**
 * How an image command prints its results: `json`, one array at the end; `jsonl` (JSON Lines), one row per line
 * as each image is done, in the images' order, so that a long run can be read as it goes and a run stopped
 * part-way keeps the rows of the images done; `text`, lines for people.
 */
export type RowFormat = 'json' | 'jsonl' | 'text';

/** The format `--json` / `--jsonl` ask for (commander refuses both at once: see {@link jsonLinesOption}). */
export function rowFormat(opts: { readonly json?: boolean; readonly jsonl?: boolean }): RowFormat {
  return opts.jsonl ? 'jsonl' : opts.json ? 'json' : 'text';
}

/** `--jsonl`: `--json`'s rows (`what`), one per line as each image is done (`when`, where that differs). */
export function jsonLinesOption(what: string, when = 'as each image is done'): Option {
  return new Option(
    '--jsonl',
    `print ${what} as JSON Lines: one row per line, ${when} (in the images' order), instead of --json's array at the end`,
  ).conflicts('json');
}

/**
 * Where an image command's result rows go: with `--jsonl`, each is written at once, as one line; otherwise it is
 * kept in `rows`, for `--json`'s array at the end (and the tests' reading of it).
 */
export function rowSink<Row>(format: RowFormat): { readonly rows: Row[]; emit(row: Row): void } {
  const rows: Row[] = [];
  return {
    rows,
    emit: (row) => {
      if (format === 'jsonl') process.stdout.write(`${JSON.stringify(row)}\n`);
      else rows.push(row);
    },
  };
}

/**
 * Progress on stderr for output that is not for people (`--json`, `--jsonl`), under `label`; none for text. The
 * format also says what a run stopped part-way has printed.
 */
export function rowProgress(format: RowFormat, label: string): RowProgress | undefined {
  return format === 'text' ? undefined : { label, format };
}

/** See {@link rowProgress}. */
export interface RowProgress {
  readonly label: string;
  readonly format: Exclude<RowFormat, 'text'>;
}

/**
 * Progress through a list of images on stderr, under `label`: a bar on a terminal; otherwise a line per tenth
 * of the work (at most every 10 images), so that 100,000 images print 10 lines, not 100,000.
 */
export function imageProgress(label: string): {
  onProgress: (e: { done: number; total: number; file: string }) => void;
  stop: () => void;
} {
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: ` ${label} {bar} {value}/{total} {file}`, hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let started = false;
  return {
    onProgress(e: { done: number; total: number; file: string }) {
      if (bar && !started) {
        bar.start(e.total, 0, { file: '' });
        started = true;
      }
      bar?.update(e.done, { file: e.file });
      const every = Math.max(10, Math.ceil(e.total / 10));
      if (!bar && (e.done === e.total || e.done % every === 0)) info(`  ${label}: ${e.done}/${e.total}`);
    },
    // Once, and only a bar that started: results printed after it must not share its line.
    stop() {
      if (started) bar?.stop();
      started = false;
    },
  };
}

/**
 * {@link imageProgress} for a count that moves in jumps (rows copied in batches, examples held out identity by
 * identity), fed one step at a time: its line at each tenth of the total (off a terminal) is not stepped over.
 */
export function countProgress(label: string): {
  onCount: (done: number, total: number) => void;
  stop: () => void;
} {
  const progress = imageProgress(label);
  let reported = 0;
  return {
    onCount(done, total) {
      while (reported < done) progress.onProgress({ done: ++reported, total, file: '' });
    },
    stop: () => progress.stop(),
  };
}

/**
 * A progress reporter for model pulls: bars on a terminal, one line per 25 % otherwise (CI logs), always on
 * stderr.
 */
export function pullProgressReporter(): { onProgress: (event: PullProgress) => void; stop: () => void } {
  const tty = Boolean(process.stderr.isTTY);
  const multi = tty
    ? new cliProgress.MultiBar(
        {
          stream: process.stderr,
          format: ' {bar} {percentage}% | {model} | {done}/{all} MiB',
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  const bars = new Map<string, cliProgress.SingleBar>();
  const lastQuarter = new Map<string, number>();
  // A model already in the cache is verified without a pull: only the pulls are reported.
  const pulling = new Set<string>();
  const mib = (n: number) => (n / MiB).toFixed(1);
  return {
    onProgress(event) {
      switch (event.type) {
        case 'start':
          pulling.add(event.model);
          // Said on a terminal too: a mirror set with a typo would otherwise download without a word.
          if (event.mirrorProblem) {
            const line = `${event.model}: ${event.mirrorProblem} (${MODELS_MIRROR_ENV}); pulling from ${event.source} instead`;
            if (multi) multi.log(`${line}\n`);
            else info(line);
          }
          if (multi && event.replacing)
            multi.log(`${event.model}: the cached copy was corrupt; replacing it\n`);
          if (multi) {
            bars.set(
              event.model,
              multi.create(event.total ?? 1, 0, {
                model: event.model,
                done: '0.0',
                all: mib(event.total ?? 0),
              }),
            );
          } else {
            info(
              `pulling ${event.model} (${event.file}) from ${event.source}: ${event.from}` +
                (event.replacing ? ' (the cached copy was corrupt)' : ''),
            );
          }
          break;
        case 'progress': {
          const bar = bars.get(event.model);
          if (bar) {
            if (event.total) bar.setTotal(event.total);
            bar.update(event.bytes, { done: mib(event.bytes), all: mib(event.total ?? event.bytes) });
          } else if (event.total) {
            const quarter = Math.floor((event.bytes / event.total) * 4);
            if (quarter > (lastQuarter.get(event.model) ?? 0) && quarter < 4) {
              lastQuarter.set(event.model, quarter);
              info(`  ${event.model}: ${quarter * 25}% (${mib(event.bytes)}/${mib(event.total)} MiB)`);
            }
          }
          break;
        }
        case 'done': {
          const bar = bars.get(event.model);
          if (bar) bar.update(bar.getTotal(), { done: mib(event.bytes), all: mib(event.bytes) });
          else if (pulling.has(event.model))
            info(
              // A first copy with no hash to check it against was not verified: its hash was recorded.
              `  ${event.model}: ${event.verifiedBy === 'first-use' ? 'recorded (first use) sha256' : 'verified sha256'} ${event.sha256.slice(0, 12)}… → ${event.path}`,
            );
          break;
        }
        case 'hash-recorded':
          multi ? multi.log(`${event.message}\n`) : info(event.message);
          break;
        case 'error':
          multi ? multi.log(`${event.model}: ${event.error.message}\n`) : info(`  ${event.model}: failed`);
          break;
      }
    },
    stop() {
      multi?.stop();
    },
  };
}

/**
 * How an embedder's load went, for one info line: providers that convert checkpoints say so through
 * `graph.built` (onnx); others just load.
 */
export function loadNote(embedder: FaceEmbedder): string {
  const graph = (
    embedder as {
      graph?: { built?: unknown; calibration?: { folder: string; images: number; recorded?: string } };
    }
  ).graph;
  const notes: string[] = [];
  if (graph?.built === true) notes.push('first use: converted to ONNX and cached');
  const calibration = graph?.calibration;
  if (calibration) {
    const on = `${calibration.folder} (${count(calibration.images, 'image')})`;
    notes.push(
      calibration.recorded
        ? `int8 calibration recorded in the cache on ${calibration.recorded.slice(0, 10)}, from ${on}`
        : `int8 calibrated on ${on}`,
    );
  }
  return notes.length > 0 ? ` (${notes.join('; ')})` : '';
}

/** `, calibrated at fp32 on 2026-12-03` for a summary line: how the threshold was chosen; empty when never calibrated. */
export function calibratedAs(calibration: GalleryCalibration | undefined): string {
  if (!calibration) return '';
  const at = calibration.precision ? ` at ${calibration.precision}` : '';
  return `, calibrated${at} on ${calibration.calibratedAt.slice(0, 10)}`;
}

/**
 * A gallery's threshold for a summary line, as matching would apply it (without `--threshold`): `threshold
 * 0.3868, calibrated at fp32 on 2026-12-03`, or for a gallery never calibrated (stored threshold 0) the
 * embedder's recommended one it is matched at, never a bare 0.
 */
export function thresholdSummary(gallery: Gallery, registry: ModelRegistry): string {
  const resolved = storedThreshold(gallery, registry);
  if (resolved?.source === 'gallery')
    return `threshold ${shownThreshold(resolved.value)}${calibratedAs(gallery.calibration)}`;
  if (resolved) {
    return `never calibrated: matched at ${gallery.embedder.modelId}'s recommended threshold ${resolved.value}`;
  }
  return 'never calibrated and no threshold: every face is "unknown"';
}

/**
 * The threshold at which a gallery recognises faces without `--threshold`: its own, or never calibrated the
 * embedder's recommended one; `undefined` when there is none. Quietly: {@link galleryThreshold} is the one that
 * announces it for commands that match.
 */
export function storedThreshold(gallery: Gallery, registry: ModelRegistry): ResolvedThreshold | undefined {
  const { modelId } = gallery.embedder;
  return resolveThreshold({ gallery, registry, modelId, metric: gallery.metric });
}

/**
 * `{ threshold, thresholdSource }` of a gallery for `--json` output: the threshold matching applies without
 * `--threshold` and where it comes from (`gallery`, or `registry` for one never calibrated).
 */
export function thresholdFields(
  gallery: Gallery,
  registry: ModelRegistry,
): { threshold: number; thresholdSource: ResolvedThreshold['source'] } {
  const resolved = storedThreshold(gallery, registry);
  return { threshold: resolved?.value ?? gallery.threshold, thresholdSource: resolved?.source ?? 'gallery' };
}

/**
 * One stderr line when `gallery`'s threshold was calibrated at another embedder precision than `precision`,
 * naming the command that calibrates it at this one.
 */
export function warnCalibrationPrecision(gallery: Gallery, file: string, precision: EmbedderPrecision): void {
  const why = calibrationPrecisionMismatch(gallery.calibration, precision);
  if (why)
    info(`warning: ${visibleText(file)}: ${why} (\`facerec gallery calibrate --precision ${precision}\`)`);
}

/** A warning for a gallery without identities, before it is matched against: every face would be unknown. */
export async function warnIfEmpty(gallery: Gallery, file: string): Promise<void> {
  if ((await gallery.identities()).length > 0) return;
  info(
    `warning: ${visibleText(file)} holds no identities yet, so every face will be "unknown" at distance Infinity (add some with \`facerec gallery add\`)`,
  );
}

/**
 * The threshold the CLI matches a gallery at: `explicit` (`--threshold`), else the gallery's (calibrated, or set
 * at enrollment), else, for a gallery never calibrated (threshold 0), the embedder's recommended one from the
 * registry, announced in one stderr line. With none of them it warns that every face will be `unknown`. With
 * `precision` (the one the faces are embedded at), a gallery threshold calibrated at the other one is warned of.
 */
export function galleryThreshold(
  gallery: Gallery,
  file: string,
  registry: ModelRegistry,
  { explicit, precision }: { explicit?: number | undefined; precision?: EmbedderPrecision | undefined } = {},
): ResolvedThreshold {
  const { modelId } = gallery.embedder;
  const { metric } = gallery;
  const resolved = resolveThreshold({ explicit, gallery, registry, modelId, metric });
  if (resolved?.source === 'gallery' && precision) warnCalibrationPrecision(gallery, file, precision);
  if (resolved?.source === 'registry') {
    info(
      `${file} was never calibrated: matching at ${modelId}'s recommended ${metric} threshold ${resolved.value} ` +
        '(`facerec gallery calibrate` sets one from your own photos, best with strangers among the probes)',
    );
  }
  if (resolved) return resolved;
  info(
    `warning: ${file} has threshold ${gallery.threshold} and was never calibrated, so every face will be "unknown" ` +
      `(${missingThresholdMessage(registry, modelId, metric)}): run \`facerec gallery calibrate\` (or enroll with --threshold)`,
  );
  return { value: gallery.threshold, source: 'gallery' };
}
