/**
 * The `torch.save` format of PyTorch ≥ 1.6: a zip archive holding `<prefix>/data.pkl`, one
 * `<prefix>/data/<key>` entry of raw bytes per storage, and small metadata entries.
 */

import { unzipSync } from 'fflate';
import { CheckpointError } from '../errors.js';
import { type ContainerContents, unpickleTorchObject } from './torch.js';

// The metadata entries are extracted first; storages only once the pickle has said which it references
// and how large each is, so an entry nothing references (or one larger than declared) is never inflated.
// TorchScript code, extra files etc. stay packed.
const METADATA = /(^|\/)(data\.pkl|byteorder)$/;

type ZipFilter = (file: { name: string; size: number; originalSize: number; compression: number }) => boolean;

function extract(bytes: Uint8Array, filter: ZipFilter): Record<string, Uint8Array> {
  try {
    return unzipSync(bytes, {
      filter: (file) => {
        // Deflate cannot expand more than ~1032:1; a larger claim is a zip bomb sizing its output buffer.
        if (file.compression !== 0 && file.originalSize > file.size * 1032 + 1024) {
          throw new CheckpointError(
            `zip entry ${file.name} claims an impossible ${file.originalSize}-byte size`,
          );
        }
        return filter(file);
      },
    });
  } catch (error) {
    if (CheckpointError.isInstance(error)) throw error;
    throw new CheckpointError(
      `not a readable zip archive: ${error instanceof Error ? error.message : error}`,
      {
        cause: error,
      },
    );
  }
}

/**
 * Unpickles a zip checkpoint and attaches the bytes of every storage the pickle references.
 *
 * @param maxBytes - budget for the storages the pickle declares (their total size), checked before any is
 *   inflated.
 * @throws CheckpointError on an unreadable archive, a missing or ambiguous `data.pkl`, a refused pickle, or
 *   storages over the budget.
 */
export function readZip(bytes: Uint8Array, maxBytes: number): ContainerContents {
  const entries = extract(bytes, (file) => {
    if (!METADATA.test(file.name)) return false;
    if (file.originalSize > maxBytes) {
      throw new CheckpointError(`zip entry ${file.name} of ${file.originalSize} bytes exceeds the budget`);
    }
    return true;
  });

  const pickles = Object.keys(entries).filter((name) => name === 'data.pkl' || name.endsWith('/data.pkl'));
  if (pickles.length === 0)
    throw new CheckpointError('zip archive has no data.pkl: not a PyTorch checkpoint');
  // torch writes exactly one `<archive name>/data.pkl`; prefer the shallowest if a tool nested more.
  const depth = (name: string) => name.split('/').length;
  pickles.sort((a, b) => depth(a) - depth(b));
  if (pickles.length > 1 && depth(pickles[0]!) === depth(pickles[1]!)) {
    throw new CheckpointError(`zip archive has several data.pkl entries: ${pickles.join(', ')}`);
  }
  const pickleName = pickles[0]!;
  const prefix = pickleName.slice(0, -'data.pkl'.length);

  const byteorderEntry = entries[`${prefix}byteorder`];
  const byteorder = byteorderEntry ? new TextDecoder().decode(byteorderEntry).trim() : 'little';
  if (byteorder !== 'little' && byteorder !== 'big') {
    throw new CheckpointError(`unknown byteorder "${byteorder}" in ${prefix}byteorder`);
  }

  const { value, storages } = unpickleTorchObject(entries[pickleName]!, pickleName);

  const roots = new Map([...storages.roots()].map((root) => [`${prefix}data/${root.key}`, root]));
  let declared = 0;
  for (const root of roots.values()) declared += root.byteLength;
  if (declared > maxBytes) {
    throw new CheckpointError(
      `the pickle declares ${declared} bytes of storages, over the ${maxBytes}-byte budget ` +
        '(readCheckpoint option maxBytes)',
    );
  }
  const storageBytes = extract(bytes, (file) => {
    const root = roots.get(file.name);
    if (!root) return false;
    if (file.originalSize > root.byteLength) {
      throw new CheckpointError(
        `zip entry ${file.name} holds ${file.originalSize} bytes, the pickle declares ${root.byteLength}`,
      );
    }
    return true;
  });
  for (const [name, root] of roots) {
    const data = storageBytes[name];
    // A missing entry only matters if a returned tensor uses it; materialize reports that.
    if (!data) continue;
    if (data.length < root.byteLength) {
      throw new CheckpointError(
        `truncated checkpoint: ${name} has ${data.length} bytes, the pickle declares ${root.byteLength}`,
      );
    }
    root.bytes = data;
  }
  return { top: value, littleEndian: byteorder === 'little' };
}
