// MTCNN benchmark (`npm run bench -- mtcnn`): prints figures, asserts nothing.
// Detection + crops on the four frames of ../shared/README.md "Reference speed", each resized to 1280 px
// wide, plus the time to load the three nets with a cold and a warm model cache.
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
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
import {
  createOnnxProvider,
  createSession,
  OnnxMtcnnNetworks,
  quantizeStatic,
} from '../packages/provider-onnx/src/index.js';
import { BENCH_FRAMES, benchTempDir, envInteger, ms, quantile, sharedDir } from './bench-common.js';

const threads = envInteger('FACEREC_THREADS', availableParallelism());

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
  cacheDir: benchTempDir('mtcnn'),
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
const rounds = envInteger('FACEREC_BENCH_ROUNDS', 5);
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

// int8 R-Net and O-Net (issue 15 asks for them "if it pays"): the same QDQ quantizer as the embedders,
// calibrated on the candidates of four other frames, timed against the fp32 graph on the bench frames'
// candidates (interleaved, one chunk as the detector runs it), with the change in the stage's decisions.
console.log('## int8 R-Net / O-Net (QDQ, calibrated on other frames): does it pay?');
const CALIBRATION_FRAMES = [
  'facenet-pytorch/kate_siegel.jpg',
  'facenet-pytorch/paul_rudd.jpg',
  'facenet-pytorch/shea_whigham.jpg',
  'face-api.js/bbt5.jpg',
] as const;
/** The R-Net and O-Net inputs (standardised crops, NCHW) the cascade builds for `files`, joined. */
async function candidates(files: readonly string[]): Promise<{ rnet: Float32Array; onet: Float32Array }> {
  const seen = { rnet: [] as number[][], onet: [] as number[][] };
  const capture: MtcnnNetworks = {
    ...wrapped,
    rnet: (input, n) => {
      seen.rnet.push(Array.from(input.subarray(0, n * 3 * 24 * 24)));
      return wrapped.rnet(input, n);
    },
    onet: (input, n) => {
      seen.onet.push(Array.from(input.subarray(0, n * 3 * 48 * 48)));
      return wrapped.onet(input, n);
    },
  };
  for (const file of files) await runMtcnnCascade([await frame(file)], capture, options, sampling);
  return { rnet: Float32Array.from(seen.rnet.flat()), onet: Float32Array.from(seen.onet.flat()) };
}
const calibration = await candidates(CALIBRATION_FRAMES);
const measured = await candidates(BENCH_FRAMES);
const graphs = networks.loadReport.graphs;
for (const [name, index, size, chunk, threshold] of [
  ['R-Net', 1, 24, 256, options.thresholds[1]],
  ['O-Net', 2, 48, 32, options.thresholds[2]],
] as const) {
  const per = 3 * size * size;
  const key = index === 1 ? 'rnet' : 'onet';
  const batch = (data: Float32Array, start: number, n: number) => ({
    data: data.subarray(start * per, (start + n) * per),
    dims: [n, 3, size, size],
  });
  const calibrationCount = calibration[key].length / per;
  const batches = [];
  for (let s = 0; s < calibrationCount; s += chunk) {
    batches.push(batch(calibration[key], s, Math.min(chunk, calibrationCount - s)));
  }
  const floatBytes = new Uint8Array(await readFile(graphs[index]!.path));
  const int8Bytes = await quantizeStatic(floatBytes, batches, { intraOpNumThreads: threads });
  const sessionOptions = { intraOpNumThreads: threads, memoryPattern: false };
  const [fp32, int8] = await Promise.all([
    createSession(floatBytes, sessionOptions),
    createSession(int8Bytes, sessionOptions),
  ]);
  const count = measured[key].length / per;
  const one = batch(measured[key], 0, Math.min(chunk, count));
  const input = { input: new ort.Tensor('float32', one.data, one.dims) };
  const timings = { fp32: [] as number[], int8: [] as number[] };
  for (let r = 0; r < 3 + 20; r++) {
    for (const [label, session] of [
      ['fp32', fp32],
      ['int8', int8],
    ] as const) {
      const start = performance.now();
      await session.run(input);
      if (r >= 3) timings[label].push(performance.now() - start);
    }
  }
  const all = { input: new ort.Tensor('float32', measured[key], [count, 3, size, size]) };
  const [a, b] = [
    (await fp32.run(all)).prob!.data as Float32Array,
    (await int8.run(all)).prob!.data as Float32Array,
  ];
  let flips = 0;
  let largest = 0;
  for (let i = 0; i < count; i++) {
    if (a[i * 2 + 1]! > threshold !== b[i * 2 + 1]! > threshold) flips++;
    largest = Math.max(largest, Math.abs(a[i * 2 + 1]! - b[i * 2 + 1]!));
  }
  const f = quantile(timings.fp32, 0.5);
  const q = quantile(timings.int8, 0.5);
  console.log(
    `  ${name}, ${one.dims[0]} crops per run: fp32 ${ms(f)}, int8 ${ms(q)} (int8 ${(f / q).toFixed(2)}× the fp32 speed); ` +
      `face probability max |Δ| ${largest.toFixed(3)}, decisions at ${threshold} changed for ${flips} of ${count} candidates ` +
      `(calibrated on ${calibrationCount} other candidates)`,
  );
  await Promise.all([fp32.release(), int8.release()]);
}
await networks.dispose();
