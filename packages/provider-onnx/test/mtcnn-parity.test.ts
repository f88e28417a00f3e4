import { describeWithSharedData, mtcnnParityTests } from '@facerec/framework/testing';
import { createOnnxProvider } from '@facerec/provider-onnx';
import { mirrorStore } from './helpers.js';

describeWithSharedData(
  'onnx MTCNN parity with facenet-pytorch (reference/mtcnn.json)',
  ['reference/mtcnn.json', 'models/upstream/pnet.pt', 'faces'],
  () => {
    mtcnnParityTests({
      label: 'onnx',
      create: async () =>
        createOnnxProvider({ intraOpNumThreads: 2, modelStore: await mirrorStore() }).detector('mtcnn'),
      // Every image, on every run.
      expectedImages: 45,
    });
  },
);
