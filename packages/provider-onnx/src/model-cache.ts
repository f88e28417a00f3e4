import { constants } from 'node:fs';
import { access, mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { type ModelStore, ModelUnavailableError, readCheckpoint, type StateDict } from '@facerec/framework';
import { writeFileAtomic } from '@facerec/framework/internal';

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
 * An ONNX file from the model cache, built by `build` on a miss and written with `writeFileAtomic` (so
 * concurrent processes are safe and a crash never leaves a partial graph). The caller's `file` name must carry
 * everything the graph depends on (weights hash, builder version), so a stale graph is never reused.
 */
export async function cachedOnnxFile(
  file: string,
  weightsSha256: string,
  build: () => Uint8Array | Promise<Uint8Array>,
): Promise<CachedGraph> {
  if (
    await stat(file).then(
      (st) => st.isFile() && st.size > 0,
      () => false,
    )
  ) {
    return { bytes: undefined, weightsSha256, path: file, built: false, buildMs: 0 };
  }
  // A read-only model folder (a Lambda image) holds every graph the deployment was prepared for; one it lacks
  // fails here, before seconds of building, and says how to prepare it.
  await mkdir(path.dirname(file), { recursive: true })
    .then(() => access(path.dirname(file), constants.W_OK))
    .catch((cause: unknown) => {
      throw new ModelUnavailableError(
        path.basename(file),
        `${path.basename(file)} is not in the model cache ${path.dirname(file)}, which cannot be written ` +
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
  return cachedOnnxFile(file, weights.sha256, async () =>
    build(readCheckpoint(await readFile(weights.path), { source: weights.path }), {
      weights_sha256: weights.sha256,
      weights_file: path.basename(weights.path),
    }),
  );
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
