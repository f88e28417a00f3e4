import type { EmbedderPrecision } from '../contracts/embedder.js';
import type { DistanceMetric, GalleryEmbedderInfo, IdentityAggregation } from '../contracts/gallery.js';

/** One enrolled embedding and the file it came from. */
export interface GalleryExample {
  /** Where the embedding came from, e.g. `alice/2.jpg` (relative to the enrollment root, `/`-separated). */
  readonly source: string;
  /** L2-normalised embedding. */
  readonly embedding: Float32Array;
}

/** An identity and its examples, as given to {@link FileGallery.create}. */
export interface GalleryIdentityInput {
  readonly name: string;
  readonly examples: readonly {
    readonly source: string;
    /** Any finite, non-zero vector of the embedder's dimension; it is L2-normalised on the way in. */
    readonly embedding: ArrayLike<number>;
  }[];
}

/** The threshold and distances at one point of the ROC curve. */
export interface CalibrationPoint {
  /** The false-accept rate asked for. */
  readonly targetFar: number;
  /** Largest candidate threshold whose false-accept rate is at most `targetFar`. */
  readonly threshold: number;
  /** False-accept rate at `threshold`: impostor pairs with distance ≤ threshold, over all impostor pairs. */
  readonly far: number;
  /** True-accept rate at `threshold`: genuine pairs with distance ≤ threshold, over all genuine pairs. */
  readonly tar: number;
  /**
   * False when there are fewer than `1 / targetFar` impostor pairs, so the data cannot tell this FAR from
   * zero: the threshold then only says "between the accepted genuine pairs and the nearest impostor".
   */
  readonly resolved: boolean;
}

/** How a gallery's threshold was chosen; stored in the gallery file. */
export interface GalleryCalibration {
  /** `probes`: labelled probe embeddings; `leave-one-out`: each enrolled example against the rest. */
  readonly method: 'probes' | 'leave-one-out';
  readonly targetFar: number;
  /** False-accept rate at the stored threshold, on the calibration data. */
  readonly achievedFar: number;
  /** False-reject rate (1 − TAR) at the stored threshold, on the calibration data. */
  readonly achievedFrr: number;
  readonly genuinePairs: number;
  readonly impostorPairs: number;
  /** ISO 8601 date and time of the calibration. */
  readonly calibratedAt: string;
  /** Equal error rate: the candidate threshold where FAR and FRR are closest, and their mean there. */
  readonly equalErrorRate: { readonly threshold: number; readonly rate: number };
  /** The curve at a few standard false-accept rates (0.1%, 1%, 5%, 10%), for reports. */
  readonly keyPoints: readonly CalibrationPoint[];
  /**
   * The embedder precision the calibration's embeddings were made at (for probes: the precision the probes
   * were embedded at, the one to serve at). Absent when the caller did not say, and in galleries calibrated
   * before facerec recorded it.
   */
  readonly precision?: EmbedderPrecision;
}

/** Everything a gallery holds; the in-memory form of a gallery file. */
export interface GalleryData {
  readonly embedder: GalleryEmbedderInfo;
  /** Default `euclidean`. */
  readonly metric?: DistanceMetric;
  /** Default `nearest`. */
  readonly aggregation?: IdentityAggregation;
  /**
   * Distances above this are `'unknown'`. Default 0: an uncalibrated gallery answers `'unknown'` for every
   * query (while still listing the candidates and their distances) rather than accepting strangers. Set it
   * with {@link calibrateThreshold}, {@link calibrateThresholdLeaveOneOut} or {@link FileGallery.withThreshold}.
   */
  readonly threshold?: number;
  readonly calibration?: GalleryCalibration | undefined;
  /** ISO 8601; default now. */
  readonly createdAt?: string;
  readonly identities: readonly GalleryIdentityInput[];
}

/** Everything a gallery holds but its identities, every default applied. */
export interface GallerySettings {
  readonly embedder: GalleryEmbedderInfo;
  readonly metric: DistanceMetric;
  readonly aggregation: IdentityAggregation;
  readonly threshold: number;
  readonly calibration: GalleryCalibration | undefined;
  readonly createdAt: string;
}

/** A gallery's content with every default applied: what a file holds once parsed. */
export interface ResolvedGalleryData extends GallerySettings {
  /** Iterable rather than an array so that a large gallery can be written without copying its examples. */
  readonly identities: Iterable<{ readonly name: string; readonly examples: readonly GalleryExample[] }>;
}
