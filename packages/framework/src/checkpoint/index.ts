/**
 * Reads PyTorch `torch.save` state dicts (legacy and zip formats) into named tensors, without Python and
 * without ever executing anything the file asks for: the unpickler resolves globals only from a fixed
 * allow-list of tensor/state-dict builders and refuses everything else.
 */

import { CheckpointError } from '../errors.js';
import { readFileUpTo } from '../fs.js';
import { readLegacy } from './legacy.js';
import { toStateDict } from './torch.js';
import type { StateDict } from './types.js';
import { readZip } from './zip.js';

export { type FoldedWeights, foldBatchNorm, scaleTensor } from './fold.js';
export {
  type BatchNormParams,
  type FloatTensor,
  isTrainingOnlyKey,
  StateDictReader,
  type StateDictReaderOptions,
} from './reader.js';
export type { NamedTensor, StateDict, TensorDType } from './types.js';

/**
 * Default memory budget of {@link readCheckpoint}: 1 GiB, ten times facenet-pytorch's largest checkpoint
 * (InceptionResnetV1, 107 MB). It bounds the file, the storages the pickle declares (before any is
 * inflated) and the tensors once gathered (before any is allocated).
 */
export const DEFAULT_MAX_CHECKPOINT_BYTES = 2 ** 30;

/** Options for {@link readCheckpoint}. */
export interface ReadCheckpointOptions {
  /** Names the checkpoint (a path, a URL) in error messages and in {@link CheckpointError.source}. */
  readonly source?: string;
  /**
   * Memory budget in bytes (default {@link DEFAULT_MAX_CHECKPOINT_BYTES}): the file, the storages it
   * declares, and the tensors it would materialize (broadcast views at their full size) must each fit, or
   * the checkpoint is refused before the memory is taken.
   */
  readonly maxBytes?: number;
}

/**
 * Tells the two `torch.save` container formats apart by their leading bytes.
 *
 * @returns `'zip'` for PyTorch ≥ 1.6 archives, `'legacy'` for the older pickle-sequence format.
 * @throws CheckpointError when the bytes are neither (including the pre-0.1.10 tar format).
 */
export function checkpointFormat(bytes: Uint8Array): 'zip' | 'legacy' {
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b) {
    const kind = (bytes[2]! << 8) | bytes[3]!;
    // Local file header, or the end-of-directory record of an empty archive.
    if (kind === 0x0304 || kind === 0x0506) return 'zip';
  }
  // Every pickle of protocol ≥ 2 starts with PROTO; the legacy format starts with the magic-number pickle.
  if (bytes.length >= 2 && bytes[0] === 0x80) return 'legacy';
  if (bytes.length >= 262 && new TextDecoder('latin1').decode(bytes.subarray(257, 262)) === 'ustar') {
    throw new CheckpointError('tar-format checkpoints (PyTorch < 0.1.10) are not supported');
  }
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new CheckpointError(
    bytes.length === 0
      ? 'not a PyTorch checkpoint: the file is empty'
      : `not a PyTorch checkpoint: unrecognised leading bytes ${head}`,
  );
}

/**
 * Reads a state dict saved by `torch.save`, in either container format.
 *
 * The top-level object must be a dict or `OrderedDict` of tensors, or a dict whose `state_dict` entry is
 * one. Entries that are not tensors are skipped; `num_batches_tracked` and other int64 buffers are kept.
 * Every tensor comes back row-major and contiguous whatever its strides on disk, copied out of `bytes`.
 *
 * @param bytes the whole checkpoint file.
 * @param options `source` names the checkpoint in error messages.
 * @returns tensors by key, in the checkpoint's order.
 * @throws CheckpointError for anything but a readable state dict: unknown format, truncated or corrupt
 *   data, and any pickle that names a global outside the tensor/state-dict allow-list (nothing is run).
 *   A `TypeError`, `RangeError` or `ReferenceError` is a bug in the reader and is rethrown unwrapped.
 */
export function readCheckpoint(bytes: Uint8Array, options?: ReadCheckpointOptions): StateDict {
  const source = options?.source;
  const maxBytes = options?.maxBytes ?? DEFAULT_MAX_CHECKPOINT_BYTES;
  try {
    if (bytes.length > maxBytes) tooLarge(bytes.length, maxBytes);
    const contents = checkpointFormat(bytes) === 'zip' ? readZip(bytes, maxBytes) : readLegacy(bytes);
    return toStateDict(contents.top, contents.littleEndian, maxBytes);
  } catch (error) {
    if (isProgrammingError(error)) throw error;
    throw withSource(error, source);
  }
}

/**
 * Reads a `torch.save` state dict from a file; see {@link readCheckpoint}.
 *
 * @throws CheckpointError when the file cannot be read (the `fs` error is the `cause`) or is not a
 *   readable state dict. Errors name the path.
 */
export async function readCheckpointFile(
  path: string,
  options: Omit<ReadCheckpointOptions, 'source'> = {},
): Promise<StateDict> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_CHECKPOINT_BYTES;
  let bytes: Uint8Array;
  try {
    // A file over the budget is refused before it is read; a device or a pipe (no size) as soon as it passes it
    // (`/dev/zero` was read until memory ran out).
    bytes = await readFileUpTo(path, maxBytes, (size) =>
      checkpointTooLarge(size === undefined ? `more than ${maxBytes}` : String(size), maxBytes),
    );
  } catch (error) {
    if (CheckpointError.isInstance(error)) throw withSource(error, path);
    throw new CheckpointError(`cannot read file: ${error instanceof Error ? error.message : error}`, {
      source: path,
      cause: error,
    });
  }
  return readCheckpoint(bytes, { source: path, maxBytes });
}

function checkpointTooLarge(size: number | string, maxBytes: number): CheckpointError {
  return new CheckpointError(
    `the file has ${size} bytes, over the ${maxBytes}-byte budget (readCheckpoint option maxBytes)`,
  );
}

function tooLarge(size: number, maxBytes: number): never {
  throw checkpointTooLarge(size, maxBytes);
}

// The readers check every fault of the file and throw a CheckpointError for it (allocation failures
// included), so a TypeError, RangeError or ReferenceError escaping them is a bug in this code: blaming the
// checkpoint (a 4xx) would hide it, so it propagates unchanged.
function isProgrammingError(error: unknown): boolean {
  return error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError;
}

// Internal readers throw without a source; the caller gets one CheckpointError that names the file.
function withSource(error: unknown, source: string | undefined): CheckpointError {
  if (CheckpointError.isInstance(error)) {
    if (source === undefined || error.source !== undefined) return error;
    return new CheckpointError(error.message, { source, cause: error.cause });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new CheckpointError(`unreadable checkpoint: ${message}`, { source, cause: error });
}
