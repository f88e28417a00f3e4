import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CALIBRATION_DIR_ENV,
  decodeImage,
  type EmbedderPrecision,
  FacerecInputError,
  InvalidOptionsError,
  type RgbImage,
} from '@facerec/framework';
import { readFileUpTo, resizeRgb, writeFileAtomic, zodIssues } from '@facerec/framework/internal';
import { z } from 'zod';
import { type CalibrationBatch, calibrateRanges } from './graph/calibrate.js';
import { type ActivationRange, quantizeModel } from './graph/quantize.js';
import { type CachedGraph, cachedOnnxFile, cacheWritable } from './model-cache.js';

/** An embedder's numeric precision (the framework's): the float graph, or its int8 (QDQ) form calibrated on face crops. */
export type { EmbedderPrecision };

/** Bumped whenever the quantizer's output changes, so cached int8 graphs are rebuilt. */
export const QUANTIZER_VERSION = 2;

/** Where int8 graphs read their calibration faces when the caller names no folder (the framework's). */
export { CALIBRATION_DIR_ENV };

/** Whether a file name is one the calibration reads (png, jpeg, webp); other files in the folder are ignored. */
export const isCalibrationImage = (name: string): boolean => /\.(png|jpe?g|webp)$/i.test(name);
/** Faces per calibration run: enough to keep the session busy, small enough for every activation's copy. */
const CALIBRATION_BATCH = 8;

/** Image files under `dir`, in subfolders too, sorted (so the calibration hash does not depend on listing order). */
async function imageFiles(dir: string): Promise<string[]> {
  // Walked by hand: `readdir`'s `recursive` names each entry's folder only from Node 20.12 (`parentPath`).
  const files: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    // A loop, not push(...): a folder of some 125,000 images or more would overflow the call stack.
    if (e.isDirectory()) for (const file of await imageFiles(full)) files.push(file);
    else if ((e.isFile() || e.isSymbolicLink()) && isCalibrationImage(e.name)) files.push(full);
  }
  return files.sort();
}

/** Calibration faces, as {@link readCalibrationFaces} finds them. */
export interface CalibrationFaces {
  /** Over the files' names and bytes: keys the int8 graph's cache file. */
  readonly sha256: string;
  /** The folder, as the user named it (for the recorded calibration). */
  readonly folder: string;
  /** How many images it holds. */
  readonly images: number;
  /** The faces decoded and resized to the network's input; only needed when the int8 graph is built. */
  faces(): Promise<RgbImage[]>;
}

/**
 * The calibration faces: every image under `dir` (face crops or face shots, searched recursively). Only the
 * bytes are read and hashed here; decoding waits for {@link CalibrationFaces.faces}, so a load that finds the
 * int8 graph cached decodes nothing.
 *
 * @throws InvalidOptionsError when no folder is named (option or {@link CALIBRATION_DIR_ENV}) or it holds no
 *   image.
 */
export async function readCalibrationFaces(
  component: string,
  dir: string | undefined,
  size: number,
  hint = '',
): Promise<CalibrationFaces> {
  const folder = dir ?? process.env[CALIBRATION_DIR_ENV];
  if (!folder) {
    throw new InvalidOptionsError(
      component,
      `precision "int8" calibrates on face images: set ${CALIBRATION_DIR_ENV} to a folder of face crops ` +
        `(a few dozen, of the kind the embedder will see)${hint}`,
    );
  }
  // Where the folder was named, so that a stale variable is recognised as one.
  const named =
    dir === undefined
      ? `calibration folder ${folder} (from $${CALIBRATION_DIR_ENV})`
      : `calibration folder ${folder}`;
  const files = await imageFiles(path.resolve(folder)).catch((cause: unknown) => {
    throw new InvalidOptionsError(component, `${named} cannot be read${hint}`, { cause });
  });
  if (files.length === 0)
    throw new InvalidOptionsError(component, `${named} holds no png/jpeg/webp image${hint}`);
  const hash = createHash('sha256');
  const contents: Uint8Array[] = [];
  for (const file of files) {
    const bytes = await readFile(file);
    hash.update(path.relative(folder, file)).update(bytes);
    contents.push(bytes);
  }
  return {
    sha256: hash.digest('hex'),
    folder: path.resolve(folder),
    images: files.length,
    faces: async () => {
      const faces: RgbImage[] = [];
      for (const [i, bytes] of contents.entries()) {
        const image = await decodeImage(bytes).catch((error: unknown) => {
          // Named: "Not an image" alone does not say which of the folder's files it is.
          if (FacerecInputError.isInstance(error)) error.message = `${named}: ${files[i]}: ${error.message}`;
          throw error;
        });
        faces.push(await resizeRgb(image, size, size));
      }
      return faces;
    },
  };
}

/**
 * Activation ranges measured once, on named faces, and shipped with the package for one model's weights and
 * graph layout (`scripts/int8-ranges.ts` writes them), so that its int8 graph needs no calibration images.
 */
export interface ShippedInt8Ranges {
  /** What the ranges were measured on. */
  readonly source: string;
  /** The weights they belong to. */
  readonly weightsSha256: string;
  /** The float graph's layout they belong to (its tensor names): `v<builder>.<graph>`. */
  readonly graphVersion: string;
  /** Each quantized activation's `[min, max]`, and the input's. */
  readonly ranges: Readonly<Record<string, readonly [number, number]>>;
}

/** Where an int8 graph's activation ranges come from: calibration faces, or ranges shipped with the package. */
export type Int8Calibration =
  | CalibrationFaces
  | { readonly sha256: string; readonly ranges: ReadonlyMap<string, ActivationRange> };

/**
 * The calibration of an int8 graph: the faces in `dir` (or `$FACEREC_CALIBRATION_DIR`) when one is named, which
 * always wins; else `shipped` when it belongs to these weights and this graph layout; else an error asking for
 * calibration faces.
 */
export async function int8Calibration(
  component: string,
  dir: string | undefined,
  size: number,
  shipped: {
    readonly ranges: ShippedInt8Ranges;
    readonly weightsSha256: string;
    readonly graphVersion: string;
  },
): Promise<Int8Calibration> {
  const named = dir ?? process.env[CALIBRATION_DIR_ENV];
  const { ranges } = shipped;
  const applies =
    ranges.weightsSha256 === shipped.weightsSha256 && ranges.graphVersion === shipped.graphVersion;
  if (named || !applies) {
    const hint = !applies
      ? `; the int8 ranges that ship are for ${ranges.weightsSha256 === shipped.weightsSha256 ? `graph layout ${ranges.graphVersion}, not ${shipped.graphVersion} (scripts/int8-ranges.ts measures them again)` : 'other weights'}`
      : dir === undefined
        ? ` (unset ${CALIBRATION_DIR_ENV} to use the int8 ranges that ship for these weights)`
        : '';
    return readCalibrationFaces(component, dir, size, hint);
  }
  // Keyed by what the graph is built from (not by the description of where the ranges were measured).
  const { weightsSha256, graphVersion } = ranges;
  return {
    sha256: createHash('sha256')
      .update(JSON.stringify({ weightsSha256, graphVersion, ranges: ranges.ranges }))
      .digest('hex'),
    ranges: new Map(Object.entries(ranges.ranges).map(([name, [min, max]]) => [name, { min, max }])),
  };
}

/**
 * The activation ranges of the float graph `bytes` over the calibration faces, run {@link CALIBRATION_BATCH} at
 * a time (what an int8 graph calibrated on them is built from, and what `scripts/int8-ranges.ts` ships).
 */
export async function measureInt8Ranges(
  bytes: Uint8Array,
  calibration: CalibrationFaces,
  toBatch: (faces: readonly RgbImage[]) => CalibrationBatch,
  intraOpNumThreads: number,
): Promise<Map<string, ActivationRange>> {
  const faces = await calibration.faces();
  const batches: CalibrationBatch[] = [];
  for (let i = 0; i < faces.length; i += CALIBRATION_BATCH)
    batches.push(toBatch(faces.slice(i, i + CALIBRATION_BATCH)));
  return calibrateRanges(bytes, batches, { intraOpNumThreads });
}

/**
 * Where the calibration of a float graph's int8 form is recorded: `<float graph>-int8-calibration.json`, beside
 * it in the model cache. It names the calibration faces of the int8 graph last built or loaded from them
 * (their folder, count and hash) and their activation ranges, so that later loads without a calibration folder
 * (`facerec serve --precision int8` run again, another process on the same cache) use that calibration: the same
 * cached int8 graph, or the same graph built again from the ranges if it was removed.
 */
export const recordedCalibrationPath = (float: Pick<CachedGraph, 'path'>): string =>
  float.path.replace(/\.onnx$/, '-int8-calibration.json');

/** Largest calibration record read (InceptionResnetV1's holds about 300 ranges, some 40 KB). */
const MAX_RECORD_BYTES = 4 * 2 ** 20;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 in hex');
const recordSchema = z
  .object({
    formatVersion: z.literal(1),
    weightsSha256: sha256Hex,
    calibrationSha256: sha256Hex,
    folder: z.string().max(4096),
    images: z.number().int().positive(),
    recordedAt: z.string().max(64),
    ranges: z
      .record(z.string().max(1024), z.tuple([z.number(), z.number()]))
      .refine((r) => Object.values(r).every(([min, max]) => min <= max), 'every range has min ≤ max'),
  })
  .strict();
type CalibrationRecord = z.infer<typeof recordSchema>;

async function readCalibrationRecord(file: string): Promise<CalibrationRecord | 'missing' | string> {
  let text: Buffer;
  try {
    text = await readFileUpTo(file, MAX_RECORD_BYTES, () =>
      Object.assign(new Error(`larger than ${MAX_RECORD_BYTES} bytes`), { code: 'TOO_LARGE' }),
    );
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return 'missing';
    return (error as Error).message;
  }
  let value: unknown;
  try {
    value = JSON.parse(text.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  const parsed = recordSchema.safeParse(value);
  return parsed.success
    ? parsed.data
    : zodIssues(parsed.error)
        .map((i) => `${i.path}: ${i.message}`)
        .join('; ');
}

/** The calibration recorded for `float` (see {@link recordedCalibrationPath}), as {@link cachedInt8Graph} takes it. */
export interface RecordedCalibration {
  readonly sha256: string;
  readonly ranges: ReadonlyMap<string, ActivationRange>;
  /** Where it was measured: the folder and its number of images, and when it was recorded. */
  readonly recorded: { readonly folder: string; readonly images: number; readonly at: string };
}

/**
 * The calibration recorded in the model cache for `float`'s int8 form (the one used when no calibration folder
 * is named and no ranges ship for the weights).
 *
 * @throws InvalidOptionsError when none is recorded for these weights (saying to name a calibration folder), or
 *   the record cannot be used (damaged: naming the file and what is wrong with it).
 */
export async function recordedInt8Calibration(
  component: string,
  float: Pick<CachedGraph, 'path' | 'weightsSha256'>,
): Promise<RecordedCalibration> {
  const file = recordedCalibrationPath(float);
  const record = await readCalibrationRecord(file);
  if (record === 'missing' || (typeof record !== 'string' && record.weightsSha256 !== float.weightsSha256)) {
    throw new InvalidOptionsError(
      component,
      `precision "int8" calibrates on face images: set ${CALIBRATION_DIR_ENV} to a folder of face crops ` +
        '(a few dozen, of the kind the embedder will see); no calibration is recorded in the model cache for ' +
        'these weights (one is, once an int8 graph has been loaded with a calibration folder)',
    );
  }
  if (typeof record === 'string') {
    throw new InvalidOptionsError(
      component,
      `the calibration recorded in the model cache (${file}) cannot be used (${record}): delete it, or set ` +
        `${CALIBRATION_DIR_ENV} to the calibration folder to record it again`,
    );
  }
  return {
    sha256: record.calibrationSha256,
    ranges: new Map(Object.entries(record.ranges).map(([name, [min, max]]) => [name, { min, max }])),
    recorded: { folder: record.folder, images: record.images, at: record.recordedAt },
  };
}

/**
 * Whether any graph named `<tag>-…` in the model cache has a recorded calibration: checked before an embedder's
 * weights are pulled, so that a load that can have none is refused first (see {@link recordedInt8Calibration}).
 */
export async function anyRecordedCalibration(cacheDir: string, tag: string): Promise<boolean> {
  const names = await readdir(path.join(cacheDir, 'onnx')).catch(() => [] as string[]);
  return names.some((n) => n.startsWith(`${tag}-`) && n.endsWith('-int8-calibration.json'));
}

/**
 * The int8 form of a cached float graph, itself cached beside it: `<float graph>-int8-<calibration sha256>-
 * q<QUANTIZER_VERSION>.onnx`, so new weights, new calibration faces or ranges, or a new quantizer each rebuild it.
 * With `record` (embedders that ship no ranges), calibration faces are recorded beside the float graph (see
 * {@link recordedCalibrationPath}) when the cache can be written and its record names other faces.
 */
export async function cachedInt8Graph(
  float: CachedGraph,
  calibration: Int8Calibration,
  toBatch: (faces: readonly RgbImage[]) => CalibrationBatch,
  intraOpNumThreads: number,
  { record = false }: { readonly record?: boolean } = {},
): Promise<CachedGraph> {
  const file = float.path.replace(
    /\.onnx$/,
    `-int8-${calibration.sha256.slice(0, 16)}-q${QUANTIZER_VERSION}.onnx`,
  );
  const floatBytes = async () => float.bytes ?? new Uint8Array(await readFile(float.path));
  let measured: Map<string, ActivationRange> | undefined;
  const graph = await cachedOnnxFile(file, float.weightsSha256, async () => {
    const bytes = await floatBytes();
    if ('ranges' in calibration) return quantizeModel(bytes, calibration.ranges);
    measured = await measureInt8Ranges(bytes, calibration, toBatch, intraOpNumThreads);
    return quantizeModel(bytes, measured);
  });
  if (record && 'faces' in calibration) {
    await recordCalibration(float, calibration, async () => {
      measured ??= await measureInt8Ranges(await floatBytes(), calibration, toBatch, intraOpNumThreads);
      return measured;
    });
  }
  return graph;
}

/**
 * Writes the record of `calibration` for `float` unless it names these faces already or the cache cannot be
 * written (a read-only image keeps its calibration folder). A record that cannot be written is said (a process
 * warning): the graph still loads, and the next load without a folder says what is missing.
 */
async function recordCalibration(
  float: CachedGraph,
  calibration: CalibrationFaces,
  ranges: () => Promise<Map<string, ActivationRange>>,
): Promise<void> {
  const file = recordedCalibrationPath(float);
  const existing = await readCalibrationRecord(file);
  if (typeof existing !== 'string' && existing.calibrationSha256 === calibration.sha256) return;
  if ((await cacheWritable(path.dirname(file))) !== undefined) return;
  try {
    const record: CalibrationRecord = {
      formatVersion: 1,
      weightsSha256: float.weightsSha256,
      calibrationSha256: calibration.sha256,
      folder: calibration.folder,
      images: calibration.images,
      recordedAt: new Date().toISOString(),
      ranges: Object.fromEntries([...(await ranges())].map(([name, { min, max }]) => [name, [min, max]])),
    };
    await writeFileAtomic(file, `${JSON.stringify(record)}\n`);
  } catch (error) {
    process.emitWarning(
      `the int8 calibration could not be recorded in the model cache (${file}: ${(error as Error).message}); ` +
        `later loads need ${CALIBRATION_DIR_ENV} set`,
      { code: 'FACEREC_CALIBRATION_NOT_RECORDED' },
    );
  }
}
