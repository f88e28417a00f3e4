/**
 * The deploy-time gallery check: before a container image is built or a stack synthesized, the gallery file
 * must exist, be a valid facerec gallery, and hold embeddings of the embedder the functions will run. Without
 * it a missing gallery surfaces at image build and a mismatched one at the first request, after a deploy.
 * Only the file's text and the registry are needed: no model is loaded.
 */
import { EmbedderMismatchError } from '../gallery/errors.js';
import { parseGalleryText } from '../gallery/format.js';
import type { ResolvedEmbedder } from './registry.js';

/** What a gallery file says about itself (see {@link readGallerySummary}). */
export interface GalleryFileSummary {
  /** The file's name, for messages. */
  readonly source: string;
  /** Model id the gallery was enrolled with, e.g. `faceapi-resnet`. */
  readonly modelId: string;
  readonly weightsSha256: string | undefined;
  readonly dimension: number;
  readonly identities: number;
}

/**
 * Parses a gallery file's text (validating all of it).
 * @throws GalleryFormatError when the text is not a valid gallery.
 */
export function readGallerySummary(text: string, source: string): GalleryFileSummary {
  const data = parseGalleryText(text, source);
  return {
    source,
    modelId: data.embedder.modelId,
    weightsSha256: data.embedder.weightsSha256 ?? undefined,
    dimension: data.embedder.dimension,
    identities: [...data.identities].length,
  };
}

/**
 * Checks that a gallery was enrolled with `embedder`: same model id and dimension (the weights hash is
 * checked when the functions load the model).
 * @throws EmbedderMismatchError naming both models and the file.
 */
export function assertGalleryFitsEmbedder(gallery: GalleryFileSummary, embedder: ResolvedEmbedder): void {
  const expected = embedder.description.modelId(embedder.options);
  const mismatch = (kind: 'modelId' | 'dimension', detail: string) =>
    new EmbedderMismatchError({
      galleryModel: gallery.modelId,
      embedderModel: expected,
      galleryWeightsSha256: gallery.weightsSha256,
      embedderWeightsSha256: undefined,
      mismatch: kind,
      detail: `${detail} (gallery ${gallery.source})`,
    });
  if (gallery.modelId !== expected) throw mismatch('modelId', 'the model ids differ');
  if (gallery.dimension !== embedder.description.dimension) {
    throw mismatch(
      'dimension',
      `the gallery holds ${gallery.dimension}-d embeddings, the embedder makes ${embedder.description.dimension}-d`,
    );
  }
}
