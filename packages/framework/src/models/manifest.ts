/**
 * The model manifest: every model file facerec knows, where it comes from and how to verify it.
 *
 * The canonical manifest is `models/manifest.json` in the repository (published as `@facerec/models`).
 * This module validates it; {@link ModelStore} fetches and verifies the files it lists.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { z } from 'zod';
import { InvalidOptionsError } from '../errors.js';

/** File formats a manifest entry may declare. */
export const MODEL_FORMATS = ['pytorch-state-dict', 'tfjs-weights', 'tfjs-weights-manifest', 'onnx'] as const;

/** A file format a manifest entry may declare. */
export type ModelFormat = (typeof MODEL_FORMATS)[number];

const sha256Schema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex digits')
  .nullable();

/** Where a model file comes from: its URL, or a file shipped inside an npm package (URL as fallback). */
const sourceSchema = z.union([
  z.literal('url'),
  z.strictObject({
    npm: z.string().regex(/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/, 'expected an npm package name'),
    // Relative and without `..` so an entry cannot point outside its package.
    path: z
      .string()
      .min(1)
      .refine(
        (p) => !p.startsWith('/') && !p.split(/[\\/]/).includes('..'),
        'expected a path inside the package',
      ),
  }),
]);

const entrySchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected lowercase letters, digits and dashes'),
  description: z.string().min(1),
  // A bare file name: it becomes `<cacheDir>/<file>` and `<mirrorDir>/<file>`, so no separators or dot-dot.
  file: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected a bare file name'),
  url: z.url({ protocol: /^https?$/ }),
  sha256: sha256Schema,
  size: z.number().int().nonnegative().nullable(),
  license: z.string().min(1),
  format: z.enum(MODEL_FORMATS),
  source: sourceSchema,
  notes: z.string().optional(),
});

/** zod schema of the manifest (`models/manifest.json`); names and file names must be unique. */
export const modelManifestSchema = z
  .strictObject({
    version: z.literal(1),
    models: z.array(entrySchema),
  })
  .superRefine((manifest, ctx) => {
    for (const key of ['name', 'file'] as const) {
      const seen = new Set<string>();
      manifest.models.forEach((entry, i) => {
        if (seen.has(entry[key])) {
          ctx.addIssue({
            code: 'custom',
            path: ['models', i, key],
            message: `duplicate ${key} "${entry[key]}"`,
          });
        }
        seen.add(entry[key]);
      });
    }
  });

/** One model file of the manifest. */
export type ModelEntry = z.infer<typeof entrySchema>;

/** Where an entry's file comes from: `'url'`, or `{ npm, path }` for a file shipped in an npm package. */
export type ModelSource = ModelEntry['source'];

/** The validated manifest: `{ version: 1, models: ModelEntry[] }`. */
export type ModelManifest = z.infer<typeof modelManifestSchema>;

/**
 * Validates a parsed manifest (for example `JSON.parse` of `manifest.json`, or a JSON import, whose
 * string-typed fields TypeScript would not accept as a {@link ModelManifest}).
 *
 * @param origin Named in the error message, e.g. the file path.
 * @throws InvalidOptionsError listing every problem.
 */
export function parseManifest(data: unknown, origin = 'model manifest'): ModelManifest {
  const result = modelManifestSchema.safeParse(data);
  if (!result.success) {
    throw new InvalidOptionsError('ModelManifest', `invalid ${origin}:\n${z.prettifyError(result.error)}`, {
      cause: result.error,
    });
  }
  return result.data;
}

/**
 * Reads and validates a manifest file. Without `file`, reads `@facerec/models/manifest.json` as resolved
 * from this package (the monorepo's `models/manifest.json`).
 *
 * @throws InvalidOptionsError when the file is missing, not JSON, or invalid.
 */
export async function loadManifest(file?: string): Promise<ModelManifest> {
  let target = file;
  if (target === undefined) {
    try {
      target = createRequire(import.meta.url).resolve('@facerec/models/manifest.json');
    } catch (cause) {
      throw new InvalidOptionsError(
        'ModelManifest',
        'cannot find @facerec/models/manifest.json; install @facerec/models or pass the manifest path',
        { cause },
      );
    }
  }
  let text: string;
  try {
    text = await readFile(target, 'utf8');
  } catch (cause) {
    throw new InvalidOptionsError('ModelManifest', `cannot read ${target}: ${String(cause)}`, { cause });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (cause) {
    throw new InvalidOptionsError('ModelManifest', `${target} is not valid JSON: ${String(cause)}`, {
      cause,
    });
  }
  return parseManifest(data, target);
}
