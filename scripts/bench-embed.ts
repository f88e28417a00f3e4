// InceptionResnetV1 embedder benchmark (`npm run bench -- embed`, or `npx tsx scripts/bench-embed.ts`):
// prints figures, asserts nothing. Weights are the shared synthetic ones (the pretrained checkpoints are not
// reachable here), written as a legacy-format .pt like the upstream files; the network and its cost are the
// same. Targets: ≤ 20 ms/face at batch 8, load ≤ 1.5 s, peak RSS ≤ 600 MB.
// Then int8 against fp32 (InceptionResnetV1 and face-api.js's net) at batch 8, interleaved round by round
// because this machine's speed drifts by up to 2×: the ratios are the figures, not the absolute times.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeImage, loadManifest, ModelStore, type RgbImage } from '../packages/framework/src/index.js';
import { resizeRgb } from '../packages/framework/src/internal.js';
import { linkFaceApiCalibrationCrops } from '../packages/framework/src/testing/calibration-crops.js';
import { readSyntheticReference } from '../packages/framework/src/testing/synthetic-weights.js';
import {
  createOnnxProvider,
  OnnxFaceApiEmbedder,
  OnnxInceptionResnetV1Embedder,
} from '../packages/provider-onnx/src/index.js';
import { writeSyntheticCheckpoint } from '../packages/provider-onnx/test/fixtures/synthetic-checkpoint.js';
import { envInteger, ms, quantile, sharedDir } from './bench-common.js';

const threads = envInteger('FACEREC_THREADS', availableParallelism());
const rounds = envInteger('FACEREC_BENCH_ROUNDS', 12, 10);
const MiB = 1024 * 1024;
const mb = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;

async function load(cacheDir: string, weights: string): Promise<OnnxInceptionResnetV1Embedder> {
  const modelStore = new ModelStore({ manifest: await loadManifest(), cacheDir });
  const embedder = await createOnnxProvider({ intraOpNumThreads: threads, modelStore }).embedder(
    'inception-resnet-v1',
    { weights },
  );
  return embedder as OnnxInceptionResnetV1Embedder;
}

async function referenceCrops(count: number): Promise<RgbImage[]> {
  const reference = await readSyntheticReference(
    path.join(sharedDir, 'reference', 'inception_resnet_v1_synthetic.json'),
  );
  const crops = await Promise.all(
    reference.embeddings.map(async (e) =>
      decodeImage(await readFile(path.join(sharedDir, 'reference', e.cropPng))),
    ),
  );
  return Array.from({ length: count }, (_, i) => crops[i % crops.length]!);
}

/**
 * Peak resident set size of this process so far, in KiB. On Linux: `VmHWM` from /proc/self/status, the
 * high-water mark of this process's own address space. `process.resourceUsage().maxRSS` is not used there
 * because Linux carries it across fork + exec, so a child spawned by a large parent starts with the
 * parent's RSS as its "peak" (this benchmark's parent holds a model when it spawns). Elsewhere, maxRSS.
 */
function peakRssKiB(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]);
  } catch {
    // Not Linux.
  }
  return process.resourceUsage().maxRSS;
}

interface RssReport {
  baseline: number;
  afterLoad: number;
  afterEmbed: number;
  faces: number;
  built: boolean;
}

/**
 * Child mode: a fresh process that loads the model and embeds 64 faces, then prints its peak RSS at three
 * points. The peak is of the whole process: Node, tsx, sharp and onnxruntime themselves, the model as
 * onnxruntime holds it (initializers plus pre-packed convolution weights), the transient JS copy of the
 * .onnx bytes during session creation (and of the checkpoint and state dict when converting), and
 * onnxruntime's arena for the activations of one batch of 16 faces.
 */
async function rssChild(cacheDir: string, weights: string): Promise<void> {
  const faces = await referenceCrops(64);
  const baseline = peakRssKiB();
  const embedder = await load(cacheDir, weights);
  const afterLoad = peakRssKiB();
  const vectors = await embedder.embed(faces);
  const afterEmbed = peakRssKiB();
  await embedder.dispose();
  const report: RssReport = {
    baseline,
    afterLoad,
    afterEmbed,
    faces: vectors.length,
    built: embedder.graph.built,
  };
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

function measureRss(cacheDir: string, weights: string): RssReport {
  const script = fileURLToPath(import.meta.url);
  const out = execFileSync(process.execPath, ['--import', 'tsx', script, '--rss-child', cacheDir, weights], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, FACEREC_THREADS: String(threads) },
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as RssReport;
}

async function timeBatch(embedder: OnnxInceptionResnetV1Embedder, faces: RgbImage[]): Promise<number> {
  // Warm-up: the first runs size onnxruntime's arena and pick kernels for this batch shape.
  for (let i = 0; i < 2; i++) await embedder.embed(faces);
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = performance.now();
    await embedder.embed(faces);
    times.push(performance.now() - start);
  }
  return quantile(times, 0.5) / faces.length;
}

async function bench(): Promise<void> {
  console.log(`## InceptionResnetV1 embedder (onnx, ${threads} intra-op threads, synthetic weights)`);
  const work = mkdtempSync(path.join(tmpdir(), 'facerec-bench-embed-'));
  try {
    const reference = await readSyntheticReference(
      path.join(sharedDir, 'reference', 'inception_resnet_v1_synthetic.json'),
    );
    let t = performance.now();
    const weights = await writeSyntheticCheckpoint(path.join(work, 'synthetic.pt'), reference.keys);
    console.log(
      `(setup: synthetic checkpoint written in ${ms(performance.now() - t)}, not part of any figure)`,
    );

    const cacheDir = path.join(work, 'cache');
    t = performance.now();
    const cold = await load(cacheDir, weights);
    const coldMs = performance.now() - t;
    await cold.dispose();
    const c = cold.loadReport;
    console.log(
      `first load, empty cache: ${ms(coldMs)} = hash + read .pt + build graph + write .onnx ${ms(c.graphMs)} ` +
        `(of which graph build ${ms(cold.graph.buildMs)}) + session ${ms(c.sessionMs)}; .onnx ` +
        `${(statSync(cold.graph.path).size / MiB).toFixed(1)} MiB`,
    );

    const warmTimes: number[] = [];
    let embedder: OnnxInceptionResnetV1Embedder | undefined;
    for (let i = 0; i < 3; i++) {
      await embedder?.dispose();
      t = performance.now();
      embedder = await load(cacheDir, weights);
      warmTimes.push(performance.now() - t);
    }
    const w = embedder!.loadReport;
    console.log(
      `warm-cache load (target ≤ 1.5 s): median ${ms(quantile(warmTimes, 0.5))} of 3; last: hash .pt + read ` +
        `cached .onnx ${ms(w.graphMs)} + session ${ms(w.sessionMs)} (built: ${embedder!.graph.built})`,
    );

    const crops = await referenceCrops(8);
    const perFace1 = await timeBatch(embedder!, crops.slice(0, 1));
    const perFace8 = await timeBatch(embedder!, crops);
    await embedder!.dispose();
    console.log(
      `inference, median of ${rounds} after 2 warm-up runs: batch 1 ${ms(perFace1)}/face, ` +
        `batch 8 ${ms(perFace8)}/face (target ≤ 20 ms; facenet-pytorch on torch ≈ 31 ms/face at batch 8)`,
    );

    const warm = measureRss(cacheDir, weights);
    const coldRss = measureRss(path.join(work, 'cache-cold'), weights);
    console.log(
      `peak RSS of a fresh process embedding ${warm.faces} faces (batches of 16; target ≤ 600 MB): ` +
        `${mb(warm.afterEmbed)} from a warm cache (${mb(warm.baseline)} before loading: node, tsx, sharp, ` +
        `onnxruntime; ${mb(warm.afterLoad)} after loading); ${mb(coldRss.afterEmbed)} when the process also ` +
        `converts the checkpoint (empty cache, built: ${coldRss.built})`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

interface Timed {
  embed(faces: readonly RgbImage[]): Promise<unknown>;
}

/**
 * fp32 and int8 at batch 8, interleaved: each round times one batch on each (the order alternating between
 * rounds), so both see the same phase of the machine; the per-round ratio is what is reported.
 */
async function interleaved(label: string, fp32: Timed, int8: Timed, faces: RgbImage[]): Promise<void> {
  for (let i = 0; i < 2; i++) {
    await fp32.embed(faces);
    await int8.embed(faces);
  }
  const time = async (e: Timed) => {
    const start = performance.now();
    await e.embed(faces);
    return (performance.now() - start) / faces.length;
  };
  const f: number[] = [];
  const q: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < 2 * rounds; r++) {
    let fp: number;
    let i8: number;
    if (r % 2 === 0) {
      fp = await time(fp32);
      i8 = await time(int8);
    } else {
      i8 = await time(int8);
      fp = await time(fp32);
    }
    f.push(fp);
    q.push(i8);
    ratios.push(fp / i8);
  }
  console.log(
    `${label}, batch ${faces.length}, ${2 * rounds} interleaved rounds: fp32 median ${ms(quantile(f, 0.5))}/face ` +
      `(min ${ms(Math.min(...f))}), int8 median ${ms(quantile(q, 0.5))}/face (min ${ms(Math.min(...q))}); ` +
      `fp32/int8 per round: median ${quantile(ratios, 0.5).toFixed(2)}×, range ` +
      `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}×`,
  );
}

/**
 * The group-photo crops of the reference set (bbt1/3/5, faces.jpg, multiface.jpg) as a calibration folder of
 * links: no photo in it is one of the labelled face shots or single-person photos the accuracy is measured on.
 */
async function benchPrecision(): Promise<void> {
  console.log(`\n## int8 vs fp32 embedders (onnx, ${threads} intra-op threads)`);
  const work = mkdtempSync(path.join(tmpdir(), 'facerec-bench-int8-'));
  try {
    const reference = await readSyntheticReference(
      path.join(sharedDir, 'reference', 'inception_resnet_v1_synthetic.json'),
    );
    const weights = await writeSyntheticCheckpoint(path.join(work, 'synthetic.pt'), reference.keys);
    const store = new ModelStore({ manifest: await loadManifest(), cacheDir: path.join(work, 'cache') });
    const bbt = path.join(sharedDir, 'faces', 'face-api.js', 'bbt');
    const options = { intraOpNumThreads: threads };
    const irv1 = {
      fp32: await OnnxInceptionResnetV1Embedder.load(store, weights, options),
      int8: await OnnxInceptionResnetV1Embedder.load(store, weights, {
        ...options,
        precision: 'int8',
        calibrationDir: process.env.FACEREC_CALIBRATION_DIR ?? bbt,
      }),
    };
    console.log(
      `InceptionResnetV1 int8 graph: built and calibrated in ${ms(irv1.int8.graph.buildMs)} ` +
        `(${(statSync(irv1.int8.graph.path).size / MiB).toFixed(1)} MiB vs fp32 ` +
        `${(statSync(irv1.fp32.graph.path).size / MiB).toFixed(1)} MiB), calibrated on ${
          process.env.FACEREC_CALIBRATION_DIR ?? bbt
        }`,
    );
    await interleaved('InceptionResnetV1 (synthetic weights)', irv1.fp32, irv1.int8, await referenceCrops(8));
    await irv1.fp32.dispose();
    await irv1.int8.dispose();

    const calibrationDir =
      process.env.FACEREC_CALIBRATION_DIR ??
      (await linkFaceApiCalibrationCrops(sharedDir, path.join(work, 'calibration-group-crops')));
    const faceapi = {
      fp32: await OnnxFaceApiEmbedder.load(store, options),
      int8: await OnnxFaceApiEmbedder.load(store, { ...options, precision: 'int8', calibrationDir }),
    };
    const shots = await Promise.all((await referenceCrops(8)).map((crop) => resizeRgb(crop, 150, 150)));
    await interleaved("face-api.js's net", faceapi.fp32, faceapi.int8, shots);
    await faceapi.fp32.dispose();
    await faceapi.int8.dispose();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--rss-child') await rssChild(process.argv[3]!, process.argv[4]!);
else if (process.argv[2] === '--precision') await benchPrecision();
else {
  await bench();
  await benchPrecision();
}
