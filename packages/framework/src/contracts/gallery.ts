import type { GalleryCalibration } from '../gallery/types.js';
import type { CropPolicy, EmbedderPreprocessing } from './embedder.js';
import type { SpecificationVersion } from './version.js';

/** Distance used to compare L2-normalised embeddings. */
export type DistanceMetric = 'euclidean' | 'cosine';

/** How the examples of one identity are combined: its closest example, or the centroid of its examples. */
export type IdentityAggregation = 'nearest' | 'centroid';

/**
 * An embedder's preprocessing as a gallery records it: the crop policy is optional, because galleries
 * written before it was recorded do not have it.
 */
export type GalleryPreprocessing = Omit<EmbedderPreprocessing, 'crop'> & { readonly crop?: CropPolicy };

/** The embedder a gallery was built with; matching with any other embedder is refused. */
export interface GalleryEmbedderInfo {
  readonly modelId: string;
  readonly weightsSha256: string | undefined;
  readonly dimension: number;
  readonly preprocessing: GalleryPreprocessing;
}

/** One candidate identity for a query. */
export interface IdentityCandidate {
  readonly identity: string;
  readonly distance: number;
}

/** The answer for one query embedding. */
export interface GalleryMatch {
  /**
   * The best identity when its distance is at most the threshold and the threshold is above 0, else `'unknown'`
   * (a threshold of 0 names no one, not even a stored embedding itself).
   */
  readonly identity: string;
  /**
   * Distance to the best identity (even when the answer is `'unknown'`); `Infinity` when the gallery holds
   * nobody (`JSON.stringify` writes it as `null`).
   */
  readonly distance: number;
  /** The closest identities, nearest first. */
  readonly candidates: readonly IdentityCandidate[];
}

/** Options for {@link Gallery.match}. */
export interface MatchOptions {
  /** Number of candidates to return. Default 1. */
  readonly topK?: number;
  /** Override the gallery's threshold. */
  readonly threshold?: number;
}

/**
 * A set of enrolled identities and their embeddings, wherever they are stored (a file, a database). Every
 * method that reads the store is async, so a database-backed gallery implements the same contract.
 *
 * The contract carries what every caller must check: which embedder the embeddings come from
 * ({@link Gallery.assertCompatible}) and the distance above which a face is unknown
 * ({@link Gallery.threshold}, overridable per call with {@link MatchOptions.threshold}).
 */
export interface Gallery {
  readonly specificationVersion: SpecificationVersion;
  readonly embedder: GalleryEmbedderInfo;
  readonly metric: DistanceMetric;
  readonly aggregation: IdentityAggregation;
  /**
   * Distances above this are `'unknown'`; one at most this names the identity. 0 in a gallery never calibrated
   * nor given one (what enrollment writes): `match` then answers `'unknown'` for every face, even for a stored
   * embedding itself (distance 0). `createFaceRecognizer` and the CLI match such a
   * gallery at the embedder's recommended threshold; call `match` with `resolveThreshold(…)`'s value to do the same.
   */
  readonly threshold: number;
  /**
   * Whether the threshold was calibrated on data. A gallery that was neither calibrated nor given a threshold
   * (threshold 0) is matched at the embedder's recommended threshold by `createFaceRecognizer` and the CLI.
   */
  readonly isCalibrated?: boolean | undefined;
  /** How the threshold was calibrated (the data, the rates, the embedder precision), when it was. */
  readonly calibration?: GalleryCalibration | undefined;
  /**
   * Refuses an embedder other than the one the gallery was built with (model id, weights when both sides
   * know their sha256, dimension, input preprocessing); throws `EmbedderMismatchError` naming both models.
   */
  assertCompatible(embedder: GalleryEmbedderInfo): void;
  /** Enrolled identity names, sorted. */
  identities(): Promise<string[]>;
  /** Match L2-normalised query embeddings; one result per query, in order. */
  match(queries: readonly Float32Array[], options?: MatchOptions): Promise<GalleryMatch[]>;
}
