// Child process of ort-telemetry.test.ts: a fresh process whose environment the test chose, running one
// MTCNN warm-up through the provider on the main thread (`provider`) or in a worker thread (`workers`).
import { createWorkerProvider } from '@facerec/lambda-runtime';
import { createOnnxProvider } from '@facerec/provider-onnx';

const mode = process.argv[2];
const frame = { width: 160, height: 120 };
if (mode === 'workers') {
  const provider = await createWorkerProvider({ provider: 'onnx', workers: 1, threads: 1, quiet: true });
  await provider.detector('mtcnn', {}).warmUp(frame);
  await provider.close();
} else {
  await createOnnxProvider({ intraOpNumThreads: 1 }).detector('mtcnn', {}).warmUp(frame);
}
console.log(`warmed up (${mode})`);
