// facerec against facenet-pytorch on the same frames, in the same run (`npm run bench -- compare`): prints
// the ratios, asserts nothing. This machine's speed drifts by up to 2×, so every measurement is taken in
// pairs, facerec and facenet-pytorch back to back (order alternating), and the ratio is the figure.
//
// Needs python3 with torch, torchvision and Pillow, and facenet-pytorch's source: the `facenet_pytorch`
// package (pip), or its repository's root in $FACENET_PYTORCH_DIR (its `models/` and `data/`). Without them it
// prints what is missing and skips (CI does not install them). $FACEREC_PYTHON picks the interpreter (Debian's
// `apt-get install python3-torch python3-torchvision` installs for /usr/bin/python3).
//
// Measured: MTCNN detection + crops per frame (facenet-pytorch `MTCNN(keep_all=True)`, all defaults; facerec
// onnx `mtcnn`); InceptionResnetV1 per face at batch 8 (random weights on the Python side, the shared
// synthetic ones here: the cost does not depend on the values); a whole frame (detect, then embed every
// face) as frames per second, with facerec's fp32 and int8 embedders; and the same whole frames as a stream
// on every core, each side at its best use of them: facerec's worker threads (`createWorkerProvider`, as
// `facerec serve` runs, one inference thread each) against as many facenet-pytorch processes of one thread.
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import {
  decodeImage,
  type FaceDetector,
  type FaceEmbedder,
  loadManifest,
  MODELS,
  ModelStore,
  type RgbImage,
} from '../packages/framework/src/index.js';
import { readSyntheticReference } from '../packages/framework/src/testing/synthetic-weights.js';
import { createWorkerProvider } from '../packages/lambda-runtime/src/index.js';
import { createOnnxProvider, OnnxInceptionResnetV1Embedder } from '../packages/provider-onnx/src/index.js';
import { writeSyntheticCheckpoint } from '../packages/provider-onnx/test/fixtures/synthetic-checkpoint.js';
import { BENCH_FRAMES, envInteger, ms, quantile, sharedDir } from './bench-common.js';

const threads = envInteger('FACEREC_THREADS', availableParallelism());
const rounds = envInteger('FACEREC_BENCH_ROUNDS', 4, 2);
const python = process.env.FACEREC_PYTHON ?? 'python3';
const pythonPath = [process.env.FACENET_PYTORCH_DIR, process.env.PYTHONPATH]
  .filter(Boolean)
  .join(path.delimiter);

/** The Python side: loads the frames and the two networks, then times what it is asked to, one JSON line each. */
const HARNESS = `
import json, sys, time
import torch
from PIL import Image
try:
    from facenet_pytorch import MTCNN, InceptionResnetV1
except ImportError:
    from models.mtcnn import MTCNN
    from models.inception_resnet_v1 import InceptionResnetV1
torch.set_num_threads(int(sys.argv[1]))
frames = [Image.open(p).convert('RGB') for p in json.loads(sys.argv[2])]
mtcnn = MTCNN(keep_all=True, device='cpu')
resnet = InceptionResnetV1(pretrained=None, classify=False).eval()
crops = torch.cat([c for c in (mtcnn(f) for f in frames) if c is not None])
batch = crops[:8]
print(json.dumps({'torch': torch.__version__, 'faces': len(crops)}), flush=True)

def timed(fn):
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000, out

def whole(frame):
    faces = mtcnn(frame)
    return 0 if faces is None else len(resnet(faces))

with torch.no_grad():
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd['op'] == 'detect':
            t, faces = timed(lambda: mtcnn(frames[cmd['frame']]))
            print(json.dumps({'ms': t, 'faces': 0 if faces is None else len(faces)}), flush=True)
        elif cmd['op'] == 'embed':
            t, _ = timed(lambda: resnet(batch))
            print(json.dumps({'ms': t / len(batch)}), flush=True)
        elif cmd['op'] == 'frame':
            t, faces = timed(lambda: whole(frames[cmd['frame']]))
            print(json.dumps({'ms': t, 'faces': faces}), flush=True)
`;

/** Why facenet-pytorch cannot run here, or undefined when it can. */
function missingPython(): string | undefined {
  const check = spawnSync(
    python,
    [
      '-c',
      'import torch, torchvision, PIL\ntry:\n import facenet_pytorch\nexcept ImportError:\n import models.mtcnn, models.inception_resnet_v1',
    ],
    { encoding: 'utf8', env: { ...process.env, PYTHONPATH: pythonPath } },
  );
  if (check.error) return `${python} not found`;
  if (check.status !== 0) return check.stderr.trim().split('\n').at(-1);
  return undefined;
}

/** One request/answer exchange with the harness. */
class FacenetPytorch {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;
  constructor(frames: readonly string[], threadCount = threads) {
    this.#child = spawn(python, ['-c', HARNESS, String(threadCount), JSON.stringify(frames)], {
      env: { ...process.env, PYTHONPATH: pythonPath },
    });
    this.#child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    this.#lines = createInterface({ input: this.#child.stdout })[Symbol.asyncIterator]();
  }
  async next(): Promise<Record<string, number | string>> {
    const { value, done } = await this.#lines.next();
    if (done) throw new Error('facenet-pytorch harness exited');
    return JSON.parse(value);
  }
  async ask(op: 'detect' | 'embed' | 'frame', frame = 0): Promise<number> {
    this.#child.stdin.write(`${JSON.stringify({ op, frame })}\n`);
    return Number((await this.next()).ms);
  }
  close(): void {
    this.#child.stdin.end();
  }
}

const time = async (fn: () => Promise<unknown>): Promise<number> => {
  const start = performance.now();
  await fn();
  return performance.now() - start;
};

/** Runs `ours` and `theirs` back to back, the order alternating with `turn`. */
async function pair(turn: number, ours: () => Promise<number>, theirs: () => Promise<number>) {
  if (turn % 2 === 0) {
    const o = await ours();
    return { ours: o, theirs: await theirs() };
  }
  const t = await theirs();
  return { ours: await ours(), theirs: t };
}

const median = (xs: readonly number[]) => quantile(xs, 0.5);
const spread = (xs: readonly number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}×`;

async function main(): Promise<void> {
  console.log(`## facerec vs facenet-pytorch, same frames, same run (${threads} threads each)`);
  const missing = missingPython();
  if (missing) {
    console.log(
      `skipped: facenet-pytorch cannot run with ${python} (${missing}). Needs torch, torchvision, Pillow and ` +
        "facenet-pytorch's source (pip `facenet_pytorch`, or FACENET_PYTORCH_DIR=<its repository root>); " +
        'FACEREC_PYTHON picks the interpreter.',
    );
    return;
  }
  const work = mkdtempSync(path.join(tmpdir(), 'facerec-bench-compare-'));
  const disposers: (() => Promise<void>)[] = [];
  let theirs: FacenetPytorch | undefined;
  try {
    // The frames of ../shared/README.md "Reference speed", resized once and written out, so both sides
    // decode the very same JPEG bytes.
    const files = await Promise.all(
      BENCH_FRAMES.map(async (name, i) => {
        const file = path.join(work, `frame-${i}.jpg`);
        writeFileSync(
          file,
          await sharp(path.join(sharedDir, 'faces', name))
            .resize({ width: 1280 })
            .jpeg({ quality: 95 })
            .toBuffer(),
        );
        return file;
      }),
    );
    const frames: RgbImage[] = await Promise.all(files.map(async (f) => decodeImage(await readFile(f))));
    theirs = new FacenetPytorch(files);
    const ready = await theirs.next();
    console.log(`facenet-pytorch: torch ${ready.torch}, ${ready.faces} faces over ${files.length} frames`);

    const store = new ModelStore({
      manifest: await loadManifest(),
      cacheDir: path.join(work, 'cache'),
      mirrorDir: path.join(sharedDir, 'models', 'upstream'),
    });
    const provider = createOnnxProvider({ intraOpNumThreads: threads, modelStore: store });
    const reference = await readSyntheticReference(
      path.join(sharedDir, 'reference', 'inception_resnet_v1_synthetic.json'),
    );
    const weights = await writeSyntheticCheckpoint(path.join(work, 'synthetic.pt'), reference.keys);
    const options = { intraOpNumThreads: threads };
    const fp32 = await OnnxInceptionResnetV1Embedder.load(store, weights, options);
    const int8 = await OnnxInceptionResnetV1Embedder.load(store, weights, {
      ...options,
      precision: 'int8',
      calibrationDir:
        process.env.FACEREC_CALIBRATION_DIR ?? path.join(sharedDir, 'faces', 'face-api.js', 'bbt'),
    });
    const detector = provider.detector('mtcnn');
    disposers.push(
      () => fp32.dispose(),
      () => int8.dispose(),
      () => detector.dispose(),
    );
    const crop = fp32.preprocessing.crop;
    const detected = await Promise.all(
      frames.map(async (f) => (await detector.detectFaces([f], { crop }))[0]!),
    );
    const batch = detected.flatMap((d) => d.crops.map((c) => c.image)).slice(0, 8);
    const wholeFrame = (embedder: FaceEmbedder, f: RgbImage) => async () => {
      const [found] = await detector.detectFaces([f], { crop });
      if (found!.crops.length) await embedder.embed(found!.crops.map((c) => c.image));
    };
    // Warm-up on both sides: arenas, kernel choice, first-call costs.
    for (const [i, f] of frames.entries()) {
      await wholeFrame(fp32, f)();
      await wholeFrame(int8, f)();
      await theirs.ask('frame', i);
    }
    await theirs.ask('embed');

    const series = () => ({
      ours: [] as number[],
      int8: [] as number[],
      theirs: [] as number[],
      ratio: [] as number[],
      ratio8: [] as number[],
    });
    const det = series();
    const emb = series();
    const whole = series();
    let turn = 0;
    for (let r = 0; r < rounds; r++) {
      for (const [i, f] of frames.entries()) {
        const d = await pair(
          turn++,
          () => time(() => detector.detectFaces([f], { crop })),
          () => theirs!.ask('detect', i),
        );
        det.ours.push(d.ours);
        det.theirs.push(d.theirs);
        det.ratio.push(d.theirs / d.ours);
      }
      const e = await pair(
        turn++,
        async () => (await time(() => fp32.embed(batch))) / batch.length,
        () => theirs!.ask('embed'),
      );
      const e8 = (await time(() => int8.embed(batch))) / batch.length;
      emb.ours.push(e.ours);
      emb.int8.push(e8);
      emb.theirs.push(e.theirs);
      emb.ratio.push(e.theirs / e.ours);
      emb.ratio8.push(e.theirs / e8);
      for (const [i, f] of frames.entries()) {
        const w = await pair(
          turn++,
          () => time(wholeFrame(fp32, f)),
          () => theirs!.ask('frame', i),
        );
        const w8 = await time(wholeFrame(int8, f));
        whole.ours.push(w.ours);
        whole.int8.push(w8);
        whole.theirs.push(w.theirs);
        whole.ratio.push(w.theirs / w.ours);
        whole.ratio8.push(w.theirs / w8);
      }
    }
    const fps = (perFrame: readonly number[]) => (1000 / median(perFrame)).toFixed(2);
    console.log(
      `detection + crops per frame (${det.ours.length} pairs): facenet-pytorch median ${ms(median(det.theirs))}, ` +
        `facerec ${ms(median(det.ours))}; ratio median ${median(det.ratio).toFixed(2)}×, range ${spread(det.ratio)}`,
    );
    console.log(
      `InceptionResnetV1 per face at batch ${batch.length} (${emb.ours.length} pairs): facenet-pytorch median ` +
        `${ms(median(emb.theirs))}, facerec fp32 ${ms(median(emb.ours))}, int8 ${ms(median(emb.int8))}; ratio ` +
        `median fp32 ${median(emb.ratio).toFixed(2)}× (${spread(emb.ratio)}), int8 ${median(emb.ratio8).toFixed(2)}× ` +
        `(${spread(emb.ratio8)})`,
    );
    console.log(
      `whole frame, detect + embed every face (${whole.ours.length} pairs): facenet-pytorch ${fps(whole.theirs)} ` +
        `frames/s, facerec fp32 ${fps(whole.ours)}, int8 ${fps(whole.int8)}; throughput ratio median fp32 ` +
        `${median(whole.ratio).toFixed(2)}× (${spread(whole.ratio)}), int8 ${median(whole.ratio8).toFixed(2)}× ` +
        `(${spread(whole.ratio8)})`,
    );
    await allCores(files, frames, weights, work, theirs);
  } finally {
    theirs?.close();
    for (const dispose of disposers) await dispose();
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Whole frames as a stream on every core: one frame in flight per core, each lane taking the next frame
 * when it is done. facerec: worker threads of one inference thread each (what `facerec serve` runs);
 * facenet-pytorch: as many processes of one torch thread each, or one process with every thread (faster
 * here: 2.0 against 1.4 frames/s), whichever is faster in that round. Rounds alternate which side goes
 * first; the ratio of each round's frames per second is the figure.
 */
async function allCores(
  files: string[],
  frames: RgbImage[],
  weights: string,
  work: string,
  together: FacenetPytorch,
): Promise<void> {
  const lanes = availableParallelism();
  const count = frames.length * Math.max(4, rounds);
  const stream = async (frame: (index: number, lane: number) => Promise<unknown>) => {
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        while (next < count) await frame(next++ % frames.length, lane);
      }),
    );
    return (count * 1000) / (performance.now() - started);
  };
  // The workers read the models as any process does: the bench's cache, the shared mirror.
  process.env.FACEREC_CACHE_DIR = path.join(work, 'cache');
  process.env.FACEREC_MODELS_MIRROR ??= path.join(sharedDir, 'models', 'upstream');
  process.env.FACEREC_CALIBRATION_DIR ??= path.join(sharedDir, 'faces', 'face-api.js', 'bbt');
  const provider = await createWorkerProvider({ provider: 'onnx', workers: lanes, threads: 1 });
  const theirs = Array.from({ length: lanes }, () => new FacenetPytorch(files, 1));
  try {
    await Promise.all(theirs.map((t) => t.next()));
    const resolved = MODELS.resolveEmbedder('inception-resnet-v1', { weights });
    const detector = provider.detector('mtcnn');
    const fp32Embedder = await provider.embedder('inception-resnet-v1', resolved.options);
    const int8Embedder = await provider.embedder('inception-resnet-v1', {
      ...resolved.options,
      precision: 'int8',
    });
    const ours = (d: FaceDetector, e: FaceEmbedder) => async (i: number) => {
      const [found] = await d.detectFaces([frames[i]!], { crop: e.preprocessing.crop });
      if (found!.crops.length) await e.embed(found!.crops.map((c) => c.image));
    };
    const pytorch = (i: number, lane: number) => theirs[lane]!.ask('frame', i);
    const pytorchTogether = async () => {
      const started = performance.now();
      for (let i = 0; i < count; i++) await together.ask('frame', i % frames.length);
      return (count * 1000) / (performance.now() - started);
    };
    const split: number[] = [];
    const single: number[] = [];
    const torchBest = async () => {
      const [apart, one] = [await stream(pytorch), await pytorchTogether()];
      split.push(apart);
      single.push(one);
      return Math.max(apart, one);
    };
    // Warm-up: every worker and every process sees every frame.
    await stream(ours(detector, fp32Embedder));
    await stream(ours(detector, int8Embedder));
    await Promise.all(
      theirs.map(async (t) => {
        for (let i = 0; i < frames.length; i++) await t.ask('frame', i);
      }),
    );
    const fp32: number[] = [];
    const int8: number[] = [];
    const torch: number[] = [];
    for (let r = 0; r < 3; r++) {
      if (r % 2 === 1) torch.push(await torchBest());
      fp32.push(await stream(ours(detector, fp32Embedder)));
      if (r % 2 === 0) torch.push(await torchBest());
      int8.push(await stream(ours(detector, int8Embedder)));
    }
    const ratio = (xs: number[]) => xs.map((x, i) => x / torch[i]!);
    console.log(
      `whole frames as a stream on all ${lanes} cores (${count} frames, ${torch.length} rounds): facenet-pytorch ` +
        `${lanes} processes × 1 thread ${median(split).toFixed(2)} frames/s, 1 process × ${threads} threads ` +
        `${median(single).toFixed(2)}; facerec ${lanes} workers × 1 thread ` +
        `fp32 ${median(fp32).toFixed(2)}, int8 ${median(int8).toFixed(2)}; ratio to facenet-pytorch's faster, median fp32 ` +
        `${median(ratio(fp32)).toFixed(2)}× (${spread(ratio(fp32))}), int8 ${median(ratio(int8)).toFixed(2)}× ` +
        `(${spread(ratio(int8))})`,
    );
  } finally {
    for (const t of theirs) t.close();
    await provider.close();
  }
}

await main();
