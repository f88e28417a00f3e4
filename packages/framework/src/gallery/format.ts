/**
 * The gallery file: JSON, versioned, validated with zod on the way in and written atomically.
 *
 * Embeddings are stored as base64 of little-endian float32 (`embeddingEncoding: "base64-float32le"`), not as
 * number arrays: it is exact (the float32 bits round-trip, with no decimal printing), about 3× smaller
 * (5.3 characters per value instead of ~11–20 for a shortest-round-trip decimal) and faster to parse —
 * 100,000 identities × 512-d is ~270 MB as base64 and ~1 GB as numbers. The rest of the file (embedder,
 * threshold, calibration, names, sources) stays readable JSON, one identity per line, so it diffs well.
 */
import { z } from 'zod';
import { EMBEDDER_PRECISIONS } from '../contracts/embedder.js';
import { InvalidOptionsError } from '../errors.js';
import { recordedCropPolicySchema } from '../mtcnn/crop.js';
import { formatIssues } from '../options.js';
import { GalleryFormatError, type GalleryFormatIssue } from './errors.js';
import type { GalleryExample, ResolvedGalleryData } from './types.js';
import { decodeFloat32, encodeFloat32, norm } from './vectors.js';

/** Value of the file's `format` field. */
export const GALLERY_FORMAT = 'facerec-gallery';
/** The file format version this code writes and reads. */
export const GALLERY_FORMAT_VERSION = 1;
/** Value of the file's `embeddingEncoding` field. */
export const EMBEDDING_ENCODING = 'base64-float32le';
/** Stored embeddings must have a norm within this of 1 (they are written normalised). */
export const UNIT_NORM_TOLERANCE = 1e-3;
/** Reserved: the answer for a query that matches no one, so no identity may be called that. */
export const UNKNOWN_IDENTITY = 'unknown';
/**
 * Reserved for new identities: the result the pipeline and the CLI give a frame or an image without a face, which an
 * identity of that name could not be told from. (Galleries written before it was reserved keep loading.)
 */
export const NO_FACE_RESULT = 'no face';

const positiveInt = z.number().int().positive();
const rate = z.number().min(0).max(1);
const isoDate = z.iso.datetime({ offset: true });

const preprocessingShape = {
  layout: z.enum(['NCHW', 'NHWC']),
  channelOrder: z.literal('RGB'),
  mean: z.tuple([z.number(), z.number(), z.number()]),
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
};
const sizeSchema = z.strictObject({ width: positiveInt, height: positiveInt });
/** The file's `embedder.preprocessing`: exactly these keys. */
const preprocessingSchema = z.strictObject({
  inputSize: sizeSchema,
  ...preprocessingShape,
  /** The crop policy the embeddings were cut with; absent in galleries written before it was recorded. */
  crop: recordedCropPolicySchema.optional(),
});
/**
 * An embedder's `preprocessing` as {@link FileGallery.create} accepts it: the same fields, but other keys are
 * dropped rather than refused, so an embedder whose preprocessing says more than this format records (a
 * future alignment step, say) can still build a gallery.
 */
export const embedderPreprocessingSchema = z.object({
  inputSize: z.object({ width: positiveInt, height: positiveInt }),
  ...preprocessingShape,
  /** The crop policy the embeddings were cut with; absent in galleries written before it was recorded. */
  crop: recordedCropPolicySchema.optional(),
});
/** Schemas shared by the file and by {@link FileGallery.create}'s validation. */
export const metricSchema = z.enum(['euclidean', 'cosine']);
export const aggregationSchema = z.enum(['nearest', 'centroid']);
/** A distance threshold: a finite number ≥ 0 (0: never calibrated, every face `unknown`). */
export const thresholdSchema = z.number().min(0);
const identityNameSchema = z
  .string()
  .min(1)
  .refine((name) => name !== UNKNOWN_IDENTITY, `"${UNKNOWN_IDENTITY}" is reserved for unmatched queries`)
  // An answer of the pipeline too: an identity of that name could not be told from it (a file written by hand, or
  // before names were checked on enrollment; other spellings, "Unknown", still load, as they always did).
  .refine(
    (name) => name !== NO_FACE_RESULT,
    `"${NO_FACE_RESULT}" is reserved for images without a face (an older facerec stored it): rename the identity in the file`,
  );

const embedderPrecisionSchema = z.enum(EMBEDDER_PRECISIONS);

const calibrationPointSchema = z.strictObject({
  targetFar: rate,
  threshold: z.number(),
  far: rate,
  tar: rate,
  resolved: z.boolean(),
});

/**
 * A calibration record is a report (how the threshold was chosen), not something matching reads: keys this
 * version does not know are dropped rather than refused, so a gallery calibrated by a later facerec (which may
 * record more, as `precision` was added) still opens here.
 */
export const calibrationSchema = z.object({
  method: z.enum(['probes', 'leave-one-out']),
  targetFar: rate,
  achievedFar: rate,
  achievedFrr: rate,
  genuinePairs: z.number().int().min(0),
  impostorPairs: z.number().int().min(0),
  calibratedAt: isoDate,
  equalErrorRate: z.strictObject({ threshold: z.number(), rate }),
  keyPoints: z.array(calibrationPointSchema),
  precision: embedderPrecisionSchema.optional(),
});

/**
 * Checks a threshold and the calibration record that chose it before a gallery store writes them (the file
 * gallery's `withThreshold`, the Postgres store's `setThreshold`): one rule and one message for every store.
 * @returns the calibration record as the schema reads it (unknown keys dropped), or `undefined` for none.
 * @throws InvalidOptionsError naming `component` when the threshold is not a finite number ≥ 0 or the record is
 * not valid (each bad field named).
 */
export function checkThresholdSetting(
  component: string,
  threshold: number,
  calibration: unknown,
): z.infer<typeof calibrationSchema> | undefined {
  if (!thresholdSchema.safeParse(threshold).success) {
    throw new InvalidOptionsError(
      component,
      `threshold must be a finite number ≥ 0 (a distance), got ${threshold}`,
    );
  }
  if (calibration === undefined) return undefined;
  const checked = calibrationSchema.safeParse(calibration);
  if (checked.success) return checked.data;
  throw new InvalidOptionsError(component, `invalid calibration record: ${formatIssues(checked.error)}`, {
    cause: checked.error,
  });
}

const identitySchema = z.strictObject({
  name: identityNameSchema,
  examples: z.array(z.strictObject({ source: z.string(), embedding: z.string() })).min(1),
});

const fileSchema = z.strictObject({
  format: z.literal(GALLERY_FORMAT),
  formatVersion: z.literal(GALLERY_FORMAT_VERSION),
  createdAt: isoDate,
  embedder: z.strictObject({
    modelId: z.string().min(1),
    weightsSha256: z.string().min(1).nullable(),
    dimension: positiveInt,
    preprocessing: preprocessingSchema,
  }),
  metric: metricSchema,
  aggregation: aggregationSchema,
  threshold: thresholdSchema,
  calibration: calibrationSchema.nullable(),
  embeddingEncoding: z.literal(EMBEDDING_ENCODING),
  identities: z.array(identitySchema),
});
/** The file without its identities, which are checked one at a time (see {@link galleryFileSteps}). */
const headerSchema = fileSchema.extend({ identities: z.array(z.unknown()) });

/** The JSON of a version-1 gallery file, as {@link serialiseGallery} writes it. */
export type GalleryFileV1 = z.infer<typeof fileSchema>;

const issuePath = (p: readonly PropertyKey[]) => p.map(String).join('.');

/** Converts zod issues to {@link GalleryFormatIssue}s. */
export function zodIssues(error: z.ZodError): GalleryFormatIssue[] {
  return error.issues.map((i) => ({ path: issuePath(i.path), message: i.message }));
}

/**
 * Validates the parsed JSON of a gallery file and decodes its embeddings.
 *
 * @throws {@link GalleryFormatError} listing every problem: not a facerec gallery, a `formatVersion` other
 *   than 1, a schema violation, base64 that is not canonical, an embedding of the wrong length or not of
 *   unit norm, duplicate identity names.
 */
export function parseGalleryFile(value: unknown, source?: string): ResolvedGalleryData {
  const steps = galleryFileSteps(value, source);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * {@link parseGalleryText} a slice of about `sliceMs` at a time, the event loop running between slices: what a
 * server reloading a large gallery uses, so that its searches go on meanwhile (at 100,000 × 128 the whole
 * parse holds the loop ≈ 0.6 s; JSON.parse itself, one call, ≈ 0.1 s of it).
 */
export async function parseGalleryTextInSlices(
  text: string,
  source?: string,
  sliceMs = 10,
): Promise<ResolvedGalleryData> {
  // A turn first: reading the text (decoding it from UTF-8) was one long step already.
  await new Promise((resolve) => setImmediate(resolve));
  const steps = galleryFileSteps(jsonOf(text, source), source);
  let since = performance.now();
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    if (performance.now() - since < sliceMs) continue;
    await new Promise((resolve) => setImmediate(resolve));
    since = performance.now();
  }
}

/**
 * {@link parseGalleryFile}'s work, one identity per step: the header checked, then each identity checked and
 * its embeddings decoded. Every problem is listed, schema ones first (when there are any, embeddings are not
 * decoded); the data when there is none.
 */
function* galleryFileSteps(value: unknown, source?: string): Generator<void, ResolvedGalleryData> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new GalleryFormatError('not a JSON object', { source, problem: 'not-a-gallery' });
  }
  const header = value as { format?: unknown; formatVersion?: unknown };
  if (header.format !== GALLERY_FORMAT) {
    throw new GalleryFormatError(
      `not a facerec gallery file (expected "format": "${GALLERY_FORMAT}", got ${JSON.stringify(header.format) ?? 'nothing'})`,
      { source, problem: 'not-a-gallery' },
    );
  }
  const version = header.formatVersion;
  if (version !== GALLERY_FORMAT_VERSION) {
    const newer = typeof version === 'number' && version > GALLERY_FORMAT_VERSION;
    throw new GalleryFormatError(
      `unsupported formatVersion ${JSON.stringify(version) ?? '(missing)'}; this version of facerec reads ` +
        `formatVersion ${GALLERY_FORMAT_VERSION}${newer ? ' (the file was written by a newer facerec)' : ''}`,
      { source, problem: 'format-version' },
    );
  }
  const parsed = headerSchema.safeParse(value);
  // Listed as one parse of the whole file lists them: the file's own unknown keys after every identity's issues.
  const unknownKeys = (issue: z.core.$ZodIssue) =>
    issue.code === 'unrecognized_keys' && issue.path.length === 0;
  const schemaIssues = parsed.success
    ? []
    : zodIssues(new z.ZodError(parsed.error.issues.filter((i) => !unknownKeys(i))));
  const lastIssues = parsed.success ? [] : zodIssues(new z.ZodError(parsed.error.issues.filter(unknownKeys)));
  const file = parsed.success ? parsed.data : undefined;
  const given = (value as { identities?: unknown }).identities;
  const issues: GalleryFormatIssue[] = [];
  const seen = new Set<string>();
  const identities: DecodedIdentity[] = [];
  for (const [i, raw] of (Array.isArray(given) ? given : []).entries()) {
    const checked = identitySchema.safeParse(raw);
    if (!checked.success) {
      for (const issue of zodIssues(checked.error)) {
        schemaIssues.push({
          path: ['identities', i, issue.path].filter((p) => p !== '').join('.'),
          message: issue.message,
        });
      }
    } else if (file && schemaIssues.length === 0) {
      identities.push(decodedIdentity(checked.data, i, file.embedder.dimension, seen, issues));
    }
    yield;
  }
  schemaIssues.push(...lastIssues);
  if (schemaIssues.length || !file) {
    throw new GalleryFormatError('invalid gallery file', { source, issues: schemaIssues });
  }
  if (issues.length) throw new GalleryFormatError('invalid gallery file', { source, issues });
  return {
    embedder: { ...file.embedder, weightsSha256: file.embedder.weightsSha256 ?? undefined },
    metric: file.metric,
    aggregation: file.aggregation,
    threshold: file.threshold,
    calibration: file.calibration ?? undefined,
    createdAt: file.createdAt,
    identities,
  };
}

/** An identity of a file, its embeddings decoded. */
interface DecodedIdentity {
  readonly name: string;
  readonly examples: readonly GalleryExample[];
}

/** Identity `i` of a file, its embeddings decoded; what is wrong with them (or its name, seen before) goes to `issues`. */
function decodedIdentity(
  identity: z.infer<typeof identitySchema>,
  i: number,
  dimension: number,
  seen: Set<string>,
  issues: GalleryFormatIssue[],
): DecodedIdentity {
  if (seen.has(identity.name)) {
    issues.push({ path: `identities.${i}.name`, message: `duplicate identity "${identity.name}"` });
  }
  seen.add(identity.name);
  return {
    name: identity.name,
    examples: identity.examples.map((example, j) => {
      const where = `identities.${i}.examples.${j}.embedding`;
      const embedding = decodeFloat32(example.embedding);
      if (typeof embedding === 'string') {
        issues.push({ path: where, message: embedding });
      } else if (embedding.length !== dimension) {
        issues.push({
          path: where,
          message: `${embedding.length} values; the embedder's dimension is ${dimension}`,
        });
      } else {
        const n = norm(embedding);
        if (!(Math.abs(n - 1) <= UNIT_NORM_TOLERANCE)) {
          issues.push({ path: where, message: `not L2-normalised (norm ${n})` });
        }
      }
      return {
        source: example.source,
        embedding: typeof embedding === 'string' ? new Float32Array(0) : embedding,
      };
    }),
  };
}

/**
 * Where JSON.parse failed, without V8's excerpt of the text (which can be anything: several lines, or what the
 * file holds), so that the message stays one line and repeats nothing of the file.
 */
function jsonSyntaxReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (message.startsWith('Unexpected end of JSON input')) return 'it ends early: cut off?';
  // "Expected ',' or '}' after property value in JSON at position 6": the grammar's words, then where.
  const at = /^(.*?) (?:in|after) JSON at position (\d+)/.exec(message);
  if (at) return `${at[1]!.charAt(0).toLowerCase()}${at[1]!.slice(1)} at character ${Number(at[2]) + 1}`;
  return 'unexpected text';
}

/** Parses gallery file text (JSON). @throws {@link GalleryFormatError} */
export function parseGalleryText(text: string, source?: string): ResolvedGalleryData {
  return parseGalleryFile(jsonOf(text, source), source);
}

/** `text` parsed as JSON. @throws {@link GalleryFormatError} (`not-json`) naming where it is not JSON. */
function jsonOf(text: string, source: string | undefined): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new GalleryFormatError(`not valid JSON (${jsonSyntaxReason(error)})`, {
      source,
      cause: error,
      problem: 'not-json',
    });
  }
}

/** The identities, each with its embeddings as base64. */
type SerialisedIdentity = GalleryFileV1['identities'][number];

/**
 * The largest gallery file facerec reads or writes. A file is read as one string, and V8's longest string is
 * about 512 MiB: a larger one failed with "Invalid string length". About 170,000 examples of 512 dimensions or
 * 600,000 of 128; larger galleries belong in the Postgres store.
 */
export const MAX_GALLERY_FILE_BYTES = 480 * 2 ** 20;

/**
 * The refusal of a gallery file (or object) beyond {@link MAX_GALLERY_FILE_BYTES}: to read one of `bytes`
 * (`undefined`: more, from a pipe), or to write one (`writing`: nothing was written).
 */
export function galleryTooLarge(
  bytes: number | undefined,
  source?: string,
  writing = false,
  maxBytes = MAX_GALLERY_FILE_BYTES,
): GalleryFormatError {
  const limit = `${maxBytes / 2 ** 20} MiB`;
  // In MiB to one decimal, or in bytes where that would read as the limit itself.
  const size = (n: number) =>
    (n / 2 ** 20).toFixed(1) === (maxBytes / 2 ** 20).toFixed(1)
      ? `${n} bytes`
      : `${(n / 2 ** 20).toFixed(1)} MiB`;
  const what =
    bytes === undefined
      ? `more than the ${limit} a gallery file holds`
      : writing
        ? `this change would take the gallery beyond the ${limit} a gallery file holds: not written, the gallery is unchanged`
        : `${size(bytes)}, beyond the ${limit} a gallery file holds`;
  return new GalleryFormatError(
    `${what} (it is read as one string); keep galleries this large in the Postgres store (postgres://…?collection=…)`,
    {
      ...(source === undefined ? {} : { source }),
      code: 'GALLERY_TOO_LARGE',
      problem: writing ? 'too-large-to-write' : 'too-large',
    },
  );
}

/**
 * The file text for `data` (whose embeddings must already be normalised float32): pretty-printed header, then
 * one identity per line, in pieces so that a large gallery is never one giant string. Throws (before yielding
 * the piece that would cross it) when the file would
 * exceed `maxBytes` (a parameter for tests only: a file of the real limit is too large to write in one), naming
 * `source` (where it was to be written) when given.
 */
export function* serialiseGallery(
  data: ResolvedGalleryData,
  maxBytes = MAX_GALLERY_FILE_BYTES,
  source?: string,
): Generator<string> {
  const pre = data.embedder.preprocessing;
  const header: Omit<GalleryFileV1, 'identities'> = {
    format: GALLERY_FORMAT,
    formatVersion: GALLERY_FORMAT_VERSION,
    createdAt: data.createdAt,
    embedder: {
      modelId: data.embedder.modelId,
      weightsSha256: data.embedder.weightsSha256 ?? null,
      dimension: data.embedder.dimension,
      // Field by field: only what this format version defines is written.
      preprocessing: {
        inputSize: { width: pre.inputSize.width, height: pre.inputSize.height },
        layout: pre.layout,
        channelOrder: pre.channelOrder,
        mean: [pre.mean[0], pre.mean[1], pre.mean[2]],
        std: [pre.std[0], pre.std[1], pre.std[2]],
        ...(pre.crop
          ? {
              crop: {
                size: { width: pre.crop.size.width, height: pre.crop.size.height },
                shape: pre.crop.shape,
                margin: pre.crop.margin,
              },
            }
          : {}),
      },
    },
    metric: data.metric,
    aggregation: data.aggregation,
    threshold: data.threshold,
    calibration: data.calibration
      ? { ...data.calibration, keyPoints: data.calibration.keyPoints.map((p) => ({ ...p })) }
      : null,
    embeddingEncoding: EMBEDDING_ENCODING,
  };
  const head = JSON.stringify(header, null, 2);
  const start = `${head.slice(0, head.lastIndexOf('\n}'))},\n  "identities": [`;
  let bytes = Buffer.byteLength(start);
  if (bytes > maxBytes) throw galleryTooLarge(bytes, source, true, maxBytes);
  yield start;
  let first = true;
  for (const identity of data.identities) {
    const line: SerialisedIdentity = {
      name: identity.name,
      examples: identity.examples.map((e) => ({
        source: e.source,
        embedding: encodeFloat32(e.embedding),
      })),
    };
    const piece = `${first ? '' : ','}\n    ${JSON.stringify(line)}`;
    // A file facerec could not read back is not written (the writer abandons its temporary file).
    bytes += Buffer.byteLength(piece);
    if (bytes > maxBytes) throw galleryTooLarge(bytes, source, true, maxBytes);
    yield piece;
    first = false;
  }
  const end = `${first ? '' : '\n  '}]\n}\n`;
  if (bytes + Buffer.byteLength(end) > maxBytes)
    throw galleryTooLarge(bytes + Buffer.byteLength(end), source, true, maxBytes);
  yield end;
}
