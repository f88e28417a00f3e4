// `npm run demo`: the seed's whole workflow on the embedded default — local, offline, no AWS.
//  1. pulls the models from the offline mirror ($FACEREC_MODELS_MIRROR, default ../shared/models/upstream)
//     and the face-api.js weights from the installed npm package, verifying every sha256;
//  2. enrolls a gallery from ../shared/faces/face-api.js/bbt (images 1–2 of each of the 8 identities) and
//     calibrates its threshold on the enrolled examples (leave-one-out, 1 % false accepts);
//  3. starts the local runtime (`facerec serve`: Function-URL-compatible endpoint, in-process queues with
//     SQS semantics, the same detection and recognition handlers as on Lambda);
//  4. runs the workload client: 100 requests at concurrency 10, cycling over bbt images 3–4 of each identity,
//     none of which is enrolled (an enrolled image would be found at distance 0 and inflate the accuracy);
//  5. prints the report and exits 0 when every request was answered.
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serveLocally } from '../packages/cli/src/index.js';
import {
  calibrateThresholdLeaveOneOut,
  enrollGallery,
  loadManifest,
  MODELS,
  ModelStore,
} from '../packages/framework/src/index.js';
import {
  formatWorkloadReport,
  loadFrames,
  localResponses,
  runWorkload,
} from '../packages/lambda-runtime/src/index.js';
import { createOnnxProvider } from '../packages/provider-onnx/src/index.js';
import { sharedDir } from './bench-common.js';

const started = performance.now();
const step = (m: string) => console.log(`\n[${((performance.now() - started) / 1000).toFixed(1)} s] ${m}`);
const bbt = path.join(sharedDir, 'faces', 'face-api.js', 'bbt');
process.env.FACEREC_MODELS_MIRROR ??= path.join(sharedDir, 'models', 'upstream');

step('1. pulling models (mirror first, sha256-verified)');
const store = ModelStore.fromEnv(await loadManifest());
// face-api.js's net: its weights ship in an npm package, so the demo runs offline (InceptionResnetV1's
// pretrained checkpoints must be downloaded).
const EMBEDDER = 'faceapi-resnet';
for (const m of await store.pull(MODELS.manifestEntries(MODELS.resolveEmbedder(EMBEDDER)))) {
  console.log(`  ${m.name.padEnd(36)} ${m.source.padEnd(6)} sha256 ${m.sha256.slice(0, 16)}…`);
}
console.log(`  cache: ${store.cacheDir}`);

step('2. enrolling images 1–2 of every bbt identity');
const work = mkdtempSync(path.join(tmpdir(), 'facerec-demo-'));
/** `<dir>/<identity>/<identity><n>.png` for the given image numbers, as links to the shared bbt images. */
function bbtSubset(dir: string, numbers: readonly number[]): string {
  for (const identity of readdirSync(bbt)) {
    mkdirSync(path.join(dir, identity), { recursive: true });
    for (const n of numbers)
      symlinkSync(
        path.join(bbt, identity, `${identity}${n}.png`),
        path.join(dir, identity, `${identity}${n}.png`),
      );
  }
  return dir;
}
const enrollDir = bbtSubset(path.join(work, 'enroll'), [1, 2]);
const probeDir = bbtSubset(path.join(work, 'probes'), [3, 4]);
const provider = createOnnxProvider({ modelStore: store });
const embedder = await provider.embedder(EMBEDDER);
const detector = provider.detector('mtcnn');
const enrolled = await enrollGallery({ root: enrollDir, detector, embedder });
const calibrated = calibrateThresholdLeaveOneOut(enrolled.gallery, { targetFar: 0.01, precision: 'fp32' });
const galleryFile = path.join(work, 'bbt.gallery.json');
await calibrated.gallery.save(galleryFile);
await Promise.all([detector.dispose(), embedder.dispose()]);
console.log(
  `  ${enrolled.enrolled.length} images, ${calibrated.gallery.names.length} identities, skipped ${enrolled.skipped.length}`,
);
console.log(
  `  threshold ${calibrated.point.threshold.toFixed(4)} (leave-one-out, FAR ${(calibrated.point.far * 100).toFixed(2)} %)`,
);

step('3. starting the local runtime');
const { runtime } = await serveLocally({
  gallery: galleryFile,
  port: 0,
  quiet: true,
});
console.log(`  ${runtime.url}`);

step('4. workload: 100 requests at concurrency 10 over bbt images 3–4 (not enrolled)');
const frames = await loadFrames(probeDir);
const enrolledFiles = new Set(enrolled.enrolled.map((e) => path.basename(e.file)));
if (frames.some((f) => enrolledFiles.has(path.basename(f.file))))
  throw new Error('a probe frame is enrolled');
const report = await runWorkload({
  url: runtime.url,
  frames,
  responses: localResponses(runtime.url),
  requests: 100,
  concurrency: 10,
  onProgress: (done, total) => {
    if (done % 25 === 0) console.log(`  ${done}/${total} answered`);
  },
});
await runtime.close();

step('5. report');
for (const line of formatWorkloadReport(report)) console.log(`  ${line}`);
console.log(
  `  (accuracy on held-out photos only: the ${frames.length} frames are bbt images 3–4, none of them enrolled; ` +
    'the 100 requests cycle over them)',
);
const ok = report.answered === report.requests && report.duplicates === 0;
console.log(`\ndemo ${ok ? 'passed' : 'FAILED'} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exit(ok ? 0 : 1);
