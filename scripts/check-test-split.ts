// `npm run test:check-split`: every test file in the repository belongs to exactly one of the two vitest
// projects, `unit` (`npm test`) and `parity` (`npm run test:parity`), and every file named in PARITY_FILES
// exists. Asks vitest itself which files each project runs, so the check follows vitest's own globbing.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PARITY_FILES } from '../vitest.config.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PROJECTS = ['unit', 'parity'] as const;
const SKIPPED_DIRS = new Set(['node_modules', 'dist', '.git', 'cdk.out', 'coverage']);
const TEST_FILE = /\.(test|spec)\.[cm]?[jt]sx?$/;

function testFilesOnDisk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIPPED_DIRS.has(entry.name)) testFilesOnDisk(path.join(dir, entry.name), out);
    } else if (TEST_FILE.test(entry.name)) {
      out.push(path.relative(root, path.join(dir, entry.name)));
    }
  }
  return out;
}

function filesByProject(): Map<string, string[]> {
  const work = mkdtempSync(path.join(tmpdir(), 'facerec-test-split-'));
  try {
    const report = path.join(work, 'list.json');
    const manifest = createRequire(import.meta.url).resolve('vitest/package.json');
    const bin = (JSON.parse(readFileSync(manifest, 'utf8')) as { bin: { vitest: string } }).bin.vitest;
    const vitest = path.join(path.dirname(manifest), bin);
    const run = spawnSync(process.execPath, [vitest, 'list', '--filesOnly', `--json=${report}`], {
      cwd: root,
      encoding: 'utf8',
    });
    if (run.status !== 0 || !existsSync(report)) {
      throw new Error(`vitest list failed (exit ${run.status}):\n${run.stderr}`);
    }
    const listed = JSON.parse(readFileSync(report, 'utf8')) as { file: string; projectName?: string }[];
    const projects = new Map<string, string[]>();
    for (const { file, projectName } of listed) {
      const relative = path.relative(root, file);
      projects.set(relative, [...(projects.get(relative) ?? []), projectName ?? '(none)']);
    }
    return projects;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const problems: string[] = [];
for (const file of PARITY_FILES) {
  if (!existsSync(path.join(root, file))) problems.push(`${file}: listed in PARITY_FILES but does not exist`);
}
const projects = filesByProject();
const onDisk = testFilesOnDisk(root).sort();
for (const file of onDisk) {
  const inProjects = projects.get(file) ?? [];
  if (inProjects.length === 0) problems.push(`${file}: in neither project (${PROJECTS.join(', ')})`);
  if (inProjects.length > 1) problems.push(`${file}: in several projects (${inProjects.join(', ')})`);
  for (const name of inProjects) {
    if (!(PROJECTS as readonly string[]).includes(name))
      problems.push(`${file}: in unknown project "${name}"`);
  }
}
for (const file of projects.keys()) {
  if (!onDisk.includes(file)) problems.push(`${file}: run by vitest but not found by this check's walk`);
}

const count = (name: string) => [...projects.values()].filter((p) => p.includes(name)).length;
if (problems.length) {
  console.error(`Test split: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  console.error('Add the file to PARITY_FILES in vitest.config.ts, or move it under an included folder.');
  process.exit(1);
}
console.log(
  `Test split: ${onDisk.length} test files, ${PROJECTS.map((p) => `${count(p)} ${p}`).join(', ')}; each in exactly one.`,
);
