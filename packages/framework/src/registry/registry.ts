import { z } from 'zod';
import { InvalidOptionsError, NoSuchModelError } from '../errors.js';
import { embedderPreprocessingSchema } from '../gallery/format.js';
import { recordedCropPolicySchema } from '../mtcnn/crop.js';
import { parseOptions } from '../options.js';
import { FACEAPI_RESNET, INCEPTION_RESNET_V1, MTCNN } from './builtin.js';
import type { DetectorDescription, EmbedderDescription, ModelDescription, ModelSettings } from './types.js';

/** An inference provider package, as the CLI, the Lambda runtime and the construct know it. */
export interface ProviderDescription {
  /** `--provider` / `FACEREC_PROVIDER` value, e.g. `onnx`. */
  readonly name: string;
  /** The npm package; it exports `createProvider(settings)` returning a `FaceProvider`. */
  readonly packageName: string;
  /**
   * Packages best installed with it, and why: named in the message for a provider that is not installed (the
   * tfjs provider without its wasm backend runs on the pure-JavaScript one, 10–50× slower).
   */
  readonly installWith?: { readonly packages: readonly string[]; readonly why: string };
  /** One line for help texts. */
  readonly summary: string;
}

/** The models a registry hands out when nobody names one. */
export interface RegistryDefaults {
  readonly provider: string;
  readonly detector: string;
  readonly embedder: string;
}

/** An embedder description with the options a setting or a gallery's model id stands for. */
export interface ResolvedEmbedder<Options extends object = object> {
  readonly description: EmbedderDescription<Options>;
  readonly options: Options;
  /** The deployment settings the options came from (e.g. `FACEREC_WEIGHTS`). */
  readonly settings: ModelSettings;
}

function byId<T extends { readonly id: string }>(items: readonly T[], kind: string): ReadonlyMap<string, T> {
  const map = new Map<string, T>();
  for (const item of items) {
    if (map.has(item.id))
      throw new InvalidOptionsError('ModelRegistry', `two ${kind}s with the id "${item.id}"`);
    map.set(item.id, item);
  }
  return map;
}

const aFunction = z.custom<unknown>((v) => typeof v === 'function', 'expected a function');
/**
 * What every description needs, checked when a registry is made, for callers outside TypeScript's checks: a
 * description without `kind` was dropped without a word, and one without `modelId()` failed at first use with a
 * TypeError. Ids are what `--embedder` / `--detector` and the `FACEREC_` variables take.
 */
const modelDescriptionSchema = z.object({
  kind: z.enum(['detector', 'embedder'], 'expected "detector" or "embedder"'),
  id: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/,
      'expected letters, digits, ".", "_" or "-" (at most 100), starting with a letter or digit: the id is given in flags and environment variables',
    ),
  summary: z.string(),
  licence: z.string(),
  options: z.custom<unknown>(
    (v) => typeof (v as { safeParse?: unknown } | null)?.safeParse === 'function',
    'expected a zod schema of the options',
  ),
  manifestEntries: aFunction,
});
const embedderFunctionsSchema = z.object({
  fromSettings: aFunction,
  modelId: aFunction,
  settingsForModelId: aFunction,
});

/** A recommended threshold: a distance between unit vectors, so above 0 and at most 2 (either metric). */
const recommendedThresholdSchema = z.object({ value: z.number().gt(0).max(2), measuredOn: z.string() });

/**
 * The facts of an embedder entry that every path reads (galleries, crops, matching), checked when a registry is
 * made: an entry with a dimension of 0, a standard deviation of 0 or a threshold of 7 was accepted, and a
 * threshold of 7 recognised strangers.
 */
const embedderFactsSchema = z.object({
  dimension: z.number().int().min(1).max(65_536),
  preprocessing: embedderPreprocessingSchema
    .extend({ crop: recordedCropPolicySchema })
    .refine(
      (p) => p.crop.size.width === p.inputSize.width && p.crop.size.height === p.inputSize.height,
      'crop.size must equal inputSize (the crop is what the network takes)',
    ),
  thresholds: z.object({
    euclidean: recommendedThresholdSchema.optional(),
    cosine: recommendedThresholdSchema.optional(),
  }),
});

/** The model id a gallery records for `description` at its default options; undefined when it needs settings. */
function defaultModelId(description: EmbedderDescription): string | undefined {
  try {
    return description.modelId(description.fromSettings({}));
  } catch {
    return undefined;
  }
}

/**
 * Refuses two embedders that claim one model id (`settingsForModelId`): a gallery records the id, and the
 * registry reopens it with the first embedder claiming it, so the second one's galleries would be matched by
 * another network without a word (a wrapper passing its inner model's id through, say). An alias, an entry
 * spread from another (`{ ...MODELS.embedder('faceapi-resnet'), id: 'mine', load }`: the same model-id
 * functions), says it is the same model, and is kept.
 */
function checkModelIds(embedders: readonly EmbedderDescription[]): void {
  for (const a of embedders) {
    const id = defaultModelId(a);
    if (id === undefined) continue;
    for (const b of embedders) {
      const alias = b.settingsForModelId === a.settingsForModelId && b.modelId === a.modelId;
      if (b !== a && !alias && b.settingsForModelId(id) !== undefined) {
        // The one to change is the one registered last: the one being added (never a built-in, listed first).
        const added = embedders.indexOf(a) > embedders.indexOf(b) ? a : b;
        throw new InvalidOptionsError(
          'ModelRegistry',
          `embedders "${a.id}" and "${b.id}" both claim the model id "${id}", which galleries record: a gallery ` +
            `enrolled with one would be matched by the other; give "${added.id}" a model id of its own (its modelId() and settingsForModelId())`,
        );
      }
    }
  }
}

/**
 * Every model facerec knows, described once: id, option schema, model store entries, input size, crop
 * policy, recommended thresholds and licence. Providers, the Lambda runtime's configuration, the CLI (its
 * `--embedder` / `--provider` choices and help) and the CDK construct all read it, so adding a model is one
 * description (plus, for a model a provider runs natively, its implementation there).
 *
 * Registries are immutable: {@link ModelRegistry.with} returns a new one.
 *
 * @example
 * const registry = MODELS.with(myEmbedderDescription);
 * const provider = createOnnxProvider({ registry });
 * const embedder = await provider.embedder('my-embedder');
 */
export class ModelRegistry {
  readonly #detectors: ReadonlyMap<string, DetectorDescription>;
  readonly #embedders: ReadonlyMap<string, EmbedderDescription>;
  readonly #providers: ReadonlyMap<string, ProviderDescription>;
  readonly defaults: RegistryDefaults;

  constructor(
    models: readonly ModelDescription[],
    providers: readonly ProviderDescription[],
    defaults: RegistryDefaults,
  ) {
    for (const model of models) {
      const named = (model as { id?: unknown } | null)?.id;
      const what = `ModelRegistry: ${typeof named === 'string' ? `model "${named}"` : 'a model without an id'}`;
      parseOptions(modelDescriptionSchema, model, what);
      if (model.kind === 'embedder') parseOptions(embedderFunctionsSchema, model, what);
    }
    this.#detectors = byId(
      models.filter((m): m is DetectorDescription => m.kind === 'detector'),
      'detector',
    );
    this.#embedders = byId(
      models.filter((m): m is EmbedderDescription => m.kind === 'embedder'),
      'embedder',
    );
    for (const embedder of this.#embedders.values()) {
      parseOptions(embedderFactsSchema, embedder, `ModelRegistry: embedder "${embedder.id}"`);
    }
    checkModelIds([...this.#embedders.values()]);
    this.#providers = new Map(providers.map((p) => [p.name, p]));
    this.defaults = Object.freeze({ ...defaults });
    // Fail at construction, not at the first request, when a default names nothing.
    this.detector(defaults.detector);
    this.embedder(defaults.embedder);
    this.provider(defaults.provider);
  }

  /** A new registry with these models added (or, for an id already present, replaced). */
  with(...models: readonly ModelDescription[]): ModelRegistry {
    const ids = new Set(models.map((m) => `${m.kind}:${m.id}`));
    const kept = [...this.#detectors.values(), ...this.#embedders.values()].filter(
      (m) => !ids.has(`${m.kind}:${m.id}`),
    );
    return new ModelRegistry([...kept, ...models], [...this.#providers.values()], this.defaults);
  }

  /** Detector ids, in registration order. */
  get detectorIds(): readonly string[] {
    return [...this.#detectors.keys()];
  }

  /** Embedder ids, in registration order. */
  get embedderIds(): readonly string[] {
    return [...this.#embedders.keys()];
  }

  /** Provider names. */
  get providerNames(): readonly string[] {
    return [...this.#providers.keys()];
  }

  /** @throws NoSuchModelError listing the detector ids. */
  detector(id: string): DetectorDescription {
    const found = this.#detectors.get(id);
    if (!found) throw new NoSuchModelError('detector', id, this.detectorIds);
    return found;
  }

  /** @throws NoSuchModelError listing the embedder ids. */
  embedder(id: string): EmbedderDescription {
    const found = this.#embedders.get(id);
    if (!found) throw new NoSuchModelError('embedder', id, this.embedderIds);
    return found;
  }

  /** @throws InvalidOptionsError listing the provider names. */
  provider(name: string): ProviderDescription {
    const found = this.#providers.get(name);
    if (!found) {
      throw new InvalidOptionsError(
        'provider',
        `unknown provider "${name}"; valid providers: ${this.providerNames.join(', ')}`,
      );
    }
    return found;
  }

  /**
   * The embedder `id` with the options deployment settings stand for (plus `overrides`, e.g. a batch size),
   * validated against its schema.
   * @throws NoSuchModelError for an unknown id; InvalidOptionsError for options the model refuses.
   */
  resolveEmbedder(
    id: string,
    settings: ModelSettings = {},
    overrides: Readonly<Record<string, unknown>> = {},
  ): ResolvedEmbedder {
    const description = this.embedder(id);
    const options = { ...description.fromSettings(settings), ...overrides };
    return {
      description,
      options: parseOptions(description.options, options, `embedder ${id}`),
      settings: definedOnly(settings),
    };
  }

  /**
   * The embedder a gallery recorded as `modelId` (e.g. `inception-resnet-v1/vggface2`), with the options
   * that rebuild it; `settings` overrides what the id implies (a checkpoint path for a gallery built from a
   * local `.pt` file).
   * @throws NoSuchModelError when no registered embedder makes that model id.
   */
  embedderForModelId(modelId: string, settings: ModelSettings = {}): ResolvedEmbedder {
    for (const description of this.#embedders.values()) {
      const implied = description.settingsForModelId(modelId);
      if (implied) return this.resolveEmbedder(description.id, { ...implied, ...definedOnly(settings) });
    }
    // The ids a gallery records (each embedder's, with its default options), not the embedder ids.
    const known = [...this.#embedders.values()].map((d) => d.modelId(d.fromSettings({})));
    throw new NoSuchModelError(
      'embedder',
      modelId,
      known,
      `no embedder makes "${modelId}", the model id the gallery records; the model ids embedders make: ${known.join(', ')} (with other weights, the id names them: e.g. inception-resnet-v1/casia-webface)`,
    );
  }

  /** The model store entries a deployment with this embedder (and detector) needs. */
  manifestEntries(embedder: ResolvedEmbedder, detector = this.defaults.detector): string[] {
    const det = this.detector(detector);
    return [
      ...det.manifestEntries(det.options.parse({})),
      ...embedder.description.manifestEntries(embedder.options),
    ];
  }
}

function definedOnly(settings: ModelSettings): ModelSettings {
  return Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined));
}

/** The inference providers facerec ships. */
export const BUILTIN_PROVIDERS: readonly ProviderDescription[] = Object.freeze([
  Object.freeze({
    name: 'onnx',
    packageName: '@facerec/provider-onnx',
    summary: 'onnxruntime-node (ONNX graphs built from the PyTorch checkpoints); the fastest on CPU',
  }),
  Object.freeze({
    name: 'tfjs',
    packageName: '@facerec/provider-tfjs',
    installWith: Object.freeze({
      packages: Object.freeze(['@tensorflow/tfjs-backend-wasm']),
      why: 'its WebAssembly backend (without it or @tensorflow/tfjs-node, tfjs runs on its pure-JavaScript backend, 10–50× slower)',
    }),
    summary: 'TensorFlow.js: tfjs-node when installed, else wasm, else cpu; $FACEREC_TFJS_BACKEND picks one',
  }),
]);

/**
 * The built-in registry: MTCNN, InceptionResnetV1 and face-api.js's recognition net on the onnx and tfjs
 * providers. The default embedder is the seed pipeline's, InceptionResnetV1 (VGGFace2 weights).
 */
export const MODELS: ModelRegistry = new ModelRegistry(
  [MTCNN, INCEPTION_RESNET_V1, FACEAPI_RESNET],
  BUILTIN_PROVIDERS,
  { provider: 'onnx', detector: 'mtcnn', embedder: 'inception-resnet-v1' },
);
