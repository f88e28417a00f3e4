import { readFile } from 'node:fs/promises';
import { decodeImage, type FaceDetector, type FaceEmbedder, sharpness } from '@facerec/framework';
import { describeWithSharedData, sharedPath } from '@facerec/framework/testing';
import { createOnnxProvider } from '@facerec/provider-onnx';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mirrorStore } from './helpers.js';

const AMY3 = ['faces', 'face-api.js', 'bbt', 'amy', 'amy3.png'] as const;

// The enrollment blur check on a face shot whose crop square goes past the frame (face-api's crops of bbt are
// padded with black): blurring the photo must lower the measure, however the padding falls.
describeWithSharedData(
  'sharpness of padded face crops (onnx MTCNN, face-api crop policy)',
  [AMY3.join('/')],
  () => {
    let detector: FaceDetector;
    let embedder: FaceEmbedder;
    beforeAll(async () => {
      const provider = createOnnxProvider({ modelStore: await mirrorStore() });
      detector = provider.detector('mtcnn');
      embedder = await provider.embedder('faceapi-resnet');
    });
    afterAll(async () => {
      await Promise.all([detector?.dispose(), embedder?.dispose()]);
    });

    const measure = async (blur: number) => {
      let bytes = await readFile(sharedPath(...AMY3));
      if (blur > 0) bytes = await sharp(bytes).blur(blur).png().toBuffer();
      const [found] = await detector.detectFaces([await decodeImage(bytes)], {
        crop: embedder.preprocessing.crop,
      });
      const [crop] = found!.crops;
      return { value: sharpness(crop!.image), box: crop!.cropBox };
    };

    it('falls as the photo is blurred, below the default threshold (10) at 2 and 6 pixels', async () => {
      const photo = await measure(0);
      const [two, six] = [await measure(2), await measure(6)];
      // The blurred photos' crops are padded (their boxes end inside the 150-px frame), the photo's is not.
      expect(photo.box).toEqual([0, 0, 150, 150]);
      expect(six.box[3]).toBeLessThan(150);
      console.log(
        `amy3 sharpness: photo ${photo.value.toFixed(1)}, blurred 2 px ${two.value.toFixed(1)}, 6 px ${six.value.toFixed(1)}`,
      );
      expect(photo.value).toBeGreaterThan(100);
      expect(two.value).toBeLessThan(10);
      expect(six.value).toBeLessThan(5);
    });
  },
);
