import { z } from 'zod';
import type { FaceDetector } from '../contracts/detector.js';
import type { FaceEmbedder } from '../contracts/embedder.js';
import type { FaceProvider } from '../contracts/provider.js';
import { SPECIFICATION_VERSION } from '../contracts/version.js';
import { FacerecError, InvalidOptionsError, ModelLoadError, NoSuchModelError } from '../errors.js';
import { loadManifest } from '../models/manifest.js';
import { ModelStore } from '../models/store.js';
import { describeCropPolicy, sameCropPolicy } from '../mtcnn/crop.js';
import { parseOptions } from '../options.js';
import { MODELS, ModelRegistry } from './registry.js';
import type { DetectorDescription, EmbedderDescription, ModelLoadContext } from './types.js';

/** A provider's own implementation of one registered detector. */
export interface DetectorImplementation {
  readonly description: DetectorDescription;
  /** Validates `options` against the description's schema, then builds the detector. */
  create(options: unknown, context: ModelLoadContext): FaceDetector;
}

/** A provider's own implementation of one registered embedder. */
export interface EmbedderImplementation {
  readonly description: EmbedderDescription;
  /** Validates `options` against the description's schema, then loads the embedder. */
  create(options: unknown, context: ModelLoadContext): Promise<FaceEmbedder>;
}

const component = (context: ModelLoadContext, id: string) => `${context.provider} ${id}`;

/**
 * Binds a detector implementation to its registry description: options are parsed with the description's
 * schema (unknown keys refused) before `create` sees them, so `create` receives them typed and valid.
 */
export function implementDetector<Options extends object>(
  description: DetectorDescription<Options>,
  create: (options: Options, context: ModelLoadContext) => FaceDetector,
): DetectorImplementation {
  return {
    description,
    create: (options, context) =>
      create(parseOptions(description.options, options, component(context, description.id)), context),
  };
}

/** Binds an embedder implementation to its registry description (see {@link implementDetector}). */
export function implementEmbedder<Options extends object>(
  description: EmbedderDescription<Options>,
  load: (options: Options, context: ModelLoadContext) => Promise<FaceEmbedder>,
): EmbedderImplementation {
  return {
    description,
    create: async (options, context) =>
      load(parseOptions(description.options, options, component(context, description.id)), context),
  };
}

/** The options every provider package's factory takes; each adds its own (threads, backend, …). */
export interface FaceProviderOptions {
  /** Model store for weights and cached graphs. Default: `ModelStore.fromEnv` over the bundled manifest. */
  modelStore?: ModelStore;
  /** The models to hand out. Default: the built-in registry, `MODELS`. */
  registry?: ModelRegistry;
}

/**
 * Strict schema of {@link FaceProviderOptions}; a provider extends it with its own keys and parses its options
 * with `parseOptions`, so unknown keys are refused the same way by every provider.
 *
 * @example
 * const schema = faceProviderOptionsSchema.extend({ threads: z.number().int().min(1).optional() });
 * const settings = parseOptions(schema, options, '@facerec/provider-mine');
 */
export const faceProviderOptionsSchema = z.strictObject({
  modelStore: instanceOfThisCopy(ModelStore).optional(),
  registry: instanceOfThisCopy(ModelRegistry).optional(),
});

/**
 * `z.instanceof`, saying when the value is of a class of the same name from another copy of this package (two
 * versions of @facerec/framework installed, one under the provider): zod's message was "expected ModelRegistry,
 * received ModelRegistry".
 */
function instanceOfThisCopy<T>(type: abstract new (...args: never[]) => T) {
  return z.custom<T>((value) => value instanceof type, {
    error: (issue) => {
      const other = (issue.input as { constructor?: { name?: unknown } } | null | undefined)?.constructor
        ?.name;
      return other === type.name
        ? `a ${type.name} from another copy of @facerec/framework than the provider's (two versions installed? \`npm ls @facerec/framework\` shows them; install one)`
        : `expected a ${type.name}`;
    },
  });
}

/** Settings of {@link createFaceProvider}. */
export interface FaceProviderSpec<Name extends string> {
  readonly name: Name;
  /** Models this provider hands out. Default {@link MODELS}. */
  readonly registry?: ModelRegistry | undefined;
  /** Default: `ModelStore.fromEnv` over the bundled manifest, opened on first use. */
  readonly modelStore?: ModelStore | undefined;
  /** Threads per operator, passed to implementations in their context. */
  readonly threads?: number | undefined;
  /** The provider's native implementations. */
  readonly detectors: readonly DetectorImplementation[];
  readonly embedders: readonly EmbedderImplementation[];
}

/** The {@link FaceProvider} {@link createFaceProvider} builds, with its name's literal type. */
export interface BuiltFaceProvider<Name extends string> extends FaceProvider {
  readonly name: Name;
}

/**
 * The one provider skeleton every provider package builds on: model ids and options are looked up and
 * validated in the registry, the provider's own implementation runs when it has one for that registry
 * entry, else the entry's provider-free `load` does; otherwise `NoSuchModelError` lists what this provider
 * can run. The model store is opened once, on first use.
 */
export function createFaceProvider<const Name extends string>(
  spec: FaceProviderSpec<Name>,
): BuiltFaceProvider<Name> {
  const registry = spec.registry ?? MODELS;
  let store: Promise<ModelStore> | undefined;
  const modelStore = () => {
    store ??= spec.modelStore
      ? Promise.resolve(spec.modelStore)
      : loadManifest().then((m) => ModelStore.fromEnv(m));
    return store;
  };
  // `models` is this provider itself, made below: a detector of the registry wrapping another (MTCNN with a
  // filter) loads it with this provider's store, threads and backend.
  let self: BuiltFaceProvider<Name> | undefined;
  const context: ModelLoadContext = {
    provider: spec.name,
    modelStore,
    threads: spec.threads,
    get models() {
      return self!;
    },
  };
  // An implementation serves an id only while the registry still holds the description it was written for.
  const native = <T extends { description: object }>(impls: readonly T[], description: object) =>
    impls.find((i) => i.description === description);
  // What this provider can run, for the error when it cannot run the id asked for.
  const runnable = (
    descriptions: readonly (DetectorDescription | EmbedderDescription)[],
    impls: readonly { description: object }[],
  ) => descriptions.filter((d) => d.load !== undefined || native(impls, d)).map((d) => d.id);
  // Either kind of model: the provider's own implementation of the registry entry, else the entry's
  // provider-free `load`, else NoSuchModelError listing what this provider can run.
  const hand = <Model>(
    kind: 'detector' | 'embedder',
    description: {
      readonly options: DetectorDescription['options'];
      load?(options: object, context: ModelLoadContext): Model;
    },
    impls: readonly { readonly description: object; create(o: unknown, c: ModelLoadContext): Model }[],
    modelId: string,
    options: unknown,
  ): Model => {
    const own = native(impls, description);
    if (own) return own.create(options, context);
    if (description.load) {
      const parsed = parseOptions(description.options, options, component(context, modelId));
      // A plugin's own failure (a file it cannot find) is said with the model it was loading; facerec's errors
      // name it already.
      const failed = (error: unknown): never => {
        if (FacerecError.isInstance(error)) throw error;
        throw new ModelLoadError(spec.name, kind, modelId, error);
      };
      let model: Model;
      try {
        model = description.load(parsed, context);
      } catch (error) {
        return failed(error);
      }
      // An embedder's load is asynchronous: a promise, or a thenable of another library.
      const thenable = typeof (model as { then?: unknown } | null)?.then === 'function';
      return (thenable ? Promise.resolve(model).catch(failed) : model) as Model;
    }
    const all =
      kind === 'detector'
        ? registry.detectorIds.map((id) => registry.detector(id))
        : registry.embedderIds.map((id) => registry.embedder(id));
    // The id is one this provider implements, but the registry's entry for it was replaced (MODELS.with) by one
    // without a load(): the implementation is bound to the entry it was written for, not to its id.
    if (impls.some((i) => (i.description as { id?: string }).id === modelId)) {
      throw new NoSuchModelError(
        `${spec.name} ${kind}`,
        modelId,
        runnable(all, impls),
        `${spec.name} implements the built-in ${kind} "${modelId}", but this registry's entry of that id replaced it ` +
          `and has no load(): ${spec.name} runs only the entry it was written for. Keep the built-in entry, or give ` +
          `yours another id and a load()`,
      );
    }
    throw new NoSuchModelError(`${spec.name} ${kind}`, modelId, runnable(all, impls));
  };
  self = {
    specificationVersion: SPECIFICATION_VERSION,
    name: spec.name,
    registry,
    modelStore,
    detector(modelId, options) {
      return hand('detector', registry.detector(modelId), spec.detectors, modelId, options);
    },
    async embedder(modelId, options) {
      const description = registry.embedder(modelId);
      const embedder = await hand('embedder', description, spec.embedders, modelId, options);
      const issue = factsIssue(description, embedder, options);
      if (issue) {
        await Promise.resolve(embedder.dispose()).catch(() => undefined);
        throw new InvalidOptionsError(
          `${spec.name} embedder "${modelId}"`,
          `the embedder loaded does not match its registry entry: ${issue}. Galleries, crops and thresholds are ` +
            'read from the entry; make the entry (defineEmbedder) and the implementation agree',
        );
      }
      return embedder;
    },
  };
  return self;
}

/**
 * How an embedder differs from the registry entry it was loaded for, in words; undefined when it does not. The
 * pipeline cuts crops with the entry's policy and galleries record the entry's model id: an implementation
 * that disagrees failed later with a message blaming the gallery ("re-enroll"), or made galleries that could
 * not be reopened.
 */
function factsIssue(
  description: EmbedderDescription,
  embedder: FaceEmbedder,
  options: unknown,
): string | undefined {
  if (embedder.dimension !== description.dimension)
    return `it makes ${embedder.dimension}-d embeddings, the entry says ${description.dimension}`;
  const [given, entry] = [embedder.preprocessing, description.preprocessing];
  if (given.inputSize.width !== entry.inputSize.width || given.inputSize.height !== entry.inputSize.height) {
    return `it takes ${given.inputSize.width}×${given.inputSize.height} crops, the entry says ${entry.inputSize.width}×${entry.inputSize.height}`;
  }
  if (!sameCropPolicy(given.crop, entry.crop))
    return `it cuts ${describeCropPolicy(given.crop)}, the entry says ${describeCropPolicy(entry.crop)}`;
  const modelId = description.modelId(parseOptions(description.options, options ?? {}, description.id));
  if (embedder.modelId !== modelId)
    return `its model id is "${embedder.modelId}", the entry's modelId() gives "${modelId}" for these options`;
  return undefined;
}
