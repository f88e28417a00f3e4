/**
 * Reader for TensorFlow.js weights: a `*-weights_manifest.json` plus its `.bin` shards, as face-api.js ships
 * its models. The result is a {@link StateDict} (the same shape the PyTorch checkpoint reader returns), so
 * graph builders can take tensors from it with the same shape checks.
 *
 * Layout (tfjs `io.loadWeights`): the manifest is a list of groups; each group's shards are concatenated in
 * `paths` order into one buffer, and the group's `weights` are laid out back to back in it, row-major, with
 * no padding. A weight with `quantization` is stored as `uint8`/`uint16` codes (value = code · scale + min)
 * or as IEEE half floats (`float16`), and comes back dequantised to float32 as tfjs does.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { NamedTensor, StateDict } from '../checkpoint/types.js';
import { CheckpointError } from '../errors.js';

const quantizationSchema = z.object({
  dtype: z.enum(['uint8', 'uint16', 'float16']),
  scale: z.number().finite().optional(),
  min: z.number().finite().optional(),
  original_dtype: z.string().optional(),
});

const entrySchema = z.object({
  name: z.string().min(1),
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.string(),
  quantization: quantizationSchema.optional(),
});

const groupSchema = z.object({
  paths: z.array(z.string().min(1)),
  weights: z.array(entrySchema),
});

/** zod schema of a tfjs weights manifest: `[{ paths, weights: [{ name, shape, dtype, quantization? }] }]`. */
export const tfjsWeightsManifestSchema = z.array(groupSchema);

/** A parsed tfjs weights manifest (see {@link parseTfjsWeightsManifest}). */
export type TfjsWeightsManifest = z.infer<typeof tfjsWeightsManifestSchema>;
/** One weight of a {@link TfjsWeightsManifest}. */
export type TfjsWeightEntry = z.infer<typeof entrySchema>;

/** Options of {@link parseTfjsWeightsManifest} and {@link decodeTfjsWeights}. */
export interface TfjsWeightsOptions {
  /** Names the manifest (a path or URL) in every {@link CheckpointError}. */
  readonly source?: string;
}

const error = (message: string, source: string | undefined, cause?: unknown) =>
  new CheckpointError(message, {
    ...(source === undefined ? {} : { source }),
    ...(cause === undefined ? {} : { cause }),
  });

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Validates a tfjs weights manifest (the parsed JSON or its text).
 *
 * @throws CheckpointError when it is not valid JSON, does not have the manifest's structure, names a weight
 *   twice, gives a quantised `uint8`/`uint16` weight no `scale`/`min`, has a dtype other than float32/int32,
 *   or names a shard by an absolute path or one that leaves its folder.
 */
export function parseTfjsWeightsManifest(
  json: unknown,
  options: TfjsWeightsOptions = {},
): TfjsWeightsManifest {
  const { source } = options;
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (cause) {
      throw error(`tfjs weights manifest is not valid JSON: ${(cause as Error).message}`, source, cause);
    }
  }
  const parsed = tfjsWeightsManifestSchema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .slice(0, 3)
      .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
      .join('; ');
    throw error(`not a tfjs weights manifest: ${issues}`, source, parsed.error);
  }
  const seen = new Set<string>();
  for (const group of parsed.data) {
    for (const shard of group.paths) {
      if (
        path.posix.isAbsolute(shard) ||
        path.win32.isAbsolute(shard) ||
        shard.split(/[\\/]/).includes('..')
      ) {
        throw error(`shard path "${shard}" must be relative and stay inside the manifest's folder`, source);
      }
    }
    for (const w of group.weights) {
      if (seen.has(w.name)) throw error(`weight "${w.name}" appears twice`, source);
      seen.add(w.name);
      if (w.dtype !== 'float32' && w.dtype !== 'int32') {
        throw error(
          `weight "${w.name}" has dtype "${w.dtype}"; only float32 and int32 are supported`,
          source,
        );
      }
      const q = w.quantization;
      if (q && q.dtype !== 'float16' && (q.scale === undefined || q.min === undefined)) {
        throw error(`weight "${w.name}" is ${q.dtype}-quantised but lacks scale or min`, source);
      }
    }
  }
  return parsed.data;
}

/** Bytes one weight takes in its shard. */
export function tfjsWeightByteLength(entry: TfjsWeightEntry): number {
  const size = entry.quantization ? (entry.quantization.dtype === 'uint8' ? 1 : 2) : 4;
  return count(entry.shape) * size;
}

// IEEE 754 binary16 → number; exact, so the float32 it is stored in holds the same value tfjs computes.
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function decodeEntry(entry: TfjsWeightEntry, bytes: Uint8Array): NamedTensor {
  const n = count(entry.shape);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const q = entry.quantization;
  const shape = [...entry.shape];
  if (!q) {
    if (entry.dtype === 'int32') {
      const data = new Int32Array(n);
      for (let i = 0; i < n; i++) data[i] = view.getInt32(i * 4, true);
      return { name: entry.name, dtype: 'int32', shape, data };
    }
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = view.getFloat32(i * 4, true);
    return { name: entry.name, dtype: 'float32', shape, data };
  }
  const values = new Float64Array(n);
  if (q.dtype === 'float16') {
    for (let i = 0; i < n; i++) values[i] = halfToFloat(view.getUint16(i * 2, true));
  } else {
    const scale = q.scale!;
    const min = q.min!;
    for (let i = 0; i < n; i++) {
      const code = q.dtype === 'uint8' ? bytes[i]! : view.getUint16(i * 2, true);
      values[i] = code * scale + min;
    }
  }
  if (entry.dtype === 'int32') {
    // tfjs rounds dequantised integer weights back to integers.
    return { name: entry.name, dtype: 'int32', shape, data: Int32Array.from(values, Math.round) };
  }
  return { name: entry.name, dtype: 'float32', shape, data: Float32Array.from(values) };
}

/**
 * Decodes the weights of a tfjs manifest from its shards.
 *
 * @param manifest - a manifest from {@link parseTfjsWeightsManifest} (or the raw JSON, validated here).
 * @param shards - each shard's bytes under the path the manifest gives it.
 * @returns float32 (or int32) tensors by weight name, in manifest order; quantised weights dequantised.
 * @throws CheckpointError when a shard is missing or the shards of a group do not hold exactly the bytes
 *   their weights need (the message gives both sizes).
 *
 * @example
 * const manifest = parseTfjsWeightsManifest(await readFile('face_recognition_model-weights_manifest.json', 'utf8'));
 * const weights = decodeTfjsWeights(manifest, new Map([['face_recognition_model.bin', await readFile(bin)]]));
 * weights.get('fc')!.shape; // [256, 128]
 */
export function decodeTfjsWeights(
  manifest: unknown,
  shards: ReadonlyMap<string, Uint8Array>,
  options: TfjsWeightsOptions = {},
): StateDict {
  const { source } = options;
  const groups = parseTfjsWeightsManifest(manifest, options);
  const out = new Map<string, NamedTensor>();
  groups.forEach((group, g) => {
    const parts = group.paths.map((p) => {
      const bytes = shards.get(p);
      if (!bytes) throw error(`missing weights shard "${p}" (group ${g})`, source);
      return bytes;
    });
    const total = parts.reduce((a, b) => a + b.byteLength, 0);
    const needed = group.weights.reduce((a, w) => a + tfjsWeightByteLength(w), 0);
    if (total !== needed) {
      const what = group.paths.join(', ');
      throw error(
        `weights group ${g} needs ${needed} bytes for its ${group.weights.length} weights, but its shards (${what}) hold ${total} bytes${total < needed ? ' (truncated?)' : ''}`,
        source,
      );
    }
    let buffer: Uint8Array;
    if (parts.length === 1) buffer = parts[0]!;
    else {
      buffer = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        buffer.set(p, at);
        at += p.byteLength;
      }
    }
    let offset = 0;
    for (const w of group.weights) {
      const length = tfjsWeightByteLength(w);
      out.set(w.name, decodeEntry(w, buffer.subarray(offset, offset + length)));
      offset += length;
    }
  });
  return out;
}

/**
 * Reads a tfjs weights manifest file and the shards it names (resolved beside it) into a {@link StateDict}.
 *
 * @throws CheckpointError naming the manifest when a file cannot be read or the weights do not decode.
 * @example
 * const weights = await readTfjsWeightsFile(await store.resolve('faceapi-face-recognition-manifest'));
 */
export async function readTfjsWeightsFile(manifestPath: string): Promise<StateDict> {
  const read = async <T>(file: string, how: () => Promise<T>): Promise<T> => {
    try {
      return await how();
    } catch (cause) {
      throw error(`cannot read ${file}: ${(cause as Error).message}`, manifestPath, cause);
    }
  };
  const text = await read(manifestPath, () => readFile(manifestPath, 'utf8'));
  const manifest = parseTfjsWeightsManifest(text, { source: manifestPath });
  const dir = path.dirname(manifestPath);
  const shards = new Map<string, Uint8Array>();
  for (const p of manifest.flatMap((g) => g.paths)) {
    const file = path.join(dir, p);
    shards.set(p, await read(file, () => readFile(file)));
  }
  return decodeTfjsWeights(manifest, shards, { source: manifestPath });
}
