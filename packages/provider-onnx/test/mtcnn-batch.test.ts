import { readFile } from 'node:fs/promises';
import { decodeImage, type RgbImage } from '@facerec/framework';
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
  },
);
