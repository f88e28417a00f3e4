/**
 * Reading a state dict into a network: every graph builder and provider takes its weights through this, so a
 * missing, mis-shaped or unexpected key fails the same way everywhere.
 */
import { CheckpointError } from '../errors.js';
import type { NamedTensor, StateDict } from './types.js';

/** A float32 tensor: its dimensions and row-major data. */
export interface FloatTensor {
  readonly dims: readonly number[];
  readonly data: Float32Array;
}

/** Batch-norm parameters as PyTorch stores them (`weight` = γ, `bias` = β), and the layer's `eps`. */
export interface BatchNormParams {
  readonly weight: FloatTensor;
  readonly bias: FloatTensor;
  readonly runningMean: FloatTensor;
  readonly runningVar: FloatTensor;
  /** PyTorch's `eps` for this layer (1e-5 by default; facenet-pytorch's InceptionResnetV1 uses 1e-3). */
  readonly eps: number;
}

/** Options of {@link StateDictReader}. */
export interface StateDictReaderOptions {
  /** Network name used in error messages, e.g. `PNet`. */
  readonly model: string;
  /** Where the weights came from (file path or URL); becomes the `source` of every {@link CheckpointError}. */
  readonly source?: string;
  /**
   * Keys that may be present but are not part of the graph; they are neither required nor reported as
   * unexpected. Defaults to batch-norm `num_batches_tracked` counters, which only matter for training.
   */
  readonly ignore?: (key: string) => boolean;
}

/** True for keys every network here can skip: batch-norm step counters. */
export function isTrainingOnlyKey(key: string): boolean {
  return key === 'num_batches_tracked' || key.endsWith('.num_batches_tracked');
}

const formatShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/**
 * Hands out a state dict's tensors by key while checking each shape, and afterwards reports keys the network
 * did not use. Both kinds of mismatch mean the checkpoint is not the one the architecture expects, so both
 * throw {@link CheckpointError} naming the key.
 *
 * @example
 * ```ts
 * const reader = new StateDictReader(stateDict, { model: 'PNet', source: 'pnet.pt' });
 * const w = reader.take('conv1.weight', [10, 3, 3, 3]);
 * reader.assertAllUsed();
 * ```
 */
export class StateDictReader {
  readonly #stateDict: StateDict;
  readonly #options: StateDictReaderOptions;
  readonly #used = new Set<string>();

  constructor(stateDict: StateDict, options: StateDictReaderOptions) {
    this.#stateDict = stateDict;
    this.#options = options;
  }

  /** Whether the state dict holds `key` (used or not). */
  has(key: string): boolean {
    return this.#stateDict.has(key);
  }

  /**
   * The tensor stored under `key` as float32, after checking it has exactly `shape`. Float64 and (already
   * widened) half-precision tensors are converted; integer or boolean tensors are refused.
   */
  take(key: string, shape: readonly number[]): FloatTensor {
    const tensor = this.#stateDict.get(key);
    if (!tensor) {
      throw this.#error(`missing weight "${key}" (expected shape ${formatShape(shape)})`);
    }
    const actual = tensor.shape;
    if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
      throw this.#error(`weight "${key}" has shape ${formatShape(actual)}, expected ${formatShape(shape)}`);
    }
    this.#used.add(key);
    return { dims: [...shape], data: this.#toFloat32(key, tensor) };
  }

  /** {@link StateDictReader.take} without the dimensions: just the float32 data. */
  takeData(key: string, shape: readonly number[]): Float32Array {
    return this.take(key, shape).data;
  }

  /**
   * The four tensors of a `BatchNorm` module stored under `prefix` (`weight`, `bias`, `running_mean`,
   * `running_var`), each checked to hold `channels` values; `eps` is the module's, which checkpoints do not store.
   */
  takeBatchNorm(prefix: string, channels: number, eps: number): BatchNormParams {
    return {
      weight: this.take(`${prefix}.weight`, [channels]),
      bias: this.take(`${prefix}.bias`, [channels]),
      runningMean: this.take(`${prefix}.running_mean`, [channels]),
      runningVar: this.take(`${prefix}.running_var`, [channels]),
      eps,
    };
  }

  /** Throws when the state dict holds keys that were neither taken nor ignored. */
  assertAllUsed(): void {
    const ignore = this.#options.ignore ?? isTrainingOnlyKey;
    const unexpected = [...this.#stateDict.keys()].filter((k) => !this.#used.has(k) && !ignore(k));
    if (unexpected.length === 0) return;
    const shown = unexpected.slice(0, 5).map((k) => `"${k}"`);
    const more = unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : '';
    throw this.#error(`unexpected key${unexpected.length > 1 ? 's' : ''} ${shown.join(', ')}${more}`);
  }

  #toFloat32(key: string, tensor: NamedTensor): Float32Array {
    const { data } = tensor;
    if (data instanceof Float32Array) return data;
    if (data instanceof Float64Array) return Float32Array.from(data);
    throw this.#error(`weight "${key}" has dtype ${tensor.dtype}, expected a floating-point tensor`);
  }

  #error(message: string): CheckpointError {
    const { source, model } = this.#options;
    return new CheckpointError(`${model}: ${message}`, source === undefined ? undefined : { source });
  }
}
