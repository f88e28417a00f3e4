import { readFile } from 'node:fs/promises';
import { DisposedError, decodeImage, InvalidOptionsError, type RgbImage } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { expect, it } from 'vitest';
import { mirrorStore } from './helpers.js';

describeWithSharedData(
  'onnx MTCNN: a batch of frames of different sizes',
  ['models/upstream/pnet.pt', 'faces'],
  () => {
    it('gives exactly the detections of one frame at a time', async () => {
      const detector = createOnnxProvider({ modelStore: await mirrorStore() }).detector('mtcnn');
      const files = [
        ['face-api.js', 'bbt1.jpg'],
        ['facenet-pytorch', 'multiface.jpg'],
        ['face-api.js', 'bbt3.jpg'],
        ['face-api.js', 'bbt', 'raj', 'raj1.png'],
        ['face-api.js', 'bbt3.jpg'],
        ['face-api.js', 'test', 'white.png'],
      ];
      const images: RgbImage[] = [];
      for (const f of files) images.push(await decodeImage(await readFile(sharedPath('faces', ...f))));
      const batched = await detector.detectBatch(images);
      let faces = 0;
      for (let i = 0; i < images.length; i++) {
        const single = await detector.detect(images[i]!);
        expect(batched[i]).toEqual(single);
        faces += single.length;
      }
      expect(faces).toBeGreaterThan(10);
      await detector.dispose();
    });

    it('warmUp changes no result, checks its frame size, and fails after dispose', async () => {
      const store = await mirrorStore();
      const image = await decodeImage(await readFile(sharedPath('faces', 'face-api.js', 'bbt1.jpg')));
      const cold = createOnnxProvider({ modelStore: store }).detector('mtcnn');
      const expected = await cold.detect(image);
      await cold.dispose();
      const warm = createOnnxProvider({ modelStore: store }).detector('mtcnn');
      await warm.warmUp({ width: image.width, height: image.height });
      expect(await warm.detect(image)).toEqual(expected);
      await expect(warm.warmUp({ width: 11, height: 720 })).rejects.toBeInstanceOf(InvalidOptionsError);
      await expect(warm.warmUp({ width: 1280.5, height: 720 })).rejects.toBeInstanceOf(InvalidOptionsError);
      await warm.dispose();
      await expect(warm.warmUp()).rejects.toBeInstanceOf(DisposedError);
    });
  },
);
