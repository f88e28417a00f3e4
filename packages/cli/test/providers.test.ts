import { type FaceProvider, MODELS, ModelUnavailableError } from '@facerec/framework';
import { describe, expect, it } from 'vitest';
import { loadEmbedder } from '../src/providers.js';

/** A provider whose every embedder fails as an offline download of `model` does. */
function offline(model: string): FaceProvider {
  return {
    embedder: async () => {
      throw new ModelUnavailableError(model, `Cannot download model "${model}": offline.`, {
        url: 'https://x',
      });
    },
  } as unknown as FaceProvider;
}

describe('loadEmbedder', () => {
  const context = { registry: MODELS };

  it('says the ways on when named weights cannot be fetched: a checkpoint file, or another embedder', async () => {
    const error = await loadEmbedder(
      context,
      offline('inception-resnet-v1-vggface2'),
      'inception-resnet-v1',
    ).catch((e: unknown) => e);
    expect(ModelUnavailableError.isInstance(error)).toBe(true);
    expect((error as ModelUnavailableError).model).toBe('inception-resnet-v1-vggface2');
    expect((error as Error).message).toBe(
      'Cannot download model "inception-resnet-v1-vggface2": offline. Or go on without it: --weights <file.pt>, ' +
        'a checkpoint of inception-resnet-v1 you have; or another embedder, --embedder faceapi-resnet.',
    );
    // embed names a checkpoint file --checkpoint.
    const embed = await loadEmbedder(
      context,
      offline('inception-resnet-v1-vggface2'),
      'inception-resnet-v1',
      {
        checkpointFlag: '--checkpoint',
      },
    ).catch((e: unknown) => e);
    expect((embed as Error).message).toContain('Or go on without it: --checkpoint <file.pt>');
  });

  it('adds nothing where the weights were chosen, or the model that failed is not the weights', async () => {
    for (const [model, id, weights] of [
      ['inception-resnet-v1-casia-webface', 'inception-resnet-v1', 'casia-webface'],
      ['mtcnn-pnet', 'inception-resnet-v1', undefined],
      ['face_recognition_model', 'faceapi-resnet', undefined],
    ] as const) {
      const error = await loadEmbedder(context, offline(model), id, { weights }).catch((e: unknown) => e);
      expect((error as Error).message).toBe(`Cannot download model "${model}": offline.`);
    }
  });
});
