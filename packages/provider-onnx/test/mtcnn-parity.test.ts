import { readFile } from 'node:fs/promises';
import { decodeImage } from '@facerec/framework';
import {
  describeWithSharedData,
  expectMtcnnParity,
  formatMtcnnParity,
  type MtcnnReferenceImage,
  mtcnnParityReport,
  readMtcnnReference,
  sharedPath,
} from '@facerec/framework/testing';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { mirrorStore } from './helpers.js';

describeWithSharedData(
  'onnx MTCNN parity with facenet-pytorch (reference/mtcnn.json)',
  ['reference/mtcnn.json', 'models/upstream/pnet.pt', 'faces'],
  () => {
    let detector: ReturnType<ReturnType<typeof createOnnxProvider>['detector']>;
    let reference: MtcnnReferenceImage[];

    beforeAll(async () => {
      detector = createOnnxProvider({ intraOpNumThreads: 2, modelStore: await mirrorStore() }).detector(
        'mtcnn',
      );
      await detector.ready();
      reference = await readMtcnnReference();
    });
    afterAll(() => detector?.dispose());

    it('matches every reference face and finds no others, on every image', async () => {
      const report = await mtcnnParityReport(detector, reference);
      console.log(formatMtcnnParity('onnx', report));
      expectMtcnnParity(report);
      expect(report.images).toBe(45);
    });

    it('finds no face in white.png', async () => {
      const image = await decodeImage(
        await readFile(sharedPath('faces', 'face-api.js', 'test', 'white.png')),
      );
      expect(await detector.detect(image)).toEqual([]);
    });
  },
);
