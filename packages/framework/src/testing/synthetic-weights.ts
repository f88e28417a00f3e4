/**
 * The deterministic synthetic weights the shared reference data is built from (see the shared data's
 * README, `reference/inception_resnet_v1_synthetic.json`): any implementation can regenerate them bit for
 * bit, so an architecture can be checked against facenet-pytorch without the pretrained checkpoints.
 *
 * Test and benchmark code only. Kept free of `vitest` so scripts run with `tsx` can import it too.
 */
import { readFile } from 'node:fs/promises';
import type { NamedTensor, StateDict } from '../checkpoint/types.js';

/** One entry of a state dict's key list: its key and shape. */
export interface SyntheticTensorKey {
  readonly name: string;
  readonly shape: readonly number[];
}

/** `reference/inception_resnet_v1_synthetic.json`, with its key list in {@link SyntheticTensorKey} form. */
export interface SyntheticReference {
  /** Every key of `InceptionResnetV1(classify=False).state_dict()`, in order. */
  readonly keys: readonly SyntheticTensorKey[];
  /** The first values of the first tensor, to check a generator against. */
  readonly firstValuesOfFirstTensor: readonly number[];
  /** facenet-pytorch's L2-normalised embedding of each crop, `crop_png` relative to `reference/`. */
  readonly embeddings: readonly { readonly cropPng: string; readonly embedding: readonly number[] }[];
}

const TWO_POW_32 = 4294967296;

/** True for batch-norm step counters, which the formula leaves at 0 (int64). */
const isCounter = (name: string): boolean => name.endsWith('num_batches_tracked');

/**
 * The README's value rule for a key, as `offset + scale · s` with `s = 2u − 1` (`symmetric`) or `s = u`:
 * `running_var` → 1 + 0.5u; `running_mean`, `bias` → 0.02s; ≥ 2-d `weight` → s·sqrt(3 / fan_in); 1-d
 * `weight` (batch-norm γ) → 1 + 0.1s. Each is the README's expression evaluated in the same order, so the
 * float64 results are identical; one affine form keeps the generator loop monomorphic (about 10× faster
 * than a closure per key, which matters for the 23 M values of InceptionResnetV1).
 */
function valueRule(
  name: string,
  shape: readonly number[],
): { offset: number; scale: number; symmetric: boolean } {
  if (name.endsWith('running_var')) return { offset: 1, scale: 0.5, symmetric: false };
  if (name.endsWith('running_mean') || name.endsWith('bias'))
    return { offset: 0, scale: 0.02, symmetric: true };
  if (shape.length >= 2) {
    const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
    return { offset: 0, scale: Math.sqrt(3 / fanIn), symmetric: true };
  }
  return { offset: 1, scale: 0.1, symmetric: true };
}

/**
 * Fills `out` with tensor `t`'s synthetic values: element `j` hashes `(t, j)` in uint32 arithmetic
 * (`Math.imul` wraps modulo 2^32; `>>> 0` reads the bits back as unsigned) to `u = x / 2^32` in [0, 1); the
 * float64 value is rounded to float32 by the store into `out`.
 */
function fillSynthetic(
  out: Float32Array,
  t: number,
  { offset, scale, symmetric }: ReturnType<typeof valueRule>,
): void {
  const seed = Math.imul(t + 1, 0x9e3779b9) >>> 0;
  for (let j = 0; j < out.length; j++) {
    let x = (Math.imul(j, 2654435761) + seed) >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0;
    x = Math.imul(x ^ (x >>> 16), 0x45d9f3b) >>> 0;
    const u = ((x ^ (x >>> 16)) >>> 0) / TWO_POW_32;
    out[j] = offset + scale * (symmetric ? 2 * u - 1 : u);
  }
}

/**
 * The synthetic state dict for a key list: tensor index `t` is the key's position in `keys`;
 * `num_batches_tracked` counters are int64 zeros, every other tensor follows the shared README's formula
 * and is float32. Append keys (e.g. `logits.*`) at the end to keep the earlier tensors unchanged.
 *
 * @example
 * const reference = await readSyntheticReference(sharedPath('reference', 'inception_resnet_v1_synthetic.json'));
 * const stateDict = syntheticStateDict(reference.keys);
 * buildInceptionResnetV1(stateDict);
 */
export function syntheticStateDict(keys: readonly SyntheticTensorKey[]): StateDict {
  const stateDict = new Map<string, NamedTensor>();
  keys.forEach(({ name, shape }, t) => {
    if (stateDict.has(name)) throw new Error(`syntheticStateDict: duplicate key "${name}"`);
    const n = shape.reduce((a, b) => a * b, 1);
    if (isCounter(name)) {
      stateDict.set(name, { name, dtype: 'int64', shape: [...shape], data: new BigInt64Array(n) });
      return;
    }
    const data = new Float32Array(n);
    fillSynthetic(data, t, valueRule(name, shape));
    stateDict.set(name, { name, dtype: 'float32', shape: [...shape], data });
  });
  return stateDict;
}

/**
 * A copy of `stateDict` with the float32 tensor `name` of `shape` added or replaced, every value `fill`: the
 * extra, mis-shaped or classifier-head weights tests hand to a graph builder.
 *
 * @example
 * expect(() => buildRNet(withTensor(stateDict, 'conv9.weight', [1]))).toThrow(/unexpected key/);
 */
export function withTensor(
  stateDict: StateDict,
  name: string,
  shape: readonly number[],
  fill = 0,
): StateDict {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  if (fill !== 0) data.fill(fill);
  return new Map(stateDict).set(name, { name, dtype: 'float32', shape: [...shape], data });
}

/** A copy of `stateDict` without the tensor `name`. */
export function withoutTensor(stateDict: StateDict, name: string): StateDict {
  const copy = new Map(stateDict);
  copy.delete(name);
  return copy;
}

interface RawReference {
  readonly state_dict: readonly { key: string; shape: number[] }[];
  readonly first_values_of_first_tensor: readonly number[];
  readonly embeddings: readonly { crop_png: string; embedding: number[] }[];
}

/** Reads `reference/inception_resnet_v1_synthetic.json` (pass its path). */
export async function readSyntheticReference(file: string): Promise<SyntheticReference> {
  const raw = JSON.parse(await readFile(file, 'utf8')) as RawReference;
  return {
    keys: raw.state_dict.map(({ key, shape }) => ({ name: key, shape })),
    firstValuesOfFirstTensor: raw.first_values_of_first_tensor,
    embeddings: raw.embeddings.map((e) => ({ cropPng: e.crop_png, embedding: e.embedding })),
  };
}
