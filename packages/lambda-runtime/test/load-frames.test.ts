import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadFrames } from '@facerec/lambda-runtime';
import { afterEach, beforeEach, expect, it } from 'vitest';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'facerec-frames-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

/** loadFrames reads files without decoding them: a few bytes stand for an image. */
const image = (file: string, byte: number) => writeFile(file, Buffer.from([byte, byte]));

it('follows a linked identity folder, as enroll does, and takes images given directly in the folder', async () => {
  const photos = path.join(root, 'photos', 'amy');
  await mkdir(photos, { recursive: true });
  await image(path.join(photos, 'a.jpg'), 1);
  await writeFile(path.join(photos, 'notes.txt'), 'not an image');
  const frames = path.join(root, 'frames');
  await mkdir(path.join(frames, 'bob'), { recursive: true });
  await image(path.join(frames, 'bob', 'b.png'), 2);
  await symlink(photos, path.join(frames, 'amy'));
  await image(path.join(frames, 'c.webp'), 3);
  // A link to nothing is not a folder: left out, as before.
  await symlink(path.join(root, 'gone'), path.join(frames, 'dan'));
  const loaded = await loadFrames(frames);
  expect(loaded.map((f) => [f.filename, f.expected, f.content])).toEqual([
    ['a.jpg', 'amy', Buffer.from([1, 1]).toString('base64')],
    ['b.png', 'bob', Buffer.from([2, 2]).toString('base64')],
    ['c.webp', undefined, Buffer.from([3, 3]).toString('base64')],
  ]);
});
