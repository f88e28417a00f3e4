#!/usr/bin/env node
// Benchmarks (`npm run bench [-- <suite...>]`): prints figures, asserts nothing. Suites: mtcnn, embed.
// Runs on the compiled packages (built by `npm ci` / `npm run build`) and the shared data in
// $FACEREC_SHARED_DIR (default ../shared); weights come from the shared mirror into a temporary cache.
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeImage, loadManifest, ModelStore } from '@facerec/framework';
import { createOnnxProvider, OnnxMtcnnNetworks } from '@facerec/provider-onnx';
import sharp from 'sharp';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const shared = path.resolve(process.env.FACEREC_SHARED_DIR ?? path.join(root, '..', 'shared'));
const threads = Number(process.env.FACEREC_THREADS ?? availableParallelism());
const suites = process.argv.slice(2).length ? process.argv.slice(2) : ['mtcnn', 'embed'];

const FRAMES = [
  'facenet-pytorch/angelina_jolie.jpg',
  'facenet-pytorch/multiface.jpg',
  'face-api.js/bbt1.jpg',
  'face-api.js/bbt3.jpg',
];

const quantile = (values, q) => {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};
const ms = (v) => `${v.toFixed(1)} ms`;

async function store(cacheDir = mkdtempSync(path.join(tmpdir(), 'facerec-bench-'))) {
  return new ModelStore({
    manifest: await loadManifest(),
    cacheDir,
    mirrorDir: path.join(shared, 'models', 'upstream'),
  });
}

/** A frame resized to 1280 px wide, as an RgbImage. */
async function frame(file) {
  const jpeg = await sharp(path.join(shared, 'faces', file))
    .resize({ width: 1280 })
    .jpeg({ quality: 95 })
    .toBuffer();
  return decodeImage(jpeg);
}

async function benchMtcnn() {
  console.log(`\n## MTCNN detection + crops (onnx, ${threads} intra-op threads)`);
  const s = await store();
  let t = performance.now();
  const cold = await OnnxMtcnnNetworks.load(s, threads);
  const coldMs = performance.now() - t;
  const buildMs = cold.loadReport.graphs.reduce((a, g) => a + g.buildMs, 0);
  await cold.dispose();
  t = performance.now();
  const warm = await OnnxMtcnnNetworks.load(s, threads);
  const warmMs = performance.now() - t;
  await warm.dispose();
  console.log(
    `load, cold cache (pull from mirror + build graphs): ${ms(coldMs)} (graph building ${ms(buildMs)})`,
  );
  console.log(`load, warm cache (read cached .onnx + create sessions): ${ms(warmMs)}`);

  const detector = createOnnxProvider({ intraOpNumThreads: threads, modelStore: s }).detector('mtcnn');
  await detector.ready();
  const frames = await Promise.all(FRAMES.map(frame));
  for (const f of frames) await detector.detectFaces([f]); // warm-up
  const times = [];
  let faces = 0;
  const rounds = Number(process.env.FACEREC_BENCH_ROUNDS ?? 5);
  for (let r = 0; r < rounds; r++) {
    for (const f of frames) {
      const start = performance.now();
      const [result] = await detector.detectFaces([f]);
      times.push(performance.now() - start);
      if (r === 0) faces += result.faces.length;
    }
  }
  console.log(
    `frames: ${FRAMES.length} × ${rounds} rounds at 1280 px wide, ${faces} faces per round ` +
      `(${frames.map((f) => `${f.width}×${f.height}`).join(', ')})`,
  );
  console.log(
    `per frame: median ${ms(quantile(times, 0.5))}, p90 ${ms(quantile(times, 0.9))}, max ${ms(Math.max(...times))}`,
  );
  await detector.dispose();
}

async function benchEmbed() {
  console.log(`\n## InceptionResnetV1 embedding (onnx, ${threads} intra-op threads)`);
  const { synthesiseInceptionResnetV1Checkpoint } = await import('./synthetic-weights.mjs');
  const s = await store();
  const checkpoint = await synthesiseInceptionResnetV1Checkpoint(path.join(s.cacheDir, 'irv1-synthetic.pt'));
  const provider = createOnnxProvider({ intraOpNumThreads: threads, modelStore: s });
  let t = performance.now();
  const first = await provider.embedder('inception-resnet-v1', { weights: checkpoint, maxBatchSize: 64 });
  const firstMs = performance.now() - t;
  console.log(
    `load, cold cache (read .pt, build graph ${ms(first.graph.buildMs)}, create session): ${ms(firstMs)}`,
  );
  await first.dispose();
  t = performance.now();
  const embedder = await provider.embedder('inception-resnet-v1', { weights: checkpoint, maxBatchSize: 64 });
  console.log(`load, warm cache (cached .onnx + session): ${ms(performance.now() - t)}`);
  const crop = await decodeImage(
    await readFile(path.join(shared, 'reference', 'crops', 'facenet-pytorch__multiface__0.png')),
  );
  for (const batch of [1, 8]) {
    const faces = Array.from({ length: batch }, () => crop);
    await embedder.embed(faces);
    const times = [];
    for (let r = 0; r < Math.max(5, 40 / batch); r++) {
      const start = performance.now();
      await embedder.embed(faces);
      times.push((performance.now() - start) / batch);
    }
    console.log(
      `batch ${batch}: median ${ms(quantile(times, 0.5))} per face, p90 ${ms(quantile(times, 0.9))}`,
    );
  }
  const before = process.memoryUsage().rss;
  await embedder.embed(Array.from({ length: 64 }, () => crop));
  const peak = process.resourceUsage().maxRSS * 1024;
  console.log(
    `64 faces in one call: peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB (RSS before ${(before / 2 ** 20).toFixed(0)} MiB)`,
  );
  await embedder.dispose();
}

const all = { mtcnn: benchMtcnn, embed: benchEmbed };
console.log(
  `facerec benchmarks — node ${process.version}, ${availableParallelism()} cores, shared data ${shared}`,
);
for (const name of suites) {
  if (!all[name]) {
    console.error(`unknown suite "${name}"; suites: ${Object.keys(all).join(', ')}`);
    process.exit(2);
  }
  await all[name]();
}
