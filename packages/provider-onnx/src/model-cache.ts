import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  CheckpointError,
  HASHES_FILE,
  type ModelStore,
  ModelUnavailableError,
  readCheckpoint,
  type StateDict,
} from '@facerec/framework';
import { sweepStaleTemporaries, writeFileAtomic } from '@facerec/framework/internal';

/**
 * Bumped whenever a graph builder changes its output, so cached `.onnx` files from an older builder are not
 * reused.
 */
export const GRAPH_BUILDER_VERSION = 1;

/** An ONNX graph ready for a session, with where it came from. */
export interface CachedGraph {
  /**
   * The ONNX bytes when this call built the graph; `undefined` on a cache hit, where the session reads
   * {@link CachedGraph.path} itself (no ~90 MB copy in JavaScript memory). Use {@link graphSource}.
   */
  readonly bytes: Uint8Array | undefined;
  /** sha256 of the source weights. */
  readonly weightsSha256: string;
  /** Path of the cached `.onnx` file. */
  readonly path: string;
  /** True when this call built the graph (cache miss), false when it was read from the cache. */
  readonly built: boolean;
  /** Milliseconds spent building (0 on a cache hit). */
  readonly buildMs: number;
}

/**
 * The record written beside each cached graph, `<file>.sha256`: `<sha256 of the graph> <size in bytes>`. A
 * look-up compares the size (hashing a 100 MB graph at every load would cost a quarter of a second); the hash
 * is for a full check by hand (`sha256sum`).
 */
const recordOf = (file: string) => `${file}.sha256`;

/** The size a graph's record says it was built with; undefined when there is no readable record. */
async function recordedSize(file: string): Promise<number | undefined> {
  const text = await readFile(recordOf(file), 'utf8').catch(() => undefined);
  const match = /^[0-9a-f]{64} (\d+)\n?$/.exec(text ?? '');
  return match ? Number(match[1]) : undefined;
}

/**
 * An ONNX file from the model cache, built by `build` on a miss and written with `writeFileAtomic` (so
 * concurrent processes are safe and a crash never leaves a partial graph), with its record (see
 * {@link recordOf}). A cached graph whose size differs from its record (damaged on disk, truncated by hand) is
 * built again, or refused in a folder that cannot be written; one without a record (from before records) is
 * used as it is. The caller's `file` name must carry everything the graph depends on (weights hash, builder
 * version), so a stale graph is never reused.
 */
export async function cachedOnnxFile(
  file: string,
  weightsSha256: string,
  build: () => Uint8Array | Promise<Uint8Array>,
): Promise<CachedGraph> {
  await sweepStaleTemporaries(file);
  const size = await stat(file).then(
    (st) => (st.isFile() && st.size > 0 ? st.size : undefined),
    () => undefined,
  );
  const recorded = size === undefined ? undefined : await recordedSize(file);
  if (size !== undefined && (recorded === undefined || recorded === size)) {
    return { bytes: undefined, weightsSha256, path: file, built: false, buildMs: 0 };
  }
  const damaged =
    size === undefined
      ? undefined
      : `${path.basename(file)} in the model cache ${path.dirname(file)} is damaged (${size} bytes; it was built with ${recorded})`;
  // A read-only model folder (a Lambda image) holds every graph the deployment was prepared for; one it lacks
  // fails here, before seconds of building, and says how to prepare it.
  await mkdir(path.dirname(file), { recursive: true })
    .then(() => access(path.dirname(file), constants.W_OK))
    .catch((cause: unknown) => {
      throw new ModelUnavailableError(
        path.basename(file),
        `${damaged ?? `${path.basename(file)} is not in the model cache ${path.dirname(file)}`}, which cannot be written ` +
          `(${(cause as { code?: string }).code ?? String(cause)}): prepare it where the cache is written, with ` +
          'the same weights, options and (for int8) calibration faces: `facerec models prepare` or ' +
          '`npm run lambda-tree -- … [--precision int8 [--calibration DIR]]`',
        { cause },
      );
    });
  const started = performance.now();
  const bytes = await build();
  const buildMs = performance.now() - started;
  await writeFileAtomic(file, bytes);
  await writeFileAtomic(
    recordOf(file),
    `${createHash('sha256').update(bytes).digest('hex')} ${bytes.length}\n`,
  );
  return { bytes, weightsSha256, path: file, built: true, buildMs };
}

/**
 * The ONNX graph for a PyTorch checkpoint, from the model cache when present:
 * `<cacheDir>/onnx/<tag>-<sha256>-v<N>[.<M>].onnx`, keyed by the weights' hash so a different checkpoint
 * never reuses a stale graph. `graphVersion` (M) is the architecture's own version, bumped when only that
 * architecture's graph changes, so the other cached graphs stay valid.
 */
export async function cachedGraph(
  cacheDir: string,
  tag: string,
  weights: { path: string; sha256: string },
  build: (stateDict: StateDict, metadata: Record<string, string>) => Uint8Array,
  graphVersion?: number,
): Promise<CachedGraph> {
  const version = `v${GRAPH_BUILDER_VERSION}${graphVersion === undefined ? '' : `.${graphVersion}`}`;
  const file = path.join(cacheDir, 'onnx', `${tag}-${weights.sha256.slice(0, 16)}-${version}.onnx`);
  return cachedOnnxFile(file, weights.sha256, async () => {
    let stateDict: StateDict;
    try {
      stateDict = readCheckpoint(await readFile(weights.path), { source: weights.path });
    } catch (error) {
      // A cached file whose manifest entry has no hash was trusted on first use: if a mirror or a download
      // served the wrong file, its hash is recorded too, and only deleting both lets a pull fetch it again.
      if (!CheckpointError.isInstance(error) || path.dirname(weights.path) !== path.resolve(cacheDir))
        throw error;
      throw new CheckpointError(
        `${error.message} (it is in the model cache: if a mirror or a download served the wrong file, delete ` +
          `it and its entry in ${path.join(cacheDir, HASHES_FILE)}, then pull again)`,
        { cause: error },
      );
    }
    return build(stateDict, { weights_sha256: weights.sha256, weights_file: path.basename(weights.path) });
  });
}

/** Resolves a manifest model to a verified file and its hash (pulling it when missing). */
export async function resolveWeights(
  store: ModelStore,
  name: string,
): Promise<{ path: string; sha256: string }> {
  const [pulled] = await store.pull([name]);
  return { path: pulled!.path, sha256: pulled!.sha256 };
}

/** What to open a session from: the fresh bytes, or the cached file's path. */
export function graphSource(graph: Pick<CachedGraph, 'bytes' | 'path'>): Uint8Array | string {
  return graph.bytes ?? graph.path;
}
