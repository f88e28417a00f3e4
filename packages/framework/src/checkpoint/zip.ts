/**
 * The `torch.save` format of PyTorch ≥ 1.6: a zip archive holding `<prefix>/data.pkl`, one
 * `<prefix>/data/<key>` entry of raw bytes per storage, and small metadata entries.
 */

import { unzipSync } from 'fflate';
import { CheckpointError } from '../errors.js';
import { type ContainerContents, unpickleTorchObject } from './torch.js';

// Only the entries a state dict needs are extracted; TorchScript code, extra files etc. stay packed.
const WANTED = /(^|\/)(data\.pkl|byteorder|data\/[^/]+)$/;

/**
 * Unpickles a zip checkpoint and attaches the bytes of every storage the archive holds.
 *
 * @throws CheckpointError on an unreadable archive, a missing or ambiguous `data.pkl`, or a refused pickle.
 */
export function readZip(bytes: Uint8Array): ContainerContents {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (file) => {
        if (!WANTED.test(file.name)) return false;
        // Deflate cannot expand more than ~1032:1; a larger claim is a zip bomb sizing its output buffer.
        if (file.compression !== 0 && file.originalSize > file.size * 1032 + 1024) {
          throw new CheckpointError(
            `zip entry ${file.name} claims an impossible ${file.originalSize}-byte size`,
          );
        }
        return true;
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

  for (const root of storages.roots()) {
    const name = `${prefix}data/${root.key}`;
    const data = entries[name];
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
