// TensorFlow.js benchmark (`npx tsx scripts/bench-tfjs.ts`): prints figures, asserts nothing.
//
// Side by side in one process: the tfjs provider on `wasm` and `cpu`, and the onnx provider, on
// - MTCNN detection + crops per frame, on the four frames of ../shared/README.md "Reference speed", each
//   resized to 1280 px wide (sharp), as scripts/bench-mtcnn.ts does;
// - InceptionResnetV1 per face at batch 8, with the shared synthetic weights (same cost as the pretrained
//   ones, which are not reachable here), loaded from a `.pt` through each provider.
//
// Environment: FACEREC_BENCH_RUNTIMES (default `wasm,cpu,onnx`), FACEREC_BENCH_ROUNDS (timed rounds per
// frame, default 3; the cpu backend always does 1, it needs 20–40 s per frame), FACEREC_THREADS (onnx
// intra-op threads, default: available cores).
import { readFile, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {
  decodeImage,
  type FaceDetector,
  type FaceEmbedder,
  loadManifest,
  ModelStore,
  type RgbImage,
} from '../packages/framework/src/index.js';
import { readSyntheticReference } from '../packages/framework/src/testing/synthetic-weights.js';
import { createOnnxProvider } from '../packages/provider-onnx/src/index.js';
import { createTfjsProvider, type TfjsBackendName } from '../packages/provider-tfjs/src/index.js';
import { writeSyntheticCheckpoint } from '../packages/provider-tfjs/test/fixtures/synthetic-checkpoint.js';
import { BENCH_FRAMES, benchTempDir, envInteger, quantile, sharedDir } from './bench-common.js';

type Runtime = 'wasm' | 'cpu' | 'onnx';

const RUNTIMES: readonly Runtime[] = ['wasm', 'cpu', 'onnx'];
const runtimes = (process.env.FACEREC_BENCH_RUNTIMES ?? RUNTIMES.join(',')).split(',') as Runtime[];
// tfjs-node (`tensorflow`) is not benched here: it cannot be installed where these figures are made.
const unknownRuntimes = runtimes.filter((r) => !RUNTIMES.includes(r));
if (unknownRuntimes.length) {
  console.error(
    `FACEREC_BENCH_RUNTIMES: ${unknownRuntimes.map((r) => JSON.stringify(r.slice(0, 20))).join(', ')} not benched here; choose from ${RUNTIMES.join(', ')}`,
  );
  process.exit(2);
}
const rounds = envInteger('FACEREC_BENCH_ROUNDS', 3);
const threads = envInteger('FACEREC_THREADS', availableParallelism());
const BATCH = 8;

async function frame(file: string): Promise<RgbImage> {
  const jpeg = await sharp(path.join(sharedDir, 'faces', file))
    .resize({ width: 1280 })
    .jpeg({ quality: 95 })
    .toBuffer();
  return decodeImage(jpeg);
}

interface Row {
  runtime: string;
  loadMs: number;
  perFrame: number[];
  faces: number;
  medianFrame: number;
  embedPerFace: number;
}

const work = benchTempDir('tfjs');
const store = new ModelStore({
  manifest: await loadManifest(),
  cacheDir: path.join(work, 'cache'),
  mirrorDir: path.join(sharedDir, 'models', 'upstream'),
});
const referenceFile = path.join(sharedDir, 'reference', 'inception_resnet_v1_synthetic.json');
const checkpoint = await writeSyntheticCheckpoint(referenceFile, path.join(work, 'synthetic.pt'));
const reference = await readSyntheticReference(referenceFile);
const crops = await Promise.all(
  reference.embeddings
    .slice(0, BATCH)
    .map(async (e) => decodeImage(await readFile(path.join(sharedDir, 'reference', e.cropPng)))),
);
const frames = await Promise.all(BENCH_FRAMES.map(frame));
const backendLines: string[] = [];

async function models(runtime: Runtime): Promise<{ detector: FaceDetector; embedder: FaceEmbedder }> {
  const options = { weights: checkpoint, maxBatchSize: BATCH };
  if (runtime === 'onnx') {
    const onnx = createOnnxProvider({ intraOpNumThreads: threads, modelStore: store });
    const detector = onnx.detector('mtcnn');
    await detector.ready();
    return { detector, embedder: await onnx.embedder('inception-resnet-v1', options) };
  }
  const tfjs = createTfjsProvider({
    backend: runtime as TfjsBackendName,
    modelStore: store,
    logger: (line) => backendLines.push(line),
  });
  const detector = tfjs.detector('mtcnn');
  await detector.ready();
  return { detector, embedder: await tfjs.embedder('inception-resnet-v1', options) };
}

async function bench(runtime: Runtime): Promise<Row> {
  const started = performance.now();
  const { detector, embedder } = await models(runtime);
  const loadMs = performance.now() - started;
  const n = runtime === 'cpu' ? 1 : rounds;

  const perFrame: number[] = [];
  const all: number[] = [];
  let faces = 0;
  for (const f of frames) {
    if (runtime !== 'cpu') await detector.detectFaces([f]); // warm-up: first-call allocations
    const times: number[] = [];
    for (let r = 0; r < n; r++) {
      const t = performance.now();
      const [result] = await detector.detectFaces([f]);
      times.push(performance.now() - t);
      if (r === 0) faces += result!.faces.length;
    }
    perFrame.push(quantile(times, 0.5));
    all.push(...times);
  }

  await embedder.embed(crops);
  const embedTimes: number[] = [];
  for (let r = 0; r < n; r++) {
    const t = performance.now();
    await embedder.embed(crops);
    embedTimes.push((performance.now() - t) / crops.length);
  }
  await detector.dispose();
  await embedder.dispose();
  const row = {
    runtime: runtime === 'onnx' ? `onnx (${threads} threads)` : `tfjs ${runtime}`,
    loadMs,
    perFrame,
    faces,
    medianFrame: quantile(all, 0.5),
    embedPerFace: quantile(embedTimes, 0.5),
  };
  process.stderr.write(`done: ${row.runtime}\n`);
  return row;
}

const rows: Row[] = [];
for (const runtime of runtimes) rows.push(await bench(runtime));

const names = BENCH_FRAMES.map((f) => path.basename(f, path.extname(f)));
const header = [
  'runtime',
  'load',
  ...names,
  'median/frame',
  'faces',
  `embed/face (batch ${BATCH})`,
  'frame + embed (est.)',
];
const f0 = (v: number) => `${v.toFixed(0)} ms`;
const table = rows.map((r) => [
  r.runtime,
  f0(r.loadMs),
  ...r.perFrame.map(f0),
  f0(r.medianFrame),
  String(r.faces),
  `${r.embedPerFace.toFixed(1)} ms`,
  // Per frame: detection plus embedding its share of faces, to compare with the README's 842 ms.
  f0(r.medianFrame + (r.faces / frames.length) * r.embedPerFace),
]);
console.log(
  `\n## tfjs vs onnx: MTCNN per frame (1280 px wide, median of ${rounds} rounds; cpu: 1 round) and ` +
    `InceptionResnetV1 per face (synthetic weights)\n`,
);
for (const line of backendLines) console.log(`backend: ${line}`);
console.log();
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const t of table) console.log(`| ${t.join(' | ')} |`);
console.log(
  '\nReference (../shared/README.md, facenet-pytorch, 2 threads): 842 ms per frame (MTCNN + InceptionResnetV1 on ' +
    'every face), ≈ 31 ms per face at batch 8.',
);
await rm(work, { recursive: true, force: true });
