import type { GalleryEmbedderInfo } from '../contracts/gallery.js';
import { sameCropPolicy } from '../mtcnn/crop.js';
import { EmbedderMismatchError } from './errors.js';

/**
 * The one compatibility check of every gallery store: refuses `embedder` unless it is the one the gallery was
 * enrolled with — the same model id, the same weights (when both sides know their sha256), the same dimension
 * and the same input (crop size, shape and margin, input size, channel order, mean/std; the tensor layout may
 * differ, as it does between runtimes of the same model).
 *
 * @throws {@link EmbedderMismatchError} naming both models and what differs.
 */
export function assertEmbedderCompatible(gallery: GalleryEmbedderInfo, embedder: GalleryEmbedderInfo): void {
  const fail = (mismatch: EmbedderMismatchError['mismatch'], detail: string): never => {
    throw new EmbedderMismatchError({
      galleryModel: gallery.modelId,
      embedderModel: embedder.modelId,
      galleryWeightsSha256: gallery.weightsSha256,
      embedderWeightsSha256: embedder.weightsSha256,
      mismatch,
      detail,
    });
  };
  if (gallery.modelId !== embedder.modelId) fail('modelId', 'the model ids differ');
  if (gallery.weightsSha256 && embedder.weightsSha256 && gallery.weightsSha256 !== embedder.weightsSha256) {
    fail('weightsSha256', 'the weights differ');
  }
  if (gallery.dimension !== embedder.dimension) {
    fail(
      'dimension',
      `the gallery holds ${gallery.dimension}-d embeddings, the embedder makes ${embedder.dimension}-d`,
    );
  }
  const a = gallery.preprocessing;
  const b = embedder.preprocessing;
  const same = (x: readonly number[], y: readonly number[]) => x.every((v, i) => v === y[i]);
  const crops = (x: typeof a.crop, y: typeof b.crop) => !x || !y || sameCropPolicy(x, y);
  if (
    !crops(a.crop, b.crop) ||
    a.inputSize.width !== b.inputSize.width ||
    a.inputSize.height !== b.inputSize.height ||
    a.channelOrder !== b.channelOrder ||
    !same(a.mean, b.mean) ||
    !same(a.std, b.std)
  ) {
    fail(
      'preprocessing',
      `the input preprocessing differs (gallery ${describePreprocessing(a)}, embedder ${describePreprocessing(b)})`,
    );
  }
}

function describePreprocessing(p: GalleryEmbedderInfo['preprocessing']): string {
  const crop = p.crop ? `, ${p.crop.shape} crop with margin ${p.crop.margin}` : '';
  return `${p.inputSize.width}×${p.inputSize.height} ${p.channelOrder}, mean [${p.mean.join(', ')}], std [${p.std.join(', ')}]${crop}`;
}
