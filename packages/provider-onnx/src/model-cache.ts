import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  explainCachedCheckpointError,
  type ModelStore,
  ModelUnavailableError,
  readCheckpointFile,
  type StateDict,
} from '@facerec/framework';
import {
  makeFolder,
  sha256OfFile,
  sweepStaleTemporaries,
  writeFileAtomic,
} from '@facerec/framework/internal';

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
 * The record written beside each cached graph, `<file>.sha256`: `<sha256 of the graph> <size in bytes>`,
 * checked before a cached graph is used (see {@link cachedOnnxFile}).
 */
const recordOf = (file: string) => `${file}.sha256`;

/** The hash and size a graph's record says it was built with; undefined when there is no readable record. */
async function readRecord(file: string): Promise<{ sha256: string; size: number } | undefined> {
  const text = await readFile(recordOf(file), 'utf8').catch(() => undefined);
  const match = /^([0-9a-f]{64}) (\d+)\n?$/.exec(text ?? '');
  return match ? { sha256: match[1]!, size: Number(match[2]) } : undefined;
}

/**
 * Graphs this process has checked against their records, by path, with the size and modification time they
 * had: a graph loaded again (another provider, a reloaded embedder) is not hashed twice.
 */
const checked = new Map<string, { size: number; mtimeMs: number }>();

/** `undefined` when graphs can be written in `dir` (made if missing), else why not. */
export const cacheWritable = async (dir: string): Promise<unknown> => {
  try {
    await makeFolder(dir);
    await access(dir, constants.W_OK);
    // Under Node's permission model (--permission, as the Lambda tree test runs) access() answers for the
    // system's permissions only; a write would then fail as ERR_ACCESS_DENIED. (`permission` is there only then.)
    if (process.permission?.has('fs.write', dir) === false) {
      return Object.assign(new Error(`write access to ${dir} is not granted (--allow-fs-write)`), {
        code: 'ERR_ACCESS_DENIED',
      });
    }
    return undefined;
  } catch (cause) {
    return cause;
  }
};

/**
 * An ONNX file from the model cache, built by `build` on a miss and written with `writeFileAtomic` (so
 * concurrent processes are safe and a crash never leaves a partial graph), with its record (see
 * {@link recordOf}). A cached graph is used only when its size and sha256 are the ones its record gives (once
 * per process: hashing costs about 15 ms per 20 MB, against seconds to build): a graph damaged on disk would
 * otherwise load and answer wrong results (one flipped byte in a weight gives all-zero embeddings). A damaged
 * graph, or one without a record (from before records, or whose record was lost), is built again; in a folder
 * that cannot be written a damaged one is refused, naming it, and one without a record is used as it is. The
 * caller's `file` name must carry everything the graph depends on (weights hash, builder version), so a stale
 * graph is never reused.
 */
export async function cachedOnnxFile(
  file: string,
  weightsSha256: string,
  build: () => Uint8Array | Promise<Uint8Array>,
): Promise<CachedGraph> {
  await sweepStaleTemporaries(file);
  const dir = path.dirname(file);
  const name = path.basename(file);
  const [found, foundRecord] = await Promise.all(
    [file, recordOf(file)].map((f) => stat(f).catch(() => undefined)),
  );
  for (const [what, where] of [
    [found, file],
    [foundRecord, recordOf(file)],
  ] as const) {
    if (what?.isDirectory()) {
      throw new ModelUnavailableError(
        name,
        `a folder is where a file of the model cache belongs (${where}): remove it`,
      );
    }
  }
  const size = found?.isFile() && found.size > 0 ? found.size : undefined;
  const hit: CachedGraph = { bytes: undefined, weightsSha256, path: file, built: false, buildMs: 0 };
  let damaged: string | undefined;
  if (size !== undefined) {
    const memo = checked.get(file);
    if (memo?.size === size && memo.mtimeMs === found!.mtimeMs) return hit;
    const record = await readRecord(file);
    if (record === undefined) {
      // No record to check it against: built again where that is possible, else used as it is (graphs from
      // before records), with a warning that it could not be checked.
      if ((await cacheWritable(dir)) !== undefined) {
        process.emitWarning(
          `${name} in the read-only model cache ${dir} has no record (${name}.sha256) to check it against: used unchecked; prepare the cache again to add it`,
          { code: 'FACEREC_GRAPH_UNCHECKED' },
        );
        return hit;
      }
    } else if (record.size !== size) {
      damaged = `${name} in the model cache ${dir} is damaged (${size} bytes; it was built with ${record.size})`;
    } else if ((await sha256OfFile(file)) !== record.sha256) {
      damaged = `${name} in the model cache ${dir} is damaged (its sha256 is not the one it was built with)`;
    } else {
      checked.set(file, { size, mtimeMs: found!.mtimeMs });
      return hit;
    }
  }
  // A read-only model folder (a Lambda image) holds every graph the deployment was prepared for; one it lacks
  // fails here, before seconds of building, and says how to prepare it.
  const readOnly = await cacheWritable(dir);
  if (readOnly !== undefined) {
    throw new ModelUnavailableError(
      name,
      `${damaged ?? `${name} is not in the model cache ${dir}`}, which cannot be written ` +
        `(${(readOnly as { code?: string }).code ?? String(readOnly)}): prepare it where the cache is written, with ` +
        'the same weights, options and (for int8) calibration faces: `facerec models prepare` or ' +
        '`npm run lambda-tree -- … [--precision int8 [--calibration DIR]]`',
      { cause: readOnly },
    );
  }
  // Said, not only repaired: a cache that keeps going bad (a failing disk) should not go unnoticed. A process
  // warning reaches stderr (the CLI, Lambda's log) without a logger being passed down here.
  if (damaged) process.emitWarning(`${damaged}: building it again`, { code: 'FACEREC_GRAPH_DAMAGED' });
  const started = performance.now();
  const bytes = await build();
  const buildMs = performance.now() - started;
  try {
    await writeFileAtomic(file, bytes);
    await writeFileAtomic(
      recordOf(file),
      `${createHash('sha256').update(bytes).digest('hex')} ${bytes.length}\n`,
    );
  } catch (error) {
    // writeFileAtomic says a full disk as NO_SPACE (Node's ENOSPC as its cause).
    if (!['ENOSPC', 'EDQUOT', 'NO_SPACE'].includes((error as { code?: string }).code ?? '')) throw error;
    // Lambda's /tmp is 512 MB by default; InceptionResnetV1 takes about 210 MB of it (weights and graph).
    throw new ModelUnavailableError(
      name,
      `no space left in the model cache ${dir} for ${name} (${(bytes.length / 2 ** 20).toFixed(0)} MiB): free ` +
        'space there or set $FACEREC_CACHE_DIR to a larger folder',
      { cause: error },
    );
  }
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
    try {
      // Bounded as every checkpoint read is (a 20 GB file given as --weights was read whole, or failed as Node's
      // "greater than 2 GiB").
      const stateDict = await readCheckpointFile(weights.path);
      return build(stateDict, { weights_sha256: weights.sha256, weights_file: path.basename(weights.path) });
    } catch (error) {
      throw explainCachedCheckpointError(error, weights.path, cacheDir);
    }
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
