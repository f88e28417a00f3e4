/**
 * Gallery stores at scale, on synthetic identities (one unit vector each): for each size and dimension,
 *
 * - file store: file size, time to write it, load time (parse + index, what a Lambda init pays for a file or
 *   S3 gallery, less the download), the memory it holds, exact top-5 query latency, and the time an example
 *   added or removed takes (the file rewritten) with the longest the event loop is held meanwhile, and the time
 *   a store takes to read another writer's change, with the longest it holds the event loop for it;
 * - S3 gallery: `S3GalleryStore.open` against a local s3rver (download + parse), when `--s3` is given;
 * - PostgreSQL + pgvector (PGlite, Postgres compiled to WebAssembly, over pglite-socket and `pg`): table and HNSW
 *   index size, index build time, exact query latency, HNSW latency and recall@1 against exact search at a few
 *   `ef_search` values.
 *
 * Queries are enrolled vectors plus Gaussian noise (a probe near its identity, as a face is: own distance
 * ≈ 0.6 Euclidean, strangers ≈ 1.41), so recall@1 asks whether HNSW finds the identity exact search finds.
 * PGlite runs single-threaded in WebAssembly: its latencies are an upper bound, not a Postgres server's.
 *
 *   npx tsx scripts/bench-gallery.ts [--sizes 10000,100000] [--dims 512,128] [--queries 200] [--ef 40,100,200,400]
 *     [--m 16] [--ef-construction 64] [--no-postgres] [--no-file] [--s3]
 *
 * The file format is one JSON text: V8 strings stop at 2^29 − 24 characters (~512 MiB), so a file gallery holds at
 * most ~190,000 × 512-d or ~700,000 × 128-d examples; `--no-file` measures only Postgres (1,000,000 identities).
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import {
  embedderInfo,
  jitter,
  prng,
  randomUnit,
} from '../packages/framework/src/gallery/__fixtures__/synthetic.js';
import { FileGalleryStore } from '../packages/framework/src/gallery/file-store.js';
import { FileGallery } from '../packages/framework/src/gallery/gallery.js';
import { hnswIndexName, PostgresGalleryStore } from '../packages/gallery-postgres/src/index.js';
import { startPgliteServer } from '../packages/gallery-postgres/test/pglite-server.js';
import { S3GalleryStore } from '../packages/gallery-s3/src/index.js';
import { startLocalS3, TEST_BUCKET } from '../packages/gallery-s3/test/s3rver.js';
import { quantile } from './bench-common.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000' },
    dims: { type: 'string', default: '512,128' },
    queries: { type: 'string', default: '200' },
    ef: { type: 'string', default: '40,100,200,400' },
    m: { type: 'string' },
    'ef-construction': { type: 'string' },
    'no-postgres': { type: 'boolean', default: false },
    'no-file': { type: 'boolean', default: false },
    s3: { type: 'boolean', default: false },
  },
});
// The S3 figure is the load of the file gallery the file rows write: without them there is nothing to upload.
if (values.s3 && values['no-file']) {
  console.error(
    'bench gallery: --s3 measures loading the file gallery from S3, which --no-file leaves out; drop one',
  );
  process.exit(2);
}
const sizes = values.sizes.split(',').map(Number);
const dims = values.dims.split(',').map(Number);
const queryCount = Number(values.queries);
const efs = values.ef.split(',').map(Number);

/** `count` identities uniform on the sphere, and `queries` probes: an identity's vector plus noise. */
function synthetic(count: number, dim: number, queries: number) {
  const rand = prng(count * 7 + dim);
  const vectors = Array.from({ length: count }, () => randomUnit(dim, rand));
  // Noise of norm ≈ 0.65 per probe: own distance ≈ 0.6 after normalising.
  const probes = Array.from({ length: queries }, (_, i) => {
    const of = (i * 7919) % count;
    return { of, vector: jitter(vectors[of]!, 0.65 / Math.sqrt(dim), rand) };
  });
  return { vectors, probes };
}

/**
 * Bytes the process holds (JS heap + memory outside it: buffers, WebAssembly memory) after a full collection,
 * so that the difference around a load is what the loaded gallery keeps. Needs --expose-gc (`npm run bench`
 * passes it); without it the figure includes garbage.
 */
async function retained(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Freed WebAssembly memories and buffers are released by callbacks after the collection: twice, a turn apart.
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const lat = (samples: number[]) =>
  `${quantile(samples, 0.5).toFixed(2)} / ${quantile(samples, 0.95).toFixed(2)} ms`;

async function timeQueries(match: (q: Float32Array) => Promise<string>, probes: { vector: Float32Array }[]) {
  const samples: number[] = [];
  const answers: string[] = [];
  for (const { vector } of probes) {
    const t = performance.now();
    answers.push(await match(vector));
    samples.push(performance.now() - t);
  }
  return { samples, answers };
}

/**
 * A `FileGalleryStore` taking changes as `gallery add` / `gallery remove` or the collections API make them: five
 * adds of one example to a new identity, each removed again, timed whole (file written), with the longest the
 * event loop was held meanwhile (what requests being answered by the same process wait at most).
 */
async function timeFileChanges(file: string, dim: number) {
  const store = await FileGalleryStore.open(file);
  const rand = prng(dim);
  const add: number[] = [];
  const remove: number[] = [];
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  for (let i = 0; i < 5; i++) {
    let t = performance.now();
    const [added] = await store.add(`bench-change-${i}`, [{ source: '', embedding: randomUnit(dim, rand) }]);
    add.push(performance.now() - t);
    t = performance.now();
    await store.removeExamples([added!.id]);
    remove.push(performance.now() - t);
  }
  // A turn of the loop after the last call, so that a delay at its end is recorded before the monitor stops.
  await new Promise((resolve) => setTimeout(resolve, 50));
  delay.disable();
  // Another process's change (written here before timing): the store reads the new version, as a server does.
  const changed = (await FileGallery.load(file)).withExamples('bench-external', [
    { source: '', embedding: randomUnit(dim, rand) },
  ]);
  await changed.gallery.save(file);
  const reloadDelay = monitorEventLoopDelay({ resolution: 5 });
  reloadDelay.enable();
  const t = performance.now();
  if ((await store.refresh()) !== 'updated') throw new Error('the store did not see the change');
  const reloadMs = performance.now() - t;
  await new Promise((resolve) => setTimeout(resolve, 50));
  reloadDelay.disable();
  await store.close();
  return { add, remove, heldMs: delay.max / 1e6, reloadMs, reloadHeldMs: reloadDelay.max / 1e6 };
}

const rows: Record<string, string>[] = [];
const report = (row: Record<string, string>) => {
  rows.push(row);
  console.log(
    Object.entries(row)
      .map(([k, v]) => `${k}: ${v}`)
      .join(' | '),
  );
};

console.log(
  `node ${process.version}; synthetic identities, one example each; ${queryCount} probes; top-5; latency median / p95`,
);
const work = await mkdtemp(path.join(tmpdir(), 'facerec-bench-gallery-'));
const postgres = values['no-postgres'] ? undefined : await startPgliteServer();
const s3 = values.s3 ? await startLocalS3() : undefined;
try {
  for (const count of sizes) {
    for (const dim of dims) {
      const label = `${count.toLocaleString('en-US')} × ${dim}`;
      const { vectors, probes } = synthetic(count, dim, queryCount);
      const embedder = embedderInfo(dim, { modelId: `bench/synthetic-${dim}`, weightsSha256: undefined });
      const identities = vectors.map((embedding, i) => ({
        name: `id${i}`,
        examples: [{ source: '', embedding }],
      }));

      // File store: write, load (what a Lambda init pays), memory, exact search.
      const file = path.join(work, `g-${count}-${dim}.json`);
      let t = performance.now();
      if (!values['no-file']) {
        t = performance.now();
        const built = FileGallery.create({ embedder, threshold: 1, identities });
        await built.save(file);
        const written = performance.now() - t;
        const before = await retained();
        t = performance.now();
        const loaded = await FileGallery.load(file);
        const loadMs = performance.now() - t;
        const after = await retained();
        const exactFile = await timeQueries(
          async (q) => (await loaded.match([q], { topK: 5 }))[0]!.candidates[0]!.identity,
          probes,
        );
        const fileCorrect =
          exactFile.answers.filter((a, i) => a === `id${probes[i]!.of}`).length / probes.length;
        report({
          gallery: label,
          store: 'file',
          size: mb((await stat(file)).size),
          write: sec(written),
          'load (init)': sec(loadMs),
          'memory held': mb(after - before),
          'exact query': lat(exactFile.samples),
          'top-1 is the probe’s identity': fileCorrect.toFixed(3),
        });
        const changes = await timeFileChanges(file, dim);
        report({
          gallery: label,
          store: 'file (changes)',
          'add one example': lat(changes.add),
          'remove one example': lat(changes.remove),
          'event loop held at most': `${changes.heldMs.toFixed(0)} ms`,
          "another writer's change read": `${sec(changes.reloadMs)}, event loop held at most ${changes.reloadHeldMs.toFixed(0)} ms`,
        });

        if (s3) {
          const key = `bench/${count}-${dim}.json`;
          const client = s3.client();
          await client.send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: key, Body: built.toText() }));
          t = performance.now();
          const remote = await S3GalleryStore.open({ bucket: TEST_BUCKET, key, client, embedder });
          report({ gallery: label, store: 's3 (s3rver)', 'load (init)': sec(performance.now() - t) });
          await remote.close();
        }
      }

      if (postgres) {
        const collection = `bench-${count}-${dim}`;
        const store = await PostgresGalleryStore.open({
          connectionString: postgres.connectionString,
          collection,
          embedder,
          search: 'exact',
          maxConnections: 1,
          hnsw: {
            ...(values.m ? { m: Number(values.m) } : {}),
            ...(values['ef-construction'] ? { efConstruction: Number(values['ef-construction']) } : {}),
          },
        });
        const admin = new pg.Pool({ connectionString: postgres.connectionString, max: 1 });
        try {
          // Bulk load without the index, then build it once (much faster than growing it row by row).
          const index = hnswIndexName(collection);
          const { rows: defs } = await admin.query<{ indexdef: string }>(
            'SELECT indexdef FROM pg_indexes WHERE indexname = $1',
            [index],
          );
          await admin.query(`DROP INDEX ${pg.escapeIdentifier(index)}`);
          t = performance.now();
          for (let i = 0; i < identities.length; i += 5000) {
            await store.addMany(
              identities.slice(i, i + 5000).map((p) => ({ identity: p.name, examples: p.examples })),
            );
          }
          const insertMs = performance.now() - t;
          t = performance.now();
          await admin.query("SET maintenance_work_mem = '512MB'");
          await admin.query(defs[0]!.indexdef);
          const indexMs = performance.now() - t;
          await admin.query('ANALYZE facerec_examples');
          const { rows: sizesRow } = await admin.query<{ table: string; index: string }>(
            'SELECT pg_total_relation_size($1::regclass) AS table, pg_relation_size($2::regclass) AS index',
            ['facerec_examples', index],
          );
          const top1 = async (s: PostgresGalleryStore, q: Float32Array) =>
            (await s.match([q], { topK: 5 }))[0]!.candidates[0]!.identity;
          // Exact search scans everything: fewer probes at large sizes.
          const exactProbes = probes.slice(0, count >= 100_000 ? Math.min(50, probes.length) : probes.length);
          const exact = await timeQueries((q) => top1(store, q), exactProbes);
          const truth = (await Promise.all(probes.map(async (p) => top1(store, p.vector)))) as string[];
          report({
            gallery: label,
            store: 'pgvector exact',
            'insert (bulk)': sec(insertMs),
            'table + indexes': mb(Number(sizesRow[0]!.table)),
            'exact query': lat(exact.samples),
          });
          for (const ef of efs) {
            const hnsw = await PostgresGalleryStore.open({
              connectionString: postgres.connectionString,
              collection,
              embedder,
              search: 'hnsw',
              efSearch: ef,
              maxConnections: 1,
            });
            const plan = await hnsw.explainMatch(probes[0]!.vector, 5);
            const approx = await timeQueries((q) => top1(hnsw, q), probes);
            const recall = approx.answers.filter((a, i) => a === truth[i]).length / probes.length;
            report({
              gallery: label,
              store: `pgvector HNSW ef_search ${ef}`,
              'index build': sec(indexMs),
              'index size': mb(Number(sizesRow[0]!.index)),
              'HNSW query': lat(approx.samples),
              'recall@1 vs exact': recall.toFixed(3),
              'walks the index': plan.includes(`Index Scan using ${index}`) ? 'yes' : 'NO',
            });
            await hnsw.close();
          }
          // Free the space for the next configuration.
          await admin.query('DELETE FROM facerec_collections WHERE name = $1', [collection]);
          await admin.query(`DROP INDEX IF EXISTS ${pg.escapeIdentifier(index)}`);
          await admin.query('VACUUM facerec_examples');
        } finally {
          await admin.end();
          await store.close();
        }
      }
      await rm(file, { force: true });
    }
  }
} finally {
  await postgres?.stop();
  await s3?.stop();
  await rm(work, { recursive: true, force: true });
}
console.log(`\n${rows.length} rows`);
