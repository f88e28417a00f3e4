import type { ModelStore } from '../models/store.js';
import type { MtcnnOptions } from '../mtcnn/options.js';
import type { FaceApiResnetOptions, InceptionResnetV1Options } from '../registry/builtin.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { FaceDetector } from './detector.js';
import type { FaceEmbedder } from './embedder.js';
import type { SpecificationVersion } from './version.js';

/**
 * Options of each built-in detector, by id. A package that registers its own detector can add its id here
 * by declaration merging, so `provider.detector('its-id', options)` is typed too.
 */
export interface DetectorOptionsById {
  mtcnn: MtcnnOptions;
}

/** Options of each built-in embedder, by id (extensible by declaration merging, like {@link DetectorOptionsById}). */
export interface EmbedderOptionsById {
  'inception-resnet-v1': InceptionResnetV1Options;
  'faceapi-resnet': FaceApiResnetOptions;
}

/** A detector id: a built-in one (autocompleted) or any id a registry holds. */
export type DetectorId = keyof DetectorOptionsById | (string & {});
/** An embedder id: a built-in one (autocompleted) or any id a registry holds. */
export type EmbedderId = keyof EmbedderOptionsById | (string & {});

/**
 * The options type of detector `Id`. An id only a registry knows (or a `string` chosen at run time) takes
 * `unknown`: the registry's schema for that id checks the options when the detector is created.
 */
export type DetectorOptionsFor<Id extends string> = Id extends keyof DetectorOptionsById
  ? DetectorOptionsById[Id]
  : unknown;
/** The options type of embedder `Id` (see {@link DetectorOptionsFor}). */
export type EmbedderOptionsFor<Id extends string> = Id extends keyof EmbedderOptionsById
  ? EmbedderOptionsById[Id]
  : unknown;

/**
 * An inference provider: hands out detectors and embedders by model id. Ids and option schemas come from
 * the provider's {@link ModelRegistry}; an unknown id throws `NoSuchModelError` listing the valid ones, and
 * bad options throw `InvalidOptionsError` before anything loads.
 *
 * @example
 * const provider: FaceProvider = createOnnxProvider();
 * const detector = provider.detector('mtcnn', { minFaceSize: 40 });
 * const embedder = await provider.embedder('faceapi-resnet');
 */
export interface FaceProvider {
  readonly specificationVersion: SpecificationVersion;
  /** Provider name, e.g. `onnx`. */
  readonly name: string;
  /** The models this provider knows. */
  readonly registry: ModelRegistry;
  /** A detector; its model starts loading now (await `ready()` to wait for it). */
  detector<Id extends DetectorId>(modelId: Id, options?: DetectorOptionsFor<Id>): FaceDetector;
  /** An embedder, loaded before the promise resolves. */
  embedder<Id extends EmbedderId>(modelId: Id, options?: EmbedderOptionsFor<Id>): Promise<FaceEmbedder>;
  /** The model store the provider reads weights from and caches converted graphs in. */
  modelStore(): Promise<ModelStore>;
}

/** Settings every provider package's `createProvider` takes (each package's own factory takes more). */
export interface ProviderSettings {
  /** The models to hand out. Default: the built-in registry. */
  readonly registry?: ModelRegistry | undefined;
  /** Default: `ModelStore.fromEnv` over the bundled manifest. */
  readonly modelStore?: ModelStore | undefined;
  /** Inference threads, for providers that have a thread setting. Default: the provider's. */
  readonly threads?: number | undefined;
  /**
   * Where the provider's informational lines go (the tfjs provider's one line saying which backend runs).
   * Default: stderr. `() => {}` silences them.
   */
  readonly logger?: ((line: string) => void) | undefined;
}

/**
 * The factory every provider package exports as `createProvider`, so the Lambda runtime and the CLI can load a
 * provider by its registry name.
 */
export type ProviderFactory = (settings?: ProviderSettings) => FaceProvider;
