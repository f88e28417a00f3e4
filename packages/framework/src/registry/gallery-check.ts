/**
 * The deploy-time gallery check: before a container image is built or a stack synthesized, the gallery file
 * must exist, be a valid facerec gallery, and hold embeddings of the embedder the functions will run (model,
 * dimension and input preprocessing, crop policy included). Without it a missing gallery surfaces at image
 * build and a mismatched one at the first request, after a deploy. Only the file's text and the registry are
 * needed: no model is loaded.
 */
import type { GalleryEmbedderInfo } from '../contracts/gallery.js';
import { assertEmbedderCompatible } from '../gallery/compatibility.js';
import { parseGalleryText } from '../gallery/format.js';
import type { ResolvedEmbedder } from './registry.js';

/** What a gallery file says about itself (see {@link readGallerySummary}). */
export interface GalleryFileSummary {
  /** The file's name, for messages. */
  readonly source: string;
  /** The embedder it was enrolled with: model id (e.g. `faceapi-resnet`), weights hash, dimension, preprocessing. */
  readonly embedder: GalleryEmbedderInfo;
  readonly identities: number;
}

/**
 * Parses a gallery file's text (validating all of it).
 * @throws GalleryFormatError when the text is not a valid gallery.
 */
export function readGallerySummary(text: string, source: string): GalleryFileSummary {
  const data = parseGalleryText(text, source);
  return { source, embedder: data.embedder, identities: [...data.identities].length };
}

/**
 * Checks that a gallery was enrolled with `embedder` — the same check the functions make when they load the
 * model (`Gallery.assertCompatible`), less the weights hash, which only the loaded model knows.
 * @throws EmbedderMismatchError naming both models and what differs.
 */
export function assertGalleryFitsEmbedder(gallery: GalleryFileSummary, embedder: ResolvedEmbedder): void {
  const { description, options } = embedder;
  assertEmbedderCompatible(gallery.embedder, {
    modelId: description.modelId(options),
    weightsSha256: undefined,
    dimension: description.dimension,
    preprocessing: description.preprocessing,
  });
}
