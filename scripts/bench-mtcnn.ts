// MTCNN benchmark (`npm run bench -- mtcnn`): prints figures, asserts nothing.
// Detection + crops on the four frames of ../shared/README.md "Reference speed", each resized to 1280 px
// wide, plus the time to load the three nets with a cold and a warm model cache.
import { mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {
  decodeImage,
  loadManifest,
  ModelStore,
  type MtcnnNetworks,
  type RgbImage,
} from '../packages/framework/src/index.js';
import {
  FrameSampling,
  pyramidLevels,
  resolveMtcnnOptions,
  runMtcnnCascade,
} from '../packages/framework/src/mtcnn/index.js';
import { createOnnxProvider, OnnxMtcnnNetworks } from '../packages/provider-onnx/src/index.js';
import { BENCH_FRAMES, ms, quantile, sharedDir } from './bench-common.js';

const threads = Number(process.env.FACEREC_THREADS ?? availableParallelism());

async function frame(file: string): Promise<RgbImage> {
  const jpeg = await sharp(path.join(sharedDir, 'faces', file))
    .resize({ width: 1280 })
    .jpeg({ quality: 95 })
    .toBuffer();
  return decodeImage(jpeg);
}

console.log(`## MTCNN detection + crops (onnx, ${threads} intra-op threads)`);
const store = new ModelStore({
  manifest: await loadManifest(),
  cacheDir: mkdtempSync(path.join(tmpdir(), 'facerec-bench-')),
  mirrorDir: path.join(sharedDir, 'models', 'upstream'),
});
let t = performance.now();
const cold = await OnnxMtcnnNetworks.load(store, threads);
const coldMs = performance.now() - t;
const buildMs = cold.loadReport.graphs.reduce((a, g) => a + g.buildMs, 0);
await cold.dispose();
t = performance.now();
const warm = await OnnxMtcnnNetworks.load(store, threads);
const warmMs = performance.now() - t;
await warm.dispose();
console.log(
  `load, cold cache (copy from mirror, read .pt, build graphs, sessions): ${ms(coldMs)} (graph building ${ms(buildMs)})`,
);
console.log(`load, warm cache (read cached .onnx, create sessions): ${ms(warmMs)}`);

const detector = createOnnxProvider({ intraOpNumThreads: threads, modelStore: store }).detector('mtcnn');
await detector.ready();
const frames = await Promise.all(BENCH_FRAMES.map(frame));
// The first detections pay for onnxruntime's memory growth; `warmUp` pays it ahead (a service calls it at
// startup). Both are reported, not counted.
const largest = frames.reduce((a, f) => (f.width * f.height > a.width * a.height ? f : a));
t = performance.now();
await detector.warmUp({ width: largest.width, height: largest.height });
console.log(`warmUp (${largest.width}×${largest.height}): ${ms(performance.now() - t)}`);
const warmup: number[] = [];
for (const f of frames) {
  const start = performance.now();
  await detector.detectFaces([f]);
  warmup.push(performance.now() - start);
}
console.log(`first detection per frame after warmUp (not counted): ${warmup.map(ms).join(', ')}`);
const rounds = Number(process.env.FACEREC_BENCH_ROUNDS ?? 5);
const times: number[] = [];
const perFrame = frames.map(() => [] as number[]);
let faces = 0;
for (let r = 0; r < rounds; r++) {
  for (const [i, f] of frames.entries()) {
    const start = performance.now();
    const [result] = await detector.detectFaces([f]);
    const elapsed = performance.now() - start;
    times.push(elapsed);
    perFrame[i]!.push(elapsed);
    if (r === 0) faces += result!.faces.length;
  }
}
for (const [i, f] of frames.entries()) {
  console.log(`  ${BENCH_FRAMES[i]} (${f.width}×${f.height}): median ${ms(quantile(perFrame[i]!, 0.5))}`);
}
console.log(`${frames.length} frames × ${rounds} rounds, ${faces} faces per round`);
console.log(
  `per frame: median ${ms(quantile(times, 0.5))}, p90 ${ms(quantile(times, 0.9))}, max ${ms(Math.max(...times))}`,
);
await detector.dispose();

// Where a frame's time goes: the three networks (onnxruntime, timed around each call) and the rest, which is
// JavaScript and WebAssembly (pyramid and crop resampling, candidate bookkeeping, NMS). The same cascade
// the detector runs, on networks wrapped with timers.
console.log('## where the time goes (median per frame)');
const networks = await OnnxMtcnnNetworks.load(store, threads);
const spent = { pnet: 0, rnet: 0, onet: 0, pnetCalls: 0, rnetCrops: 0, onetCrops: 0 };
const timed =
  <A extends unknown[], R>(run: (...args: A) => Promise<R>, add: (ms: number, args: A) => void) =>
  async (...args: A): Promise<R> => {
    const start = performance.now();
    const out = await run(...args);
    add(performance.now() - start, args);
    return out;
  };
const wrapped: MtcnnNetworks = {
  pnet: timed(networks.pnet.bind(networks), (t) => {
    spent.pnet += t;
    spent.pnetCalls++;
  }),
  rnet: timed(networks.rnet.bind(networks), (t, [, n]) => {
    spent.rnet += t;
    spent.rnetCrops += n;
  }),
  onet: timed(networks.onet.bind(networks), (t, [, n]) => {
    spent.onet += t;
    spent.onetCrops += n;
  }),
  reserve: (pixels) => networks.reserve(pixels),
  pnetPixelLimit: () => networks.pnetPixelLimit(),
  dispose: () => networks.dispose(),
};
const options = resolveMtcnnOptions({});
const sampling = new FrameSampling();
const [first] = pyramidLevels(largest.width, largest.height, options);
networks.reserve(first!.width * first!.height);
for (const f of frames) await runMtcnnCascade([f], wrapped, options, sampling);
for (const [i, f] of frames.entries()) {
  const rows: (typeof spent & { total: number })[] = [];
  for (let r = 0; r < rounds; r++) {
    Object.assign(spent, { pnet: 0, rnet: 0, onet: 0, pnetCalls: 0, rnetCrops: 0, onetCrops: 0 });
    const start = performance.now();
    await runMtcnnCascade([f], wrapped, options, sampling);
    rows.push({ ...spent, total: performance.now() - start });
  }
  const median = (key: keyof (typeof rows)[number]) =>
    quantile(
      rows.map((row) => row[key]),
      0.5,
    );
  const rest = quantile(
    rows.map((row) => row.total - row.pnet - row.rnet - row.onet),
    0.5,
  );
  console.log(
    `  ${BENCH_FRAMES[i]}: cascade ${ms(median('total'))} = P-Net ${ms(median('pnet'))} (${median('pnetCalls')} levels)` +
      ` + R-Net ${ms(median('rnet'))} (${median('rnetCrops')} crops) + O-Net ${ms(median('onet'))}` +
      ` (${median('onetCrops')} crops) + JavaScript/WebAssembly ${ms(rest)}`,
  );
}
await networks.dispose();
