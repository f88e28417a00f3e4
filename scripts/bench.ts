// `npm run bench [-- <suite...>]`: runs each benchmark in its own process (so peak-memory figures are per
// suite) and prints their figures. Suites are the scripts/bench-<suite>.ts files.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedDir } from './bench-common.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const known = ['mtcnn', 'embed', 'tfjs', 'match', 'gallery', 'coldstart', 'compare', 'crops', 'serve'];
const requested = process.argv.slice(2);
const suites = requested.length
  ? requested
  : known.filter((s) => existsSync(path.join(here, `bench-${s}.ts`)));
console.log(
  `facerec benchmarks — node ${process.version}, ${availableParallelism()} cores, shared data ${sharedDir}`,
);
let failed = 0;
for (const suite of suites) {
  const script = path.join(here, `bench-${suite}.ts`);
  if (!existsSync(script)) {
    console.error(`unknown suite "${suite}"; suites: ${known.join(', ')}`);
    process.exit(2);
  }
  console.log('');
  const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script], {
    stdio: 'inherit',
  });
  if (result.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
