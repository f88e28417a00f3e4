import type {
  ModelStore,
  MtcnnNetworks,
  ONetOutput,
  PNetOutput,
  PNetRunOptions,
  RNetOutput,
} from '@facerec/framework';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { buildONet, buildPNet, buildRNet } from './graph/index.js';
import { createSession, loadOrt } from './graph/session.js';
import { type CachedGraph, cachedGraph, graphSource, resolveWeights } from './model-cache.js';

/** Timings of one MTCNN load, for benchmarks and logs. */
export interface MtcnnLoadReport {
  readonly graphs: readonly CachedGraph[];
  readonly totalMs: number;
}

/** Version of the MTCNN graphs' layout (2: PReLU as Relu/Mul/Add, see `graph/mtcnn.ts`). */
export const MTCNN_GRAPH_VERSION = 2;

type Ort = typeof import('onnxruntime-node');

/**
 * Largest P-Net input (pixels per call, or of the whole level for a strip) run on the networks' lasting
 * session until `reserve` (the detector's warm-up) names the frames to expect: the first pyramid level of a
 * Full HD frame at the default minimum face size, 1152×648, fits. Larger ones (the strips of a frame larger
 * than the expected ones) run on a second P-Net session created for that cascade call and released when its
 * P-Net stage ends (`afterPNet`): on the lasting session their new shapes grew onnxruntime's CPU arena for
 * good (+13 to +34 MiB after one 25-megapixel frame). The second session has an arena too: one without it
 * allocates every activation anew, which with glibc's mmap threshold at 1 MiB (the Dockerfile's) made a
 * 25-megapixel frame's P-Net 3.5–4× slower (strips of a 2304×1296 level 0.6–0.75 s against 0.17–0.26 s; the
 * session takes 2–5 ms to create).
 */
const DEFAULT_ARENA_PNET_PIXELS = 1280 * 720;

/**
 * P-Net levels above this many pixels run in horizontal strips of about this size (the cascade's
 * `pnetPixelLimit`; the strips are joined into exactly the maps of one run). A strip's activations stay in the
 * CPU caches: on a 2-core Zen 5 EPYC, strips of 48–96 output rows ran the first level of a 1280×720 frame
 * (768×432) in 20.4–20.8 ms against 24.0 ms whole, and that of a 1280×1574 frame in 47–48 ms against 61 ms
 * (interleaved, the 10 overlapping rows of each strip included). The arena then holds one strip's
 * activations, whatever the frame.
 */
const PNET_STRIP_PIXELS = 128 * 1024;

/**
 * R-Net and O-Net run on at most this many candidates at a time. Smaller batches keep each layer's
 * activations in the CPU caches: for 1536 R-Net crops, runs of 256 took 38 ms against 55 ms in one run
 * (O-Net: runs of 32, 14.5 ms against 16 ms for 96 crops), and the arena never holds more than one chunk's
 * activations, whatever the number of candidates. Runs of 64 R-Net crops (R-Net's first map: 4 MB of a chunk,
 * against 16 MB for 256) made the four bench frames' cascade ≈ 5 % faster again on a 2-core Zen 5 EPYC (sum of
 * per-frame medians 403–409 against 423–439 ms in three interleaved runs); O-Net's 16 against 32 measured no
 * difference. Each crop's output does not depend on the batch.
 */
const CANDIDATE_CHUNKS = { rnet: 64, onet: 32 } as const;

/** The three MTCNN networks on onnxruntime-node sessions. */
export class OnnxMtcnnNetworks implements MtcnnNetworks {
  readonly #ort: Ort;
  readonly #pnet: InferenceSession;
  readonly #rnet: InferenceSession;
  readonly #onet: InferenceSession;
  /** Opens a P-Net session for inputs above {@link OnnxMtcnnNetworks.#arenaPnetPixels}. */
  readonly #openLargePnet: () => Promise<InferenceSession>;
  /** That session while a cascade call needs it, released by {@link OnnxMtcnnNetworks.afterPNet}. */
  #largePnet: Promise<InferenceSession> | undefined;
  /** Runs on {@link OnnxMtcnnNetworks.#largePnet} not yet finished (it is released only when none is). */
  #largeRuns = 0;
  #arenaPnetPixels = DEFAULT_ARENA_PNET_PIXELS;
  /** How the graphs were obtained (cache hit or build) and how long loading took. */
  readonly loadReport: MtcnnLoadReport;

  private constructor(
    ort: Ort,
    sessions: InferenceSession[],
    openLargePnet: () => Promise<InferenceSession>,
    loadReport: MtcnnLoadReport,
  ) {
    this.#ort = ort;
    [this.#pnet, this.#rnet, this.#onet] = sessions as [InferenceSession, InferenceSession, InferenceSession];
    this.#openLargePnet = openLargePnet;
    this.loadReport = loadReport;
  }

  /** Pulls the upstream weights through the store, builds or reuses the cached graphs, opens sessions. */
  static async load(store: ModelStore, intraOpNumThreads: number): Promise<OnnxMtcnnNetworks> {
    const started = performance.now();
    const specs = [
      ['mtcnn-pnet', 'pnet', buildPNet],
      ['mtcnn-rnet', 'rnet', buildRNet],
      ['mtcnn-onet', 'onet', buildONet],
    ] as const;
    const graphs = await Promise.all(
      specs.map(async ([name, tag, build]) =>
        cachedGraph(
          store.cacheDir,
          `mtcnn-${tag}`,
          await resolveWeights(store, name),
          (sd, metadata) => build(sd, { metadata }),
          MTCNN_GRAPH_VERSION,
        ),
      ),
    );
    // Each network with onnxruntime's CPU arena (it made 1280-px frames ≈ 1.3× faster than plain
    // allocations); P-Net's second session, for larger frames, is opened when one comes.
    const open = (g: CachedGraph) =>
      createSession(graphSource(g), { intraOpNumThreads, memoryPattern: false });
    const sessions = await Promise.all(graphs.map(open));
    const ort = await loadOrt();
    return new OnnxMtcnnNetworks(ort, sessions, () => open(graphs[0]!), {
      graphs,
      totalMs: performance.now() - started,
    });
  }

  #tensor(data: Float32Array, dims: number[]): Tensor {
    return new this.#ort.Tensor('float32', data, dims);
  }

  async pnet(
    input: Float32Array,
    count: number,
    height: number,
    width: number,
    options: PNetRunOptions = {},
  ): Promise<PNetOutput> {
    // A strip of a level the lasting session was reserved for runs on it (its strips fit what its arena holds
    // already); a strip of a larger level (a frame larger than the expected ones) runs on the session of this
    // cascade call, as any larger input, so that its new shapes do not grow the lasting arena for good.
    const pixels = options.transient && options.levelPixels ? options.levelPixels : count * height * width;
    const feeds = { input: this.#tensor(input, [count, 3, height, width]) };
    let out: InferenceSession.ReturnType;
    if (pixels <= this.#arenaPnetPixels) {
      out = await this.#pnet.run(feeds);
    } else {
      this.#largeRuns++;
      try {
        this.#largePnet ??= this.#openLargePnet();
        out = await (await this.#largePnet).run(feeds);
      } finally {
        this.#largeRuns--;
      }
    }
    const prob = out.prob!;
    return {
      reg: out.reg!.data as Float32Array,
      prob: prob.data as Float32Array,
      height: prob.dims[2]!,
      width: prob.dims[3]!,
    };
  }

  /** P-Net inputs up to `pnetPixels` run with the CPU arena from now on, larger ones without. */
  reserve(pnetPixels: number): void {
    this.#arenaPnetPixels = pnetPixels;
  }

  /** The cascade runs P-Net levels larger than this in strips of about this size (see PNET_STRIP_PIXELS). */
  pnetPixelLimit(): number {
    return PNET_STRIP_PIXELS;
  }

  /** Releases the P-Net session of a larger frame's strips, if one was opened and no run is using it. */
  async afterPNet(): Promise<void> {
    const large = this.#largePnet;
    if (large === undefined || this.#largeRuns > 0) return;
    this.#largePnet = undefined;
    await (await large).release();
  }

  async rnet(input: Float32Array, count: number): Promise<RNetOutput> {
    const [reg, prob] = await this.#chunked(this.#rnet, input, count, 24, CANDIDATE_CHUNKS.rnet, [
      'reg',
      'prob',
    ]);
    return { reg: reg!, prob: prob! };
  }

  async onet(input: Float32Array, count: number): Promise<ONetOutput> {
    const [reg, landmarks, prob] = await this.#chunked(this.#onet, input, count, 48, CANDIDATE_CHUNKS.onet, [
      'reg',
      'landmarks',
      'prob',
    ]);
    return { reg: reg!, landmarks: landmarks!, prob: prob! };
  }

  /**
   * Runs `session` on `count` size×size crops, at most `chunk` per run, and joins the named outputs (each
   * row of an output belongs to one crop, so the joined rows are those of one run over all crops).
   */
  async #chunked(
    session: InferenceSession,
    input: Float32Array,
    count: number,
    size: number,
    chunk: number,
    names: readonly string[],
  ): Promise<Float32Array[]> {
    const per = 3 * size * size;
    const run = async (start: number, n: number) => {
      const out = await session.run({
        input: this.#tensor(input.subarray(start * per, (start + n) * per), [n, 3, size, size]),
      });
      return names.map((name) => out[name]!.data as Float32Array);
    };
    if (count <= chunk) return run(0, count);
    let joined: Float32Array[] = [];
    for (let start = 0; start < count; start += chunk) {
      const n = Math.min(chunk, count - start);
      const parts = await run(start, n);
      if (start === 0) joined = parts.map((p) => new Float32Array((p.length / n) * count));
      parts.forEach((p, i) => {
        joined[i]!.set(p, (p.length / n) * start);
      });
    }
    return joined;
  }

  async dispose(): Promise<void> {
    await Promise.all([
      this.#pnet.release(),
      this.#rnet.release(),
      this.#onet.release(),
      this.#largePnet?.then(
        (session) => session.release(),
        () => undefined, // it failed to open: nothing to release
      ),
    ]);
  }
}
