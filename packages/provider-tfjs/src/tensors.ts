/**
 * Turning PyTorch state dicts into TensorFlow.js weights, and the one place where tensors are created and
 * disposed: weights live in a {@link WeightSet} until the model is disposed, and every run goes through
 * {@link runModel}, which disposes every intermediate tensor and its outputs.
 */
import { DisposedError } from '@facerec/framework';
import type { FoldedWeights } from '@facerec/framework/internal';
import * as tf from '@tensorflow/tfjs-core';
import { onBackend, type TfjsBackendName } from './backend.js';

/** PyTorch Conv2d weight `[out, in, kh, kw]` (OIHW) → tfjs conv2d filter `[kh, kw, in, out]` (HWIO). */
export function oihwToHwio(data: Float32Array, [o, i, kh, kw]: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let a = 0; a < o!; a++)
    for (let b = 0; b < i!; b++)
      for (let y = 0; y < kh!; y++)
        for (let x = 0; x < kw!; x++)
          out[((y * kw! + x) * i! + b) * o! + a] = data[((a * i! + b) * kh! + y) * kw! + x]!;
  return out;
}

/** PyTorch Linear weight `[out, in]` → the `[in, out]` matrix tfjs multiplies by. */
export function transposeMatrix(data: Float32Array, [rows, cols]: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows!; r++) for (let c = 0; c < cols!; c++) out[c * rows! + r] = data[r * cols! + c]!;
  return out;
}

/** A convolution with its bias (HWIO filter), and the PReLU slope when it has one. */
export interface ConvWeights {
  readonly filter: tf.Tensor4D;
  readonly bias: tf.Tensor1D;
  readonly prelu?: tf.Tensor1D;
}

/** A dense layer (`[in, out]` matrix) with its bias, and the PReLU slope when it has one. */
export interface DenseWeights {
  readonly weight: tf.Tensor2D;
  readonly bias: tf.Tensor1D;
  readonly prelu?: tf.Tensor1D;
}

/**
 * The weight tensors of one model, created on its backend and owned until {@link WeightSet.dispose}. Every
 * tensor a model keeps is made here, so disposing the set frees all of them.
 */
export class WeightSet {
  readonly backend: TfjsBackendName;
  #tensors: tf.Tensor[] = [];

  private constructor(backend: TfjsBackendName) {
    this.backend = backend;
  }

  /**
   * Builds a model's weights on a fresh set on `backend` (`build` is synchronous: every tensor is made with the
   * backend active), releasing them if building fails.
   */
  static build<T>(backend: TfjsBackendName, build: (set: WeightSet) => T): Promise<T> {
    return onBackend(backend, () => {
      const set = new WeightSet(backend);
      try {
        return build(set);
      } catch (error) {
        set.dispose();
        throw error;
      }
    });
  }

  /** Number of tensors held. */
  get size(): number {
    return this.#tensors.length;
  }

  /** A 1-d tensor: a bias or a PReLU slope. */
  vector(data: Float32Array): tf.Tensor1D {
    return this.#keep(tf.tensor1d(data, 'float32'));
  }

  /** A conv filter from a PyTorch OIHW weight. */
  filter(oihw: Float32Array, shape: readonly [number, number, number, number]): tf.Tensor4D {
    const [o, i, kh, kw] = shape;
    return this.#keep(tf.tensor4d(oihwToHwio(oihw, shape), [kh, kw, i, o], 'float32'));
  }

  /** A folded convolution (PyTorch OIHW weight `[o, i, kh, kw]` and bias `[o]`) as a filter and a bias. */
  conv({ weight, bias }: FoldedWeights): { filter: tf.Tensor4D; bias: tf.Tensor1D } {
    const [o, i, kh, kw] = weight.dims as [number, number, number, number];
    return { filter: this.filter(weight.data, [o, i, kh, kw]), bias: this.vector(bias.data) };
  }

  /** A dense matrix from a PyTorch `[out, in]` Linear weight. */
  matrix(weight: Float32Array, shape: readonly [number, number]): tf.Tensor2D {
    return this.#keep(tf.tensor2d(transposeMatrix(weight, shape), [shape[1], shape[0]], 'float32'));
  }

  #keep<T extends tf.Tensor>(t: T): T {
    this.#tensors.push(t);
    return t;
  }

  /** Frees every tensor of the set. */
  dispose(): void {
    tf.dispose(this.#tensors);
    this.#tensors = [];
  }
}

/**
 * Runs one forward pass on `backend` and returns its outputs as float32 arrays. `forward` builds the graph
 * eagerly inside `tf.tidy`, so every intermediate tensor (the input included) is freed when it returns; the
 * outputs are read synchronously and freed here, in {@link onBackend}'s turn, so a model on another backend
 * cannot switch the engine between the switch and the read.
 */
export async function runModel(
  backend: TfjsBackendName,
  forward: () => tf.Tensor[],
  assertLive?: () => void,
): Promise<Float32Array[]> {
  return onBackend(backend, () => {
    // Checked once the backend is ours: a dispose() meanwhile freed the weights the forward pass would read.
    assertLive?.();
    const outputs = tf.tidy(forward);
    try {
      return outputs.map((t) => t.dataSync() as Float32Array);
    } finally {
      tf.dispose(outputs);
    }
  });
}

/**
 * An embedding network on one backend: its weights (owned until {@link EmbeddingNetwork.dispose}) and its
 * forward pass, an NHWC float32 batch in and one output row per face out. Batching and output checks belong to
 * the framework's `BaseEmbedder`; a tfjs embedder holds one of these.
 */
export class EmbeddingNetwork {
  readonly backend: TfjsBackendName;
  readonly #set: WeightSet;
  readonly #forward: (input: tf.Tensor4D) => tf.Tensor2D;
  #disposed = false;

  private constructor(set: WeightSet, forward: (input: tf.Tensor4D) => tf.Tensor2D) {
    this.backend = set.backend;
    this.#set = set;
    this.#forward = forward;
  }

  /** Builds the network's weights on a fresh {@link WeightSet} on `backend`, releasing them if building fails. */
  static async build(
    backend: TfjsBackendName,
    build: (set: WeightSet) => (input: tf.Tensor4D) => tf.Tensor2D,
  ): Promise<EmbeddingNetwork> {
    return WeightSet.build(backend, (set) => new EmbeddingNetwork(set, build(set)));
  }

  /** One forward pass over `count`×`height`×`width`×3 values; returns the output rows, flat. */
  async run(
    batch: Float32Array,
    [count, height, width]: readonly [number, number, number],
  ): Promise<Float32Array> {
    const [rows] = await runModel(
      this.backend,
      () => [this.#forward(tf.tensor4d(batch, [count, height, width, 3], 'float32'))],
      () => {
        if (this.#disposed) throw new DisposedError(`tfjs embedding network (${this.backend})`);
      },
    );
    return rows!;
  }

  /** Frees the network's weights; a run still waiting for its backend then fails with DisposedError. */
  dispose(): void {
    this.#disposed = true;
    this.#set.dispose();
  }
}

/**
 * PyTorch `MaxPool2d(kernel, stride, ceil_mode=True)` on NHWC. tfjs pools with floor rounding only (and the
 * wasm backend ignores `dimRoundingMode`), so a ceil-mode pool is expressed with tfjs paddings: `valid` when
 * the windows fit exactly, `same` when that pads only the bottom/right edge by what ceil mode needs (pooling
 * ignores padded cells, as PyTorch ignores the overhang), and otherwise an explicit −∞ pad. The first two
 * cover every MTCNN layer on the sizes the cascade produces and cost no copy.
 */
export function maxPoolCeil(x: tf.Tensor4D, kernel: number, stride: number): tf.Tensor4D {
  const [, h, w] = x.shape;
  const ceilOut = (n: number) => Math.ceil((n - kernel) / stride) + 1;
  const extra = (n: number) => (ceilOut(n) - 1) * stride + kernel - n;
  const sameMatches = (n: number) => {
    const out = Math.ceil(n / stride);
    const total = Math.max(0, (out - 1) * stride + kernel - n);
    return out === ceilOut(n) && Math.floor(total / 2) === 0;
  };
  if (extra(h) === 0 && extra(w) === 0) return tf.maxPool(x, kernel, stride, 'valid');
  if (sameMatches(h) && sameMatches(w)) return tf.maxPool(x, kernel, stride, 'same');
  const padded = tf.pad(
    x,
    [
      [0, 0],
      [0, extra(h)],
      [0, extra(w)],
      [0, 0],
    ],
    Number.NEGATIVE_INFINITY,
  );
  return tf.maxPool(padded, kernel, stride, 'valid');
}

/** Per-channel PReLU: the `[C]` slope broadcasts over the last (channel) axis; tfjs types it as x's rank. */
const prelu = <T extends tf.Tensor>(x: T, slope: tf.Tensor1D): T => tf.prelu(x, slope as tf.Tensor as T);

/**
 * Conv2d (stride 1, no padding) with bias, then PReLU when the weights have one. The PReLU is not fused
 * into the conv: both the wasm and cpu backends run a fused `prelu` activation slower than a conv followed
 * by a separate `Prelu` kernel (wasm: 118 vs 84 ms on P-Net's first layer at 720×378).
 */
export function convPrelu(x: tf.Tensor4D, w: ConvWeights): tf.Tensor4D {
  const y = tf.fused.conv2d({ x, filter: w.filter, bias: w.bias, strides: 1, pad: 'valid' });
  return w.prelu ? prelu(y, w.prelu) : y;
}

/** Dense layer with bias, then PReLU when the weights have one. */
export function densePrelu(x: tf.Tensor2D, w: DenseWeights): tf.Tensor2D {
  const y = tf.fused.matMul({ a: x, b: w.weight, bias: w.bias }) as tf.Tensor2D;
  return w.prelu ? prelu(y, w.prelu) : y;
}
