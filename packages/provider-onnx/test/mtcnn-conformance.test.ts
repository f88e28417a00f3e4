import { readFile } from 'node:fs/promises';
import { decodeImage, InvalidOptionsError, NoSuchModelError, type RgbImage } from '@facerec/framework';
import {
  describeDetectorConformance,
  describeWithSharedData,
  referenceBoxes,
  sharedPath,
} from '@facerec/framework/testing';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { describe, expect, it } from 'vitest';
import { mirrorStore } from './helpers.js';

const decode = async (...parts: string[]): Promise<RgbImage> =>
  decodeImage(await readFile(sharedPath('faces', ...parts)));

describeWithSharedData('onnx MTCNN detector', ['models/upstream/pnet.pt', 'faces'], () => {
  describeDetectorConformance({
    name: 'onnx mtcnn',
    create: async () =>
      createOnnxProvider({ intraOpNumThreads: 2, modelStore: await mirrorStore() }).detector('mtcnn'),
    imagesWithFaces: async () => [
      await decode('face-api.js', 'bbt3.jpg'),
      await decode('facenet-pytorch', 'multiface.jpg'),
      await decode('face-api.js', 'bbt', 'amy', 'amy1.png'),
    ],
    imageWithoutFaces: () => decode('face-api.js', 'test', 'white.png'),
    // facenet-pytorch's boxes for the same images.
    expectedFaces: () =>
      referenceBoxes([
        'face-api.js/bbt3.jpg',
        'facenet-pytorch/multiface.jpg',
        'face-api.js/bbt/amy/amy1.png',
      ]),
    // Results must be bit-identical: R-Net and O-Net run row-independent in one batch.
    tolerance: 1e-4,
  });

  describe('options and selection', () => {
    it('selects one face with keepAll: false, per selection method', async () => {
      const store = await mirrorStore();
      const image = await decode('facenet-pytorch', 'multiface.jpg');
      const all = await createOnnxProvider({ modelStore: store }).detector('mtcnn').detect(image);
      expect(all.length).toBe(6);
      const largest = await createOnnxProvider({ modelStore: store })
        .detector('mtcnn', { keepAll: false })
        .detect(image);
      expect(largest).toEqual([all[0]]);
      const probable = await createOnnxProvider({ modelStore: store })
        .detector('mtcnn', { keepAll: false, selectLargest: false })
        .detect(image);
      const best = all.reduce((a, b) => (b.score > a.score ? b : a));
      expect(probable).toEqual([best]);
      const none = await createOnnxProvider({ modelStore: store })
        .detector('mtcnn', {
          keepAll: false,
          selectionMethod: 'largest_over_threshold',
          probabilityThreshold: 0.99999999,
        })
        .detect(image);
      expect(none).toEqual([]);
    });

    it('honours minFaceSize: a larger minimum finds only the larger faces', async () => {
      const store = await mirrorStore();
      // Besides the portrait, this photo has small faces (about 40 px) in the background.
      const image = await decode('facenet-pytorch', 'angelina_jolie.jpg');
      const all = await createOnnxProvider({ modelStore: store }).detector('mtcnn').detect(image);
      const big = await createOnnxProvider({ modelStore: store })
        .detector('mtcnn', { minFaceSize: 120 })
        .detect(image);
      expect(all.length).toBeGreaterThan(1);
      expect(big).toHaveLength(1);
      expect(big[0]!.box[2] - big[0]!.box[0]).toBeGreaterThan(120);
    });

    it('rejects unknown models and bad options with typed errors', () => {
      const provider = createOnnxProvider();
      expect(() => provider.detector('retinaface' as 'mtcnn')).toThrow(NoSuchModelError);
      expect(() => provider.detector('retinaface' as 'mtcnn')).toThrow(/available: mtcnn/);
      expect(() => provider.detector('mtcnn', { minFaceSze: 10 } as object)).toThrow(InvalidOptionsError);
      expect(() => provider.detector('mtcnn', { thresholds: [0.6, 1.5, 0.7] })).toThrow(/thresholds/);
      expect(() => createOnnxProvider({ threads: 2 } as object)).toThrow(/provider-onnx/);
    });
  });
});
