/**
 * Gallery matching speed: milliseconds per query for exact search over 10,000 and 100,000 identities (one
 * example each), 512-d and 128-d, single queries and batches of 8, for the WebAssembly SIMD kernel and, at
 * 10,000 identities, the plain JS fallback. Target: ≤ 2 ms/query at 10,000 identities.
 *
 *   npx tsx scripts/bench-match.ts [--quick]
 *
 * `--quick` skips the 100,000-identity galleries.
 */
import { FileGallery } from '../packages/framework/src/gallery/gallery.js';
import type { DotKernelName } from '../packages/framework/src/gallery/kernel.js';
import { seededRandom } from '../packages/framework/src/testing/random.js';
import { quantile } from './bench-common.js';

const quick = process.argv.includes('--quick');

function randomVector(dim: number, rand: () => number): Float32Array {
  // Uniform in a cube, normalised by the gallery: not uniform on the sphere, which does not matter for speed.
  return Float32Array.from({ length: dim }, () => rand() * 2 - 1);
}

function makeIdentities(identities: number, dim: number) {
  const rand = seededRandom(identities + dim);
  return Array.from({ length: identities }, (_, i) => ({
    name: `id-${i}`,
    examples: [{ source: `${i}.jpg`, embedding: randomVector(dim, rand) }],
  }));
}

function buildGallery(
  dim: number,
  kernel: DotKernelName,
  identities: ReturnType<typeof makeIdentities>,
): FileGallery {
  return FileGallery.create(
    {
      embedder: {
        modelId: 'bench/synthetic',
        weightsSha256: undefined,
        dimension: dim,
        preprocessing: {
          inputSize: { width: 160, height: 160 },
          layout: 'NCHW',
          channelOrder: 'RGB',
          mean: [127.5, 127.5, 127.5],
          std: [128, 128, 128],
        },
      },
      threshold: 1,
      identities,
    },
    { kernel },
  );
}

/** Median and p95 milliseconds per query over enough repetitions to take about `budgetMs`. */
function time(gallery: FileGallery, batch: number, budgetMs: number): { median: number; p95: number } {
  const rand = seededRandom(batch);
  const queries = Array.from({ length: batch }, () => randomVector(gallery.embedder.dimension, rand));
  for (let i = 0; i < 3; i++) gallery.match(queries, { topK: 5 });
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < 10 || (performance.now() - start < budgetMs && samples.length < 2000)) {
    const t = performance.now();
    gallery.match(queries, { topK: 5 });
    samples.push((performance.now() - t) / batch);
  }
  return { median: quantile(samples, 0.5), p95: quantile(samples, 0.95) };
}

const rows: string[][] = [];
const configs: { identities: number; dim: number; kernel: DotKernelName }[] = [
  { identities: 10_000, dim: 512, kernel: 'wasm' },
  { identities: 10_000, dim: 128, kernel: 'wasm' },
  { identities: 10_000, dim: 512, kernel: 'js' },
  { identities: 10_000, dim: 128, kernel: 'js' },
  ...(quick
    ? []
    : [
        { identities: 100_000, dim: 512, kernel: 'wasm' as const },
        { identities: 100_000, dim: 128, kernel: 'wasm' as const },
      ]),
];

console.log(`node ${process.version}, ${process.arch}; exact search, top-5, ms per query (median / p95)`);
for (const { identities, dim, kernel } of configs) {
  const data = makeIdentities(identities, dim);
  const t0 = performance.now();
  const gallery = buildGallery(dim, kernel, data);
  const built = performance.now() - t0;
  const single = time(gallery, 1, 1500);
  const batch = time(gallery, 8, 1500);
  const verdict = identities === 10_000 ? (single.median <= 2 ? 'ok' : 'OVER 2 ms') : '';
  rows.push([
    identities.toLocaleString('en-US'),
    `${dim}`,
    kernel,
    `${single.median.toFixed(3)} / ${single.p95.toFixed(3)}`,
    `${batch.median.toFixed(3)} / ${batch.p95.toFixed(3)}`,
    `${(built / 1000).toFixed(1)} s`,
    verdict,
  ]);
  console.log(rows.at(-1)!.join('  |  '));
}

const header = [
  'identities',
  'dim',
  'kernel',
  'single query',
  'batch of 8',
  'FileGallery.create',
  '≤ 2 ms @10k',
];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(
  `\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n${rows.map(line).join('\n')}`,
);
