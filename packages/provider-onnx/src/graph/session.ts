import { isMainThread } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import { OnnxRuntimeUnavailableError } from '../errors.js';

/** Options of {@link createSession}; anything not set here uses onnxruntime's default. */
export interface CreateSessionOptions {
  /**
   * Threads one operator may use. On a small Lambda or container, set it to the number of vCPUs; leaving it
   * unset lets onnxruntime size its pool from the host's core count, which can oversubscribe a cgroup.
   */
  readonly intraOpNumThreads?: number;
  /** Graph optimisation level; default `'all'` (constant folding, node fusion, layout changes). */
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** onnxruntime log level, 0 (verbose) to 4 (fatal); default onnxruntime's (2, warnings). */
  readonly logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /**
   * Let idle intra-op threads spin waiting for work. Default false: facerec interleaves inference with
   * JavaScript (the MTCNN cascade resamples and crops between network runs), and spinning threads take the
   * cores that JavaScript needs — on 2 cores, spinning made detection ~30 % slower.
   */
  readonly allowSpinning?: boolean;
  /**
   * onnxruntime's memory pattern: after a run it plans one block for all intermediate tensors of that input
   * shape and allocates it on the next run with the same shape. Default true (onnxruntime's). Set it to false
   * for graphs fed ever-changing shapes (MTCNN: pyramid levels per frame size, a different number of
   * candidates per frame): there each new shape paid for a fresh, never-reused block, and the second run of
   * each frame size was ~2× slower than the first steady one.
   */
  readonly memoryPattern?: boolean;
  /**
   * onnxruntime's CPU memory arena: intermediate tensors come from a pool that grows to the largest run
   * and is never returned to the system (until the session is released). Default true (onnxruntime's). Set it
   * to false for a lasting session whose activations scale with the input: with the arena, one 25-megapixel
   * frame left the process 1.5 GB larger for good; without it the memory is freed after the run, but every
   * activation is allocated anew (MTCNN's P-Net 3.5–4× slower with glibc's mmap threshold at 1 MiB, so a large
   * frame's strips run on a session of their own instead, released afterwards).
   */
  readonly cpuMemArena?: boolean;
}

type Ort = typeof import('onnxruntime-node');

let ortPromise: Promise<Ort> | undefined;

/** onnxruntime's switch for its usage telemetry (Linux and macOS builds from 1.29 on). */
export const ORT_TELEMETRY_ENV = 'ORT_DISABLE_TELEMETRY';

/**
 * Turns onnxruntime's usage telemetry off unless the user set `ORT_DISABLE_TELEMETRY` themselves. From 1.29,
 * onnxruntime-node's Linux and macOS binaries record events (sessions created, models' opsets, the Node
 * binary's path, the OS) in a database under `~/.cache/Microsoft/DeveloperTools`, with a persistent device
 * identifier, write `.ses` and `mat-debug-<pid>.log` files into the temporary folder of every process, and send
 * the events to Microsoft. A face recognition library has no business phoning home from its users' machines
 * and Lambda functions, so it is off by default; `ORT_DISABLE_TELEMETRY=0` turns it back on.
 *
 * onnxruntime reads the variable once, with the C library's `getenv`, when its first session is created in the
 * process, so this must run on the main thread before then: a worker thread's `process.env` is its own copy,
 * which native code never sees. Called by {@link loadOrt} and by `createOnnxProvider` (which
 * `@facerec/lambda-runtime`'s worker provider calls on the main thread before it starts any worker).
 */
export function keepOnnxRuntimeTelemetryOff(): void {
  // Set but empty counts as not set (onnxruntime would take it as "on").
  if (process.env[ORT_TELEMETRY_ENV]) return;
  if (!isMainThread && !warnedInWorker) {
    warnedInWorker = true;
    process.emitWarning(
      `onnxruntime loads in a worker thread whose parent did not set ${ORT_TELEMETRY_ENV}: a worker cannot ` +
        'switch its usage telemetry off (native code reads the process environment); set the variable in the ' +
        "process's environment, or call createOnnxProvider() on the main thread before starting the worker",
      { code: 'FACEREC_ORT_TELEMETRY' },
    );
  }
  process.env[ORT_TELEMETRY_ENV] = '1';
}
let warnedInWorker = false;

/**
 * onnxruntime-node is a peer dependency and a native addon; loading it only when a session is requested keeps
 * graph building usable without it and turns a missing install into a message that says what to do. Every
 * module of this package loads it through here, so telemetry is off before it starts.
 */
export function loadOrt(): Promise<Ort> {
  keepOnnxRuntimeTelemetryOff();
  ortPromise ??= import('onnxruntime-node').catch((cause: unknown) => {
    ortPromise = undefined;
    throw new OnnxRuntimeUnavailableError({ cause });
  });
  return ortPromise;
}

/**
 * Creates an onnxruntime-node CPU session for ONNX bytes (e.g. from {@link buildPNet}), running operators
 * sequentially: one request at a time is the Lambda model, and parallel execution only adds scheduling cost
 * for these chain-shaped graphs.
 *
 * @example
 * ```ts
 * const session = await createSession(buildPNet(stateDict), { intraOpNumThreads: 2 });
 * const { prob, reg } = await session.run({ input: new ort.Tensor('float32', data, [1, 3, h, w]) });
 * ```
 */
export async function createSession(
  bytes: Uint8Array | string,
  options: CreateSessionOptions = {},
): Promise<InferenceSession> {
  const ort = await loadOrt();
  const sessionOptions: InferenceSession.SessionOptions = {
    executionMode: 'sequential',
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    ...(options.intraOpNumThreads === undefined ? {} : { intraOpNumThreads: options.intraOpNumThreads }),
    ...(options.logSeverityLevel === undefined ? {} : { logSeverityLevel: options.logSeverityLevel }),
    ...(options.memoryPattern === false ? { enableMemPattern: false } : {}),
    ...(options.cpuMemArena === false ? { enableCpuMemArena: false } : {}),
    extra: { session: { intra_op: { allow_spinning: options.allowSpinning ? '1' : '0' } } },
  };
  // Two calls because the overloads differ: a path lets onnxruntime read the file without a copy in JS.
  return typeof bytes === 'string'
    ? ort.InferenceSession.create(bytes, sessionOptions)
    : ort.InferenceSession.create(bytes, sessionOptions);
}
