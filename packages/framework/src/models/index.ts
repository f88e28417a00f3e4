/**
 * Model manifest and offline-capable model store.
 *
 * @packageDocumentation
 */
export {
  loadManifest,
  MODEL_FORMATS,
  type ModelEntry,
  type ModelFormat,
  type ModelManifest,
  type ModelSource,
  modelManifestSchema,
  parseManifest,
} from './manifest.js';
export {
  CACHE_DIR_ENV,
  defaultCacheDir,
  explainCachedCheckpointError,
  HASHES_FILE,
  MODELS_MIRROR_ENV,
  type ModelState,
  type ModelStatus,
  ModelStore,
  type ModelStoreOptions,
  type PulledModel,
  type PullOutcome,
  type PullProgress,
  type PullSourceKind,
  type VerifiedBy,
} from './store.js';
