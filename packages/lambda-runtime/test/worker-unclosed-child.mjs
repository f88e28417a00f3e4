// Child process of worker-provider.test.ts: a script as a user writes it, which never closes its worker provider.
// It must end by itself once its work is done, having printed its answer.
import { readFile } from 'node:fs/promises';
import { decodeImage } from '@facerec/framework';
import { createWorkerProvider } from '@facerec/lambda-runtime';

const provider = await createWorkerProvider({ provider: 'onnx', workers: 1, quiet: true });
const image = await decodeImage(await readFile(process.argv[2]));
const [found] = await provider.detector('mtcnn').detectFaces([image]);
console.log('faces', found.faces.length);
