/**
 * Gallery files for synth tests: valid facerec galleries (written by the framework's own `FileGallery`) that
 * record a given embedder, with one identity of arbitrary unit-norm embeddings. Synth reads only what the
 * file says about itself, so no model is needed.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { FileGallery, MODELS, type ModelRegistry } from '@facerec/framework';

/** Writes `<dir>/<relative>` as a gallery enrolled with `embedderId` (and `weights`), returns its path. */
export async function writeGalleryFor(
  file: string,
  embedderId: string,
  weights?: string,
  registry: ModelRegistry = MODELS,
): Promise<string> {
  const { description, options } = registry.resolveEmbedder(embedderId, { weights });
  const embedding = Array.from({ length: description.dimension }, (_, i) => (i % 7) - 3);
  const gallery = FileGallery.create({
    embedder: {
      modelId: description.modelId(options),
      weightsSha256: undefined,
      dimension: description.dimension,
      preprocessing: description.preprocessing,
    },
    identities: [{ name: 'alice', examples: [{ source: 'alice1.jpg', embedding }] }],
    threshold: 0.5,
  });
  mkdirSync(path.dirname(file), { recursive: true });
  await gallery.save(file);
  return file;
}
