/**
 * TensorFlow.js backend selection: a fixed list, a fixed fallback order, one function that picks and starts a
 * backend, and one log line saying which backend runs and why.
 *
 * TensorFlow.js keeps one engine per process with one active backend, so backend state here is per process
 * too: a package is imported and a backend initialised at most once, and models switch the engine to their
 * backend for each run, one at a time (see {@link onBackend}).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { InvalidOptionsError } from '@facerec/framework';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { TfjsBackendUnavailableError } from './errors.js';

/**
 * The backends this provider runs on, in the order the automatic selection tries them:
 * `tensorflow` (native libtensorflow through the optional peer `@tensorflow/tfjs-node`), `wasm`
 * (`@tensorflow/tfjs-backend-wasm`, XNNPACK with SIMD) and `cpu` (plain JavaScript, always present).
 */
export const TFJS_BACKENDS = Object.freeze(['tensorflow', 'wasm', 'cpu'] as const);

/** A backend name from {@link TFJS_BACKENDS}. */
export type TfjsBackendName = (typeof TFJS_BACKENDS)[number];

/** The npm package that provides each backend. */
export const TFJS_BACKEND_PACKAGES: Readonly<Record<TfjsBackendName, string>> = Object.freeze({
  tensorflow: '@tensorflow/tfjs-node',
  wasm: '@tensorflow/tfjs-backend-wasm',
  cpu: '@tensorflow/tfjs-backend-cpu',
});

/** Where the one backend log line goes. */
export type TfjsLogger = (line: string) => void;

/** The backend {@link selectBackend} started, and why it was chosen. */
export interface SelectedBackend {
  readonly name: TfjsBackendName;
  /** Human-readable reason, e.g. `@tensorflow/tfjs-node not installed`. */
  readonly reason: string;
}

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /** Use this backend and nothing else; without it, the first that starts in {@link TFJS_BACKENDS} order. */
  readonly backend?: TfjsBackendName;
  /** Receives the log line. Default: one line on stderr. */
  readonly logger?: TfjsLogger;
  /** Who asked for `backend`, for the log line. Default: `the backend option`. */
  readonly requestedBy?: string;
}

/** Outcome of trying to start one backend. */
export type BackendProbe =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: string; readonly cause?: unknown };

const require = createRequire(import.meta.url);

/** The error for a backend that cannot start: the probe's reason, and what it failed with. */
function unavailable(
  name: TfjsBackendName,
  probe: Extract<BackendProbe, { ok: false }>,
): TfjsBackendUnavailableError {
  return new TfjsBackendUnavailableError(
    name,
    probe.reason,
    probe.cause === undefined ? undefined : { cause: probe.cause },
  );
}

/** The default logger: a single line on stderr, so stdout stays clean for CLI output. */
export const stderrLogger: TfjsLogger = (line) => {
  process.stderr.write(`${line}\n`);
};

/** True when `name` is one of {@link TFJS_BACKENDS}. */
export function isTfjsBackendName(name: unknown): name is TfjsBackendName {
  return typeof name === 'string' && (TFJS_BACKENDS as readonly string[]).includes(name);
}

/** Resolves an installed package's main file, or undefined when the package is not installed. */
function resolvePackage(name: string): string | undefined {
  try {
    return require.resolve(name);
  } catch (error) {
    if ((error as { code?: unknown }).code === 'MODULE_NOT_FOUND') return undefined;
    throw error;
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Imports an optional package, or says why it cannot be used. */
async function importOptional(
  name: string,
): Promise<{ module: Record<string, unknown>; main: string } | { module: undefined; probe: BackendProbe }> {
  let main: string | undefined;
  try {
    main = resolvePackage(name);
  } catch (cause) {
    return {
      module: undefined,
      probe: { ok: false, reason: `${name} failed to resolve: ${messageOf(cause)}`, cause },
    };
  }
  if (main === undefined) {
    // Said with the command that installs it, beside the package that needs it.
    return {
      module: undefined,
      probe: { ok: false, reason: `${name} not installed (\`npm install ${name}\`)` },
    };
  }
  try {
    // A variable specifier: these packages are optional peers, so neither tsc nor a bundler may require them.
    const specifier: string = name;
    return { module: (await import(specifier)) as Record<string, unknown>, main };
  } catch (cause) {
    return {
      module: undefined,
      probe: { ok: false, reason: `${name} failed to load: ${messageOf(cause)}`, cause },
    };
  }
}

async function initialise(name: TfjsBackendName): Promise<BackendProbe> {
  if (tf.findBackendFactory(name) === null) {
    return {
      ok: false,
      reason: `${TFJS_BACKEND_PACKAGES[name]} registered "${name}" with another copy of @tensorflow/tfjs-core`,
    };
  }
  try {
    if (await tf.setBackend(name)) return { ok: true };
    return { ok: false, reason: `backend "${name}" failed to initialise` };
  } catch (cause) {
    return { ok: false, reason: `backend "${name}" failed to initialise: ${messageOf(cause)}`, cause };
  }
}

/**
 * Runs `start`, then removes the `uncaughtException` and `unhandledRejection` listeners it added to the process.
 * The wasm backend's Emscripten glue adds one of each that rethrows: any promise rejected without a handler
 * anywhere in the application then ended the process (even under `--unhandled-rejections=warn`, before the
 * application's own listener could run), with a screen of minified code. Without them Node behaves as the
 * application set it up. (tfjs means to remove them when the backend is disposed; in a server it never is.)
 */
async function withoutProcessHandlers<T>(start: () => Promise<T>): Promise<T> {
  const exceptions = new Set(process.listeners('uncaughtException'));
  const rejections = new Set(process.listeners('unhandledRejection'));
  try {
    return await start();
  } finally {
    for (const listener of process.listeners('uncaughtException')) {
      if (!exceptions.has(listener)) process.removeListener('uncaughtException', listener);
    }
    for (const listener of process.listeners('unhandledRejection')) {
      if (!rejections.has(listener)) process.removeListener('unhandledRejection', listener);
    }
  }
}

const starters: Readonly<Record<TfjsBackendName, () => Promise<BackendProbe>>> = {
  async tensorflow() {
    const loaded = await importOptional(TFJS_BACKEND_PACKAGES.tensorflow);
    return loaded.module ? initialise('tensorflow') : loaded.probe;
  },
  async wasm() {
    const pkg = TFJS_BACKEND_PACKAGES.wasm;
    const loaded = await importOptional(pkg);
    if (!loaded.module) return loaded.probe;
    // In Node the backend cannot find its .wasm binaries by itself (it would look beside the page); they
    // sit beside the package's main file in dist/. setWasmPaths must precede the backend's initialisation.
    const setWasmPaths = loaded.module.setWasmPaths as ((prefix: string) => void) | undefined;
    if (typeof setWasmPaths !== 'function') {
      return { ok: false, reason: `${pkg} does not export setWasmPaths (unsupported version)` };
    }
    setWasmPaths(path.dirname(loaded.main) + path.sep);
    return withoutProcessHandlers(() => initialise('wasm'));
  },
  async cpu() {
    const probe = await initialise('cpu');
    if (probe.ok) silenceCpuBanner();
    return probe;
  },
};

/**
 * tfjs's CPU backend prints a multi-line "install tfjs-node" banner on its first tensor in Node. Our own log
 * line already says why `cpu` runs, so the banner is switched off on this backend instance only, instead of
 * setting tfjs's global `PROD`/`IS_TEST` flags, which change behaviour for everyone in the process.
 */
function silenceCpuBanner(): void {
  const backend = tf.engine().findBackend('cpu') as { firstUse?: boolean } | null;
  if (backend && 'firstUse' in backend) backend.firstUse = false;
}

// Importing a package and initialising a backend happen once per process, however many providers start.
const started = new Map<TfjsBackendName, Promise<BackendProbe>>();

function start(name: TfjsBackendName): Promise<BackendProbe> {
  let probe = started.get(name);
  if (!probe) {
    probe = starters[name]();
    started.set(name, probe);
  }
  return probe;
}

/**
 * The selection rule, separate from how backends are started so it can be tested with fake probes: the
 * requested backend or nothing, else the first of {@link TFJS_BACKENDS} whose probe succeeds, with the
 * reasons the earlier ones were skipped.
 */
export async function chooseBackend(
  requested: TfjsBackendName | undefined,
  probe: (name: TfjsBackendName) => Promise<BackendProbe>,
  requestedBy = 'the backend option',
): Promise<SelectedBackend> {
  if (requested !== undefined) {
    const result = await probe(requested);
    if (!result.ok) throw unavailable(requested, result);
    return { name: requested, reason: `requested with ${requestedBy}` };
  }
  const skipped: string[] = [];
  for (const name of TFJS_BACKENDS) {
    const result = await probe(name);
    if (result.ok) {
      return {
        name,
        reason: skipped.length ? skipped.join('; ') : `${TFJS_BACKEND_PACKAGES[name]} is installed`,
      };
    }
    skipped.push(result.reason);
  }
  throw new TfjsBackendUnavailableError('cpu', skipped.join('; '));
}

/** The log line for a selection, e.g. `facerec tfjs: using backend "wasm" (@tensorflow/tfjs-node not installed)`. */
export function backendLogLine(selected: SelectedBackend): string {
  return `facerec tfjs: using backend "${selected.name}" (${selected.reason})`;
}

/**
 * Picks and starts a TensorFlow.js backend, makes it the active one, and logs one line saying which and why.
 *
 * Without `backend`, tries `tensorflow` (only when `@tensorflow/tfjs-node` can be imported), then `wasm`
 * (pointing it at the `.wasm` files inside `@tensorflow/tfjs-backend-wasm`), then `cpu`, and never throws
 * because an optional package is missing. With `backend`, starts exactly that one.
 *
 * @throws InvalidOptionsError when `backend` is not one of {@link TFJS_BACKENDS}; the message lists them.
 * @throws TfjsBackendUnavailableError when the requested backend cannot start.
 * @example
 * ```ts
 * const { name } = await selectBackend();            // "wasm" where tfjs-node is not installed
 * await selectBackend({ backend: 'cpu', logger: (line) => log.info(line) });
 * ```
 */
export async function selectBackend(options: SelectBackendOptions = {}): Promise<SelectedBackend> {
  const { backend, logger = stderrLogger, requestedBy } = options;
  if (backend !== undefined && !isTfjsBackendName(backend)) {
    throw new InvalidOptionsError(
      '@facerec/provider-tfjs',
      `backend: unknown backend "${String(backend)}"; valid backends: ${TFJS_BACKENDS.join(', ')}`,
    );
  }
  const selected = await chooseBackend(backend, start, requestedBy);
  await activateBackend(selected.name);
  logger(backendLogLine(selected));
  return selected;
}

/**
 * Makes `name` the engine's active backend, starting it first if this process has not yet. Models do not call
 * this directly but through {@link onBackend}, which keeps another model from switching the backend between the
 * switch and the work.
 *
 * @throws TfjsBackendUnavailableError when the backend cannot start.
 */
export async function activateBackend(name: TfjsBackendName): Promise<void> {
  const probe = await start(name);
  if (!probe.ok) throw unavailable(name, probe);
  if (tf.getBackend() === name) return;
  if (!(await tf.setBackend(name))) throw new TfjsBackendUnavailableError(name, 'failed to initialise');
}

/** The tail of the work queued by {@link onBackend}: one model's switch and work at a time, in call order. */
let backendQueue: Promise<unknown> = Promise.resolve();

/**
 * Runs `work` (synchronous: it builds weights or runs a forward pass and reads its outputs) with `backend` the
 * engine's active one. Calls from every provider of the process are queued: activating a backend awaits, and a
 * model on another backend switching it in between made a run go on that backend without a word (a wasm model's
 * call overlapping a cpu model's ran on cpu). Queuing costs nothing in throughput, as every backend computes on
 * the main thread.
 *
 * @throws TfjsBackendUnavailableError when the backend cannot start; whatever `work` throws.
 */
export function onBackend<T>(backend: TfjsBackendName, work: () => T): Promise<T> {
  const run = backendQueue.then(async () => {
    await activateBackend(backend);
    return work();
  });
  backendQueue = run.catch(() => undefined);
  return run;
}
