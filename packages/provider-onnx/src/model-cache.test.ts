import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CheckpointError } from '@facerec/framework';
import { afterEach, expect, it } from 'vitest';
import { cachedGraph, cachedOnnxFile } from './model-cache.js';

let dir: string | undefined;
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('records each graph it builds, and builds again one whose size or hash no longer matches its record', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'facerec-graphs-'));
  const file = path.join(dir, 'onnx', 'net-0123-v1.onnx');
  const graph = Uint8Array.from({ length: 4096 }, (_, i) => i % 251);
  let builds = 0;
  const build = () => {
    builds++;
    return graph;
  };
  const first = await cachedOnnxFile(file, 'w'.repeat(64), build);
  expect([first.built, builds]).toEqual([true, 1]);
  const sha256 = createHash('sha256').update(graph).digest('hex');
  expect(readFileSync(`${file}.sha256`, 'utf8')).toBe(`${sha256} 4096\n`);
  // A hit: the session reads the file itself.
  const hit = await cachedOnnxFile(file, 'w'.repeat(64), build);
  expect([hit.built, hit.bytes, builds]).toEqual([false, undefined, 1]);

  // Damaged on disk: built again, whole.
  truncateSync(file, 1000);
  const repaired = await cachedOnnxFile(file, 'w'.repeat(64), build);
  expect([repaired.built, builds]).toEqual([true, 2]);
  expect(readFileSync(file)).toEqual(Buffer.from(graph));

  // Damaged in place, the size unchanged (one flipped byte in a weight gave all-zero embeddings): the hash
  // is checked, and it is built again.
  const flipped = Buffer.from(graph);
  flipped[2000] = flipped[2000]! ^ 0x40;
  writeFileSync(file, flipped);
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on('warning', onWarning);
  const rehashed = await cachedOnnxFile(file, 'w'.repeat(64), build).finally(() =>
    // Warnings are emitted on the next tick.
    new Promise((resolve) => setImmediate(resolve)).then(() => process.off('warning', onWarning)),
  );
  expect([rehashed.built, builds]).toEqual([true, 3]);
  // Said, not only repaired.
  expect(warnings.map((w) => [(w as { code?: string }).code, w.message])).toEqual([
    [
      'FACEREC_GRAPH_DAMAGED',
      `net-0123-v1.onnx in the model cache ${path.dirname(file)} is damaged (its sha256 is not the one it was built with): building it again`,
    ],
  ]);
  expect(readFileSync(file)).toEqual(Buffer.from(graph));

  // A graph without a readable record (cached before records existed, or its record lost) cannot be checked:
  // in a cache that can be written it is built again (a damaged one would otherwise fail for good).
  writeFileSync(`${file}.sha256`, '');
  writeFileSync(file, flipped);
  const unrecorded = await cachedOnnxFile(file, 'w'.repeat(64), build);
  expect([unrecorded.built, builds]).toEqual([true, 4]);
  expect(readFileSync(`${file}.sha256`, 'utf8')).toBe(`${sha256} 4096\n`);

  // A folder where the graph belongs is named (the rename over it failed with a bare EISDIR).
  const folder = path.join(dir, 'onnx', 'other-0123-v1.onnx');
  mkdirSync(folder);
  await expect(cachedOnnxFile(folder, 'w'.repeat(64), build)).rejects.toThrow(
    `a folder is where a file of the model cache belongs (${folder}): remove it`,
  );
  // So is one where its record belongs.
  rmSync(`${file}.sha256`);
  mkdirSync(`${file}.sha256`);
  await expect(cachedOnnxFile(file, 'w'.repeat(64), build)).rejects.toThrow(
    `a folder is where a file of the model cache belongs (${file}.sha256): remove it`,
  );
  rmSync(`${file}.sha256`, { recursive: true });

  // Temporaries of a build killed an hour ago or more are swept; a recent one (a build running now) is not.
  const stale = `${file}.4242.0123456789ab.tmp`;
  const recent = `${file}.4243.0123456789ab.tmp`;
  writeFileSync(stale, 'partial');
  writeFileSync(recent, 'partial');
  const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
  utimesSync(stale, twoHoursAgo, twoHoursAgo);
  await cachedOnnxFile(file, 'w'.repeat(64), build);
  expect([existsSync(stale), existsSync(recent)]).toEqual([false, true]);
});

it('says how to recover from a cached checkpoint that is not one (trusted on first use from a bad source)', async () => {
  const cache = await mkdtemp(path.join(os.tmpdir(), 'facerec-graphs-'));
  dir = cache;
  const weights = path.join(cache, 'model.pt');
  writeFileSync(weights, Buffer.from('this is not a checkpoint at all'));
  const load = () =>
    cachedGraph(cache, 'net', { path: weights, sha256: 'a'.repeat(64) }, () => {
      throw new Error('not reached');
    }).catch((e: unknown) => e);
  // Its hash recorded on first use (what the store does for a model whose manifest entry has no hash).
  const record = { model: 'net', sha256: 'a'.repeat(64), size: 31, source: 'https://example.test/model.pt' };
  writeFileSync(
    path.join(dir, 'hashes.json'),
    JSON.stringify({
      version: 1,
      files: { 'model.pt': { ...record, recordedAt: new Date().toISOString() } },
    }),
  );
  const error = await load();
  expect(CheckpointError.isInstance(error)).toBe(true);
  expect((error as Error).message).toContain(
    `(it is in the model cache: if a mirror or a download served the wrong file, delete it and its entry in ${path.join(dir, 'hashes.json')}, then pull again)`,
  );
  // No hash recorded: a file the manifest's hash vouched for, another network's (`--checkpoint <cache>/pnet.pt`).
  rmSync(path.join(dir, 'hashes.json'));
  expect(((await load()) as Error).message).toMatch(
    /\(it is the model cache's model\.pt: another network's checkpoint\? give this network's\)$/,
  );
});
