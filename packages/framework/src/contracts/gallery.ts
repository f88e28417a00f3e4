import type { EmbedderPreprocessing } from './embedder.js';
import type { SpecificationVersion } from './version.js';

/** Distance used to compare L2-normalised embeddings. */
export type DistanceMetric = 'euclidean' | 'cosine';

/** How the examples of one identity are combined: its closest example, or the centroid of its examples. */
export type IdentityAggregation = 'nearest' | 'centroid';

/** The embedder a gallery was built with; matching with any other embedder is refused. */
export interface GalleryEmbedderInfo {
  readonly modelId: string;
  readonly weightsSha256: string | undefined;
  readonly dimension: number;
  readonly preprocessing: EmbedderPreprocessing;
}

/** One candidate identity for a query. */
export interface IdentityCandidate {
  readonly identity: string;
  readonly distance: number;
}

/** The answer for one query embedding. */
export interface GalleryMatch {
  /** The best identity, or `'unknown'` when its distance exceeds the threshold. */
  readonly identity: string;
  /** Distance to the best identity (even when the answer is `'unknown'`). */
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

/** A set of enrolled identities and their embeddings. */
export interface Gallery {
  readonly specificationVersion: SpecificationVersion;
  readonly embedder: GalleryEmbedderInfo;
  readonly metric: DistanceMetric;
  readonly aggregation: IdentityAggregation;
  /** Distances above this are `'unknown'`. */
  readonly threshold: number;
  /** Enrolled identity names, sorted. */
  identities(): string[];
  /** Match L2-normalised query embeddings; one result per query. */
  match(queries: readonly Float32Array[], options?: MatchOptions): GalleryMatch[];
}
