/**
 * The pre-1.6 `torch.save` format: a run of pickles followed by raw storage bytes.
 *
 *   magic number · protocol version · sys_info · object pickle · storage-key list · per key: int64 count + bytes
 */

import { CheckpointError } from '../errors.js';
import { describePyValue, type UnpickleOptions, unpickle } from './pickle.js';
import { type ContainerContents, torchRefusalReason, unpickleTorchObject } from './torch.js';

/** `torch.serialization.MAGIC_NUMBER`. */
export const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;

// The header pickles hold plain data only, so they get no globals at all.
const headerOptions = (label: string, start: number): UnpickleOptions => ({
  globals: new Map(),
  refusalReason: torchRefusalReason,
  label,
  start,
});

/**
 * Unpickles a legacy checkpoint and attaches every storage's bytes.
 *
 * @throws CheckpointError on a wrong magic number or protocol version, a refused pickle, or truncated data.
 */
export function readLegacy(bytes: Uint8Array): ContainerContents {
  const magic = unpickle(bytes, headerOptions('magic number pickle', 0));
  if (magic.value !== LEGACY_MAGIC) {
    throw new CheckpointError(
      'not a PyTorch checkpoint: the leading pickle is not the torch.save magic number',
    );
  }
  const protocol = unpickle(bytes, headerOptions('protocol version pickle', magic.end));
  if (protocol.value !== PROTOCOL_VERSION) {
    throw new CheckpointError(`unsupported legacy checkpoint protocol version ${String(protocol.value)}`);
  }
  // sys_info records the writer's endianness and C type sizes; storage bytes are little-endian regardless
  // and their counts are always int64, so none of it is needed.
  const sysInfo = unpickle(bytes, headerOptions('sys_info pickle', protocol.end));

  const { storages, ...object } = unpickleTorchObject(bytes, 'object pickle', sysInfo.end);

  const keyList = unpickle(bytes, headerOptions('storage key pickle', object.end));
  if (!Array.isArray(keyList.value)) {
    throw new CheckpointError(`storage key list must be a list, got ${describePyValue(keyList.value)}`);
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keyList.end;
  for (const rawKey of keyList.value) {
    const key =
      typeof rawKey === 'string' ? rawKey : rawKey instanceof Uint8Array ? latin1(rawKey) : undefined;
    const root = key === undefined ? undefined : storages.root(key);
    if (!root)
      throw new CheckpointError(`storage key ${String(key ?? rawKey)} is not referenced by the pickle`);
    if (pos + 8 > bytes.length) {
      throw new CheckpointError(
        `truncated checkpoint: storage "${root.key}" header at offset ${pos} is missing`,
      );
    }
    const count = view.getBigInt64(pos, true);
    pos += 8;
    if (count !== BigInt(root.numel)) {
      throw new CheckpointError(
        `storage "${root.key}": the data section holds ${count} elements but the pickle declares ${root.numel}`,
      );
    }
    const end = pos + root.byteLength;
    if (end > bytes.length) {
      throw new CheckpointError(
        `truncated checkpoint: storage "${root.key}" needs ${root.byteLength} bytes at offset ${pos}, ` +
          `${bytes.length - pos} left`,
      );
    }
    root.bytes = bytes.subarray(pos, end);
    pos = end;
  }
  return { top: object.value, littleEndian: true };
}

function latin1(raw: Uint8Array): string {
  return new TextDecoder('latin1').decode(raw);
}
