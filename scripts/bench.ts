// `npm run bench [-- <suite> [--flag ...] ...]`: runs each benchmark in its own process (so peak-memory figures
// are per suite) and prints their figures. Suites are the scripts/bench-<suite>.ts files; flags after a suite's
// name go to that suite (`npm run bench -- embed --precision`). `npm run bench -- --help` lists them.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedDir } from './bench-common.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** A suite's flag: what it does, and the value it takes (`--sizes 1000,10000` or `--sizes=1000,10000`), if any. */
interface Flag {
  readonly does: string;
  readonly value?: string;
}

/** Each suite, what it measures, and the flags it takes (checked here, before any suite runs). */
const SUITES: Readonly<Record<string, { what: string; flags?: Readonly<Record<string, Flag>> }>> = {
  mtcnn: { what: 'MTCNN detection + crops per 1280-px frame, model load cold and warm, int8 R-Net/O-Net' },
  embed: {
    what: 'embedders per face at batch 1 and 8, peak memory; then int8 against fp32',
    flags: { '--precision': { does: 'the int8 against fp32 part only' } },
  },
  tfjs: {
    what: 'the tfjs provider (wasm, cpu) beside onnx: detection per frame, InceptionResnetV1 per face',
  },
  match: {
    what: 'gallery matching per query by gallery size',
    flags: { '--quick': { does: 'the smaller sizes only' } },
  },
  gallery: {
    what: 'gallery stores (file, Postgres, S3) at scale: search, recall',
    flags: {
      '--sizes': { value: 'N,N', does: 'identities (default 10000,100000)' },
      '--dims': { value: 'D,D', does: 'embedding dimensions (default 512,128)' },
      '--queries': { value: 'N', does: 'queries per size (default 200)' },
      '--ef': { value: 'N,N', does: 'HNSW ef_search values (default 40,100,200,400)' },
      '--m': { value: 'N', does: 'HNSW m' },
      '--ef-construction': { value: 'N', does: 'HNSW ef_construction' },
      '--no-postgres': { does: 'leave out Postgres' },
      '--no-file': { does: 'leave out the file store' },
      '--s3': { does: 'add the S3 store (local s3rver)' },
    },
  },
  coldstart: { what: "each Lambda entry's time from process start to first answer (a built Lambda tree)" },
  compare: { what: 'facerec beside facenet-pytorch in one run (skips with a notice without torch)' },
  crops: {
    what: 'recognition quality per embedder and crop policy (the README\'s "Recognition" table)',
    flags: { '--embedder': { value: 'ID', does: 'that embedder only (repeatable)' } },
  },
  serve: { what: '`facerec serve` driven open loop at fixed rates: sustained req/s and latency' },
};

const ENVIRONMENT: Readonly<Record<string, string>> = {
  FACEREC_BENCH_ROUNDS:
    'timed rounds (mtcnn 5, embed 12 (at least 10), tfjs 3, compare 4 (at least 2), coldstart 3)',
  FACEREC_THREADS: 'onnxruntime intra-op threads (default: the cores available)',
  FACEREC_BENCH_RUNTIMES: 'tfjs: which of wasm, cpu, onnx (default all three)',
  FACEREC_BENCH_RATES: 'serve: requests per second, comma-separated (default 60,100,125)',
  FACEREC_BENCH_SECONDS: 'serve: seconds per rate (default 20)',
  FACEREC_BENCH_SERVE_ARGS: 'serve: flags for facerec serve (default "--queue memory")',
  FACEREC_LAMBDA_TREE: 'coldstart: a built Lambda tree to use (default: builds one)',
  'FACEREC_PYTHON, FACENET_PYTORCH_DIR': 'compare: python3 with torch, and a facenet-pytorch checkout',
  FACEREC_SHARED_DIR: 'the shared data (default ../shared beside the repository)',
};

function help(): string {
  const width = Math.max(...Object.keys(SUITES).map((s) => s.length));
  const lines = [
    'npm run bench [-- <suite> [--flag ...] ...]   (no suite: all of them, one process each)',
    '',
    'suites:',
    ...Object.entries(SUITES).flatMap(([name, { what, flags }]) => [
      `  ${name.padEnd(width)}  ${what}`,
      ...Object.entries(flags ?? {}).map(
        ([flag, { value, does }]) => `  ${' '.repeat(width)}    ${flag}${value ? ` ${value}` : ''}: ${does}`,
      ),
    ]),
    '',
    'environment:',
    ...Object.entries(ENVIRONMENT).map(([name, does]) => `  ${name}: ${does}`),
  ];
  return lines.join('\n');
}

/** The suites asked for, each with its flags; every name and flag checked before anything runs. */
function parse(args: readonly string[]): { suite: string; flags: string[] }[] {
  const runs: { suite: string; flags: string[] }[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      if (!(arg in SUITES) || !existsSync(path.join(here, `bench-${arg}.ts`)))
        throw new Error(`unknown suite "${arg.slice(0, 40)}"; suites: ${Object.keys(SUITES).join(', ')}`);
      runs.push({ suite: arg, flags: [] });
      continue;
    }
    const current = runs.at(-1);
    if (!current)
      throw new Error(
        `"${arg.slice(0, 40)}" before any suite: flags follow the suite they are for (npm run bench -- embed --precision)`,
      );
    const flags = SUITES[current.suite]!.flags ?? {};
    const [name, inline] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    const flag = flags[name];
    if (!flag)
      throw new Error(
        `${current.suite} takes ${Object.keys(flags).length ? `only ${Object.keys(flags).join(', ')}` : 'no flags'}, not "${name.slice(0, 40)}"`,
      );
    if (flag.value === undefined) {
      if (inline !== undefined) throw new Error(`${name} takes no value`);
      current.flags.push(name);
    } else {
      const value = inline ?? args[++i];
      if (value === undefined || value.startsWith('--'))
        throw new Error(`${name} needs a value (${flag.value})`);
      current.flags.push(name, value);
    }
  }
  return runs;
}

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(help());
  process.exit(0);
}
let runs: { suite: string; flags: string[] }[];
try {
  runs = args.length
    ? parse(args)
    : Object.keys(SUITES)
        .filter((s) => existsSync(path.join(here, `bench-${s}.ts`)))
        .map((suite) => ({ suite, flags: [] }));
} catch (error) {
  console.error(`${(error as Error).message} (npm run bench -- --help)`);
  process.exit(2);
}
console.log(
  `facerec benchmarks — node ${process.version}, ${availableParallelism()} cores, shared data ${sharedDir}`,
);
let failed = 0;
for (const { suite, flags } of runs) {
  console.log('');
  const script = path.join(here, `bench-${suite}.ts`);
  const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, ...flags], {
    stdio: 'inherit',
  });
  if (result.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
