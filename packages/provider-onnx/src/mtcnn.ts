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
export class OnnxMtcnnNetworks implements MtcnnNetworks {
  readonly #ort: Ort;
  readonly #pnet: InferenceSession;
  readonly #rnet: InferenceSession;
  readonly #onet: InferenceSession;
  /** How the graphs were obtained (cache hit or build) and how long loading took. */
  readonly loadReport: MtcnnLoadReport;

  private constructor(ort: Ort, sessions: InferenceSession[], loadReport: MtcnnLoadReport) {
    this.#ort = ort;
    [this.#pnet, this.#rnet, this.#onet] = sessions as [InferenceSession, InferenceSession, InferenceSession];
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
    const sessions = await Promise.all(
      graphs.map((g) =>
        // No CPU arena: P-Net's activations grow with the frame, and the arena would keep the largest
        // frame's for good (see CreateSessionOptions.cpuMemArena); 1280-px frames ran as fast without it.
        createSession(graphSource(g), { intraOpNumThreads, memoryPattern: false, cpuMemArena: false }),
      ),
    );
    const ort = await import('onnxruntime-node');
    return new OnnxMtcnnNetworks(ort, sessions, { graphs, totalMs: performance.now() - started });
  }

  #tensor(data: Float32Array, dims: number[]): Tensor {
    return new this.#ort.Tensor('float32', data, dims);
  }

  async pnet(input: Float32Array, count: number, height: number, width: number): Promise<PNetOutput> {
    const out = await this.#pnet.run({ input: this.#tensor(input, [count, 3, height, width]) });
    const prob = out.prob!;
    return {
      reg: out.reg!.data as Float32Array,
      prob: prob.data as Float32Array,
      height: prob.dims[2]!,
      width: prob.dims[3]!,
    };
  }

  async rnet(input: Float32Array, count: number): Promise<RNetOutput> {
    const out = await this.#rnet.run({ input: this.#tensor(input, [count, 3, 24, 24]) });
    return { reg: out.reg!.data as Float32Array, prob: out.prob!.data as Float32Array };
  }

  async onet(input: Float32Array, count: number): Promise<ONetOutput> {
    const out = await this.#onet.run({ input: this.#tensor(input, [count, 3, 48, 48]) });
    return {
      reg: out.reg!.data as Float32Array,
      landmarks: out.landmarks!.data as Float32Array,
      prob: out.prob!.data as Float32Array,
    };
  }

  async dispose(): Promise<void> {
    await Promise.all([this.#pnet.release(), this.#rnet.release(), this.#onet.release()]);
  }
}
