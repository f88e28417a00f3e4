import type { ModelStore, MtcnnNetworks, ONetOutput, PNetOutput, RNetOutput } from '@facerec/framework';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { buildONet, buildPNet, buildRNet } from './graph/index.js';
import { createSession } from './graph/session.js';
import { type CachedGraph, cachedGraph, graphSource, resolveWeights } from './model-cache.js';

/** Timings of one MTCNN load, for benchmarks and logs. */
export interface MtcnnLoadReport {
  readonly graphs: readonly CachedGraph[];
  readonly totalMs: number;
}

/** Version of the MTCNN graphs' layout (2: PReLU as Relu/Mul/Add, see `graph/mtcnn.ts`). */
export const MTCNN_GRAPH_VERSION = 2;

type Ort = typeof import('onnxruntime-node');

/** The three MTCNN networks on onnxruntime-node sessions. */
/**
 * Largest inputs run on the sessions with a CPU arena: P-Net pixels per call (the first pyramid level of a
 * Full HD frame at the default minimum face size, 1152×648, fits) and R-Net / O-Net candidates per call (a
 * crowded 1280-px frame's). Ordinary frames keep the arena's speed, and the arenas never grow past what
 * those need; a larger frame's inputs run on the arena-less sessions and their memory is freed after them.
 */
const ARENA_LIMITS = { pnetPixels: 1280 * 720, rnetBatch: 4000, onetBatch: 400 } as const;

export class OnnxMtcnnNetworks implements MtcnnNetworks {
  readonly #ort: Ort;
  readonly #pnet: InferenceSession;
  readonly #rnet: InferenceSession;
  readonly #onet: InferenceSession;
  /** The same three networks without the CPU arena, for inputs above the {@link ARENA_LIMITS}. */
  readonly #large: readonly [InferenceSession, InferenceSession, InferenceSession];
  /** How the graphs were obtained (cache hit or build) and how long loading took. */
  readonly loadReport: MtcnnLoadReport;

  private constructor(ort: Ort, sessions: InferenceSession[], loadReport: MtcnnLoadReport) {
    this.#ort = ort;
    [this.#pnet, this.#rnet, this.#onet] = sessions as [InferenceSession, InferenceSession, InferenceSession];
    this.#large = sessions.slice(3) as [InferenceSession, InferenceSession, InferenceSession];
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
    // Each network twice: with onnxruntime's CPU arena for the inputs of ordinary frames (the arena made
    // 1280-px frames ≈ 1.3× faster than plain allocations), and without it for larger inputs, whose
    // activations the arena would keep for good (see CreateSessionOptions.cpuMemArena).
    const sessions = await Promise.all(
      [...graphs, ...graphs].map((g, i) =>
        createSession(graphSource(g), { intraOpNumThreads, memoryPattern: false, cpuMemArena: i < 3 }),
      ),
    );
    const ort = await import('onnxruntime-node');
    return new OnnxMtcnnNetworks(ort, sessions, { graphs, totalMs: performance.now() - started });
  }

  #tensor(data: Float32Array, dims: number[]): Tensor {
    return new this.#ort.Tensor('float32', data, dims);
  }

  async pnet(input: Float32Array, count: number, height: number, width: number): Promise<PNetOutput> {
    const session = count * height * width > ARENA_LIMITS.pnetPixels ? this.#large[0] : this.#pnet;
    const out = await session.run({ input: this.#tensor(input, [count, 3, height, width]) });
    const prob = out.prob!;
    return {
      reg: out.reg!.data as Float32Array,
      prob: prob.data as Float32Array,
      height: prob.dims[2]!,
      width: prob.dims[3]!,
    };
  }

  async rnet(input: Float32Array, count: number): Promise<RNetOutput> {
    const session = count > ARENA_LIMITS.rnetBatch ? this.#large[1] : this.#rnet;
    const out = await session.run({ input: this.#tensor(input, [count, 3, 24, 24]) });
    return { reg: out.reg!.data as Float32Array, prob: out.prob!.data as Float32Array };
  }

  async onet(input: Float32Array, count: number): Promise<ONetOutput> {
    const session = count > ARENA_LIMITS.onetBatch ? this.#large[2] : this.#onet;
    const out = await session.run({ input: this.#tensor(input, [count, 3, 48, 48]) });
    return {
      reg: out.reg!.data as Float32Array,
      landmarks: out.landmarks!.data as Float32Array,
      prob: out.prob!.data as Float32Array,
    };
  }

  async dispose(): Promise<void> {
    await Promise.all([
      this.#pnet.release(),
      this.#rnet.release(),
      this.#onet.release(),
      ...this.#large.map((s) => s.release()),
    ]);
  }
}
