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
import { resizeRgb } from '@facerec/framework/internal';
import { type CalibrationBatch, calibrateRanges } from './graph/calibrate.js';
import { type ActivationRange, quantizeModel } from './graph/quantize.js';
import { type CachedGraph, cachedOnnxFile } from './model-cache.js';

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
 * The int8 form of a cached float graph, itself cached beside it: `<float graph>-int8-<calibration sha256>-
 * q<QUANTIZER_VERSION>.onnx`, so new weights, new calibration faces or ranges, or a new quantizer each rebuild it.
 */
export async function cachedInt8Graph(
  float: CachedGraph,
  calibration: Int8Calibration,
  toBatch: (faces: readonly RgbImage[]) => CalibrationBatch,
  intraOpNumThreads: number,
): Promise<CachedGraph> {
  const file = float.path.replace(
    /\.onnx$/,
    `-int8-${calibration.sha256.slice(0, 16)}-q${QUANTIZER_VERSION}.onnx`,
  );
  return cachedOnnxFile(file, float.weightsSha256, async () => {
    const bytes = float.bytes ?? new Uint8Array(await readFile(float.path));
    const ranges =
      'ranges' in calibration
        ? calibration.ranges
        : await measureInt8Ranges(bytes, calibration, toBatch, intraOpNumThreads);
    return quantizeModel(bytes, ranges);
  });
}
