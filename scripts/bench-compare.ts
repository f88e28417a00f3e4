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
// face) as frames per second, with facerec's fp32 and int8 embedders.
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import {
  decodeImage,
  type FaceEmbedder,
  loadManifest,
  ModelStore,
  type RgbImage,
} from '../packages/framework/src/index.js';
import { readSyntheticReference } from '../packages/framework/src/testing/synthetic-weights.js';
import { createOnnxProvider, OnnxInceptionResnetV1Embedder } from '../packages/provider-onnx/src/index.js';
import { writeSyntheticCheckpoint } from '../packages/provider-onnx/test/fixtures/synthetic-checkpoint.js';
import { BENCH_FRAMES, ms, quantile, sharedDir } from './bench-common.js';

const threads = Number(process.env.FACEREC_THREADS ?? availableParallelism());
const rounds = Math.max(2, Number(process.env.FACEREC_BENCH_ROUNDS ?? 4));
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
  constructor(frames: readonly string[]) {
    this.#child = spawn(python, ['-c', HARNESS, String(threads), JSON.stringify(frames)], {
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
  } finally {
    theirs?.close();
    for (const dispose of disposers) await dispose();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
