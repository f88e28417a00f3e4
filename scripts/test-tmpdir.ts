// Vitest global setup: every test run gets its own temporary folder, removed when the run ends. Tests make
// scratch folders with `mkdtemp(os.tmpdir())` (galleries, caches, crops, queue files, CDK assemblies, child
// processes' files); those not removed one by one added up to ~430 MB in /tmp per `npm test`.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'facerec-tests-'));
  // os.tmpdir() reads TMPDIR on POSIX and TEMP/TMP on Windows; the test workers and the processes they start
  // inherit this environment.
  for (const name of process.platform === 'win32' ? ['TEMP', 'TMP'] : ['TMPDIR']) process.env[name] = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
