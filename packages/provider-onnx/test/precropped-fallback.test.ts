import { readFile } from 'node:fs/promises';
import {
  boxArea,
  cropBox,
  decodeImage,
  FACEAPI_RESNET,
  type FaceDetection,
  type FaceDetector,
  type RgbImage,
  resizeBilinearPil,
  squareAround,
  withPrecroppedFallback,
} from '@facerec/framework/internal';
import { describeWithSharedData, readMtcnnReference, sharedPath } from '@facerec/framework/testing';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mirrorStore } from './helpers.js';

const share = (faces: readonly FaceDetection[], image: RgbImage) =>
  faces.length ? Math.max(...faces.map(boxArea)) / (image.width * image.height) : 0;

describeWithSharedData('MTCNN with the pre-cropped fallback (onnx)', ['reference/mtcnn.json'], () => {
  let raw: FaceDetector;
  let padded: FaceDetector;
  beforeAll(async () => {
    raw = createOnnxProvider({ modelStore: await mirrorStore() }).detector('mtcnn');
    padded = withPrecroppedFallback(raw);
  });
  afterAll(async () => {
    await raw?.dispose();
  });

  it('finds the face of a crop that fills the frame, which MTCNN alone misses', async () => {
    // bbt's leonard4 cut tight as another tool may have cut it: the square around its face, cut at the frame's
    // edges and stretched to 150×150 (what facerec's `square` policy did before it padded with black). MTCNN
    // alone finds only a box of 3 % of that frame.
    const photo = await decodeImage(
      await readFile(sharedPath('faces', 'face-api.js', 'bbt', 'leonard', 'leonard4.png')),
    );
    const [face] = await raw.detect(photo);
    const crop = resizeBilinearPil(
      photo,
      cropBox(squareAround(face!.box), photo.width, photo.height, 150, 0),
      [150, 150],
    );
    const alone = await raw.detect(crop);
    expect(share(alone, crop)).toBeLessThan(0.1);
    const found = await padded.detect(crop);
    expect(found).toHaveLength(1);
    expect(share(found, crop)).toBeGreaterThan(0.8);
    expect(found[0]!.score).toBeGreaterThan(0.99);
    // detectFaces cuts its crop from the original frame, at the policy's size.
    const [withCrops] = await padded.detectFaces([crop], { crop: FACEAPI_RESNET.preprocessing.crop });
    expect(withCrops!.faces).toEqual(found);
    expect([withCrops!.crops[0]!.image.width, withCrops!.crops[0]!.image.height]).toEqual([150, 150]);
  });

  it('changes nothing on the reference images: every result is MTCNN’s own', async () => {
    const reference = await readMtcnnReference();
    for (const { image } of reference) {
      const frame = await decodeImage(await readFile(sharedPath('faces', image)), { maxPixels: 50_000_000 });
      expect(await padded.detect(frame), image).toEqual(await raw.detect(frame));
    }
    // bbt's 150×150 face shots included: MTCNN finds all 32 without help.
    expect(reference.filter((r) => r.image.startsWith('face-api.js/bbt/'))).toHaveLength(32);
  });
});
