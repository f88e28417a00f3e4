/** Element types the checkpoint reader understands. */
export type TensorDType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'int16'
  | 'int8'
  | 'uint8'
  | 'bool';

/**
 * A dense tensor read from a checkpoint: row-major (C-contiguous) data, whatever the strides were on disk.
 * `float16`/`bfloat16` are widened to `Float32Array`; `int64` is `BigInt64Array`; `float64` is `Float64Array`.
 */
export interface NamedTensor {
  readonly name: string;
  readonly dtype: TensorDType;
  readonly shape: readonly number[];
  readonly data:
    | Float32Array
    | Float64Array
    | BigInt64Array
    | Int32Array
    | Int16Array
    | Int8Array
    | Uint8Array;
}

/** A state dict: tensors by key, in the order the checkpoint stores them. */
export type StateDict = ReadonlyMap<string, NamedTensor>;
