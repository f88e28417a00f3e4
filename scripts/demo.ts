// `npm run demo`: the main job on the embedded default — local, no AWS, offline.
// Pulls the MTCNN weights (from $FACEREC_MODELS_MIRROR, default ../shared/models/upstream), converts them to
// ONNX, and detects every face in the shared group photos, printing what it found.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeImage, loadManifest, ModelStore } from '../packages/framework/src/index.js';
import { createOnnxProvider } from '../packages/provider-onnx/src/index.js';
import { sharedDir } from './bench-common.js';

const mirrorDir = process.env.FACEREC_MODELS_MIRROR ?? path.join(sharedDir, 'models', 'upstream');
const store = ModelStore.fromEnv(await loadManifest(), { mirrorDir });
console.log(`model cache: ${store.cacheDir}\nmirror: ${mirrorDir}`);
for (const m of await store.pull(['mtcnn-pnet', 'mtcnn-rnet', 'mtcnn-onet'])) {
  console.log(`  ${m.name}: ${m.source}, sha256 ${m.sha256.slice(0, 16)}… verified`);
}
const detector = createOnnxProvider({ modelStore: store }).detector('mtcnn');
const images = [
  'face-api.js/bbt1.jpg',
  'face-api.js/bbt3.jpg',
  'face-api.js/bbt5.jpg',
  'facenet-pytorch/multiface.jpg',
];
let total = 0;
for (const image of images) {
  const decoded = await decodeImage(await readFile(path.join(sharedDir, 'faces', image)));
  const started = performance.now();
  const faces = await detector.detect(decoded);
  total += faces.length;
  console.log(
    `${image} (${decoded.width}×${decoded.height}): ${faces.length} faces in ${(performance.now() - started).toFixed(0)} ms — ` +
      faces.map((f) => `[${f.box.map((v) => Math.round(v)).join(',')}] ${f.score.toFixed(3)}`).join('  '),
  );
}
await detector.dispose();
console.log(`${total} faces in ${images.length} images`);
if (total === 0) process.exit(1);
