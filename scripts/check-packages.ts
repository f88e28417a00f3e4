// `npm run check:packages` (after `npm run build`): packs every published workspace the way `npm publish`
// would and checks the tarballs, not the source tree, so a file that `files` leaves out is caught here:
// - publint (--strict: its warnings fail too): package.json fields against the files that ship;
// - attw (--profile esm-only): every export's types resolve for node16 ESM and bundler consumers. The
//   packages are ESM only by design, so the CommonJS resolutions (node10, node16 from CJS) are not checked;
// - this repository's own rules: the root LICENSE ships in every package, no .tsbuildinfo ships, every
//   source map carries its sources (or they ship beside it), the package.json links back to this
//   repository, and engines.node is no lower than what the dependencies it installs declare.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const REPOSITORY_URL = 'git+https://github.com/facerec/facerec.git';

interface Manifest {
  readonly name: string;
  readonly private?: boolean;
  readonly keywords?: readonly string[];
  readonly homepage?: string;
  readonly bugs?: { readonly url?: string };
  readonly repository?: { readonly type?: string; readonly url?: string; readonly directory?: string };
  readonly license?: string;
  readonly engines?: { readonly node?: string };
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly peerDependenciesMeta?: Readonly<Record<string, { readonly optional?: boolean }>>;
}

interface Workspace {
  readonly manifest: Manifest;
  /** Relative to the repository root, e.g. `packages/cli`. */
  readonly location: string;
}

interface PackResult {
  readonly name: string;
  readonly filename: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly files: readonly { readonly path: string }[];
}

interface SourceMap {
  readonly sourceRoot?: string;
  readonly sources: readonly string[];
  readonly sourcesContent?: readonly (string | null)[];
}

function run(command: string, args: readonly string[], options: { readonly capture?: boolean } = {}) {
  const result = spawnSync(command, args, {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: options.capture ? ['ignore', 'pipe', 'inherit'] : 'inherit',
  });
  if (result.error) throw result.error;
  return { status: result.status ?? 1, stdout: result.stdout ?? '' };
}

/** npm's own idea of the workspaces (it expands `examples/*`), less the private ones. */
function publishedWorkspaces(): Workspace[] {
  const { status, stdout } = run('npm', ['query', '.workspace'], { capture: true });
  if (status !== 0) throw new Error(`npm query .workspace failed (exit ${status})`);
  const nodes = JSON.parse(stdout) as (Manifest & { readonly location: string })[];
  return nodes
    .filter((node) => !node.private)
    .map((node) => ({
      location: node.location,
      manifest: JSON.parse(readFileSync(path.join(root, node.location, 'package.json'), 'utf8')) as Manifest,
    }))
    .sort((a, b) => a.location.localeCompare(b.location));
}

function pack(workspaces: readonly Workspace[], destination: string): PackResult[] {
  const args = ['pack', '--json', '--pack-destination', destination];
  for (const { location } of workspaces) args.push('--workspace', location);
  const { status, stdout } = run('npm', args, { capture: true });
  if (status !== 0) throw new Error(`npm pack failed (exit ${status})`);
  // Lifecycle scripts may print before the JSON report.
  return JSON.parse(stdout.slice(stdout.indexOf('['))) as PackResult[];
}

/** The lowest version a `>=x.y.z` range allows, as [major, minor, patch]; undefined for any other form. */
function minimumVersion(range: string | undefined): [number, number, number] | undefined {
  const match = range?.trim().match(/^>=\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/);
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)];
}

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

function installedManifest(name: string): Manifest | undefined {
  const file = path.join(root, 'node_modules', name, 'package.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Manifest) : undefined;
}

/**
 * Every registry package that installing `manifest` installs directly or through the workspace packages it
 * depends on (dependencies and required peers; optional peers are the user's choice), with the workspace
 * package that brings it in.
 */
function installedExternals(
  manifest: Manifest,
  byName: ReadonlyMap<string, Workspace>,
  seen = new Set<string>(),
): Map<string, string> {
  const externals = new Map<string, string>();
  if (seen.has(manifest.name)) return externals;
  seen.add(manifest.name);
  const required = [
    ...Object.keys(manifest.dependencies ?? {}),
    ...Object.keys(manifest.peerDependencies ?? {}).filter(
      (name) => !manifest.peerDependenciesMeta?.[name]?.optional,
    ),
  ];
  for (const name of required) {
    const workspace = byName.get(name);
    if (workspace) {
      for (const [external, via] of installedExternals(workspace.manifest, byName, seen)) {
        if (!externals.has(external)) externals.set(external, via);
      }
    } else if (!externals.has(name)) {
      externals.set(name, manifest.name);
    }
  }
  return externals;
}

function checkManifest(workspace: Workspace, byName: ReadonlyMap<string, Workspace>): string[] {
  const { manifest, location } = workspace;
  const problems: string[] = [];
  if (manifest.license !== 'MIT') problems.push(`package.json: license is ${manifest.license}, not MIT`);
  const { repository } = manifest;
  if (repository?.type !== 'git' || repository.url !== REPOSITORY_URL || repository.directory !== location) {
    problems.push(
      `package.json: repository must be { "type": "git", "url": "${REPOSITORY_URL}", "directory": "${location}" }`,
    );
  }
  if (!manifest.homepage) problems.push('package.json: no homepage');
  if (!manifest.bugs?.url) problems.push('package.json: no bugs.url');
  if (!manifest.keywords?.length) problems.push('package.json: no keywords');

  const declared = manifest.engines?.node;
  const floor = minimumVersion(declared);
  for (const [dependency, via] of installedExternals(manifest, byName)) {
    const needed = installedManifest(dependency)?.engines?.node;
    const neededFloor = minimumVersion(needed);
    if (!neededFloor) continue;
    if (!floor || compareVersions(floor, neededFloor) < 0) {
      problems.push(
        `package.json: engines.node is ${declared ?? 'missing'}, but ${dependency} (through ${via}) needs node ${needed}`,
      );
    }
  }
  return problems;
}

/** Every file under `dir`, relative to it, with forward slashes. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir).flatMap((name) => {
    const relative = prefix ? `${prefix}/${name}` : name;
    return statSync(path.join(dir, name)).isDirectory() ? walk(path.join(dir, name), relative) : [relative];
  });
}

function checkTarball(tarball: string, unpackDir: string, workspace: Workspace, license: string): string[] {
  mkdirSync(unpackDir, { recursive: true });
  const untar = run('tar', ['-xzf', tarball, '-C', unpackDir]);
  if (untar.status !== 0) return [`could not unpack ${tarball}`];
  const packageDir = path.join(unpackDir, 'package');
  const files = new Set(walk(packageDir));
  const problems: string[] = [];

  if (!files.has('LICENSE')) problems.push('tarball: no LICENSE');
  else if (readFileSync(path.join(packageDir, 'LICENSE'), 'utf8') !== license) {
    problems.push('tarball: LICENSE differs from the repository root LICENSE');
  }
  for (const file of files) {
    if (file.endsWith('.tsbuildinfo')) problems.push(`tarball: ${file} ships (build state, not for users)`);
    if (!file.endsWith('.map')) continue;
    const map = JSON.parse(readFileSync(path.join(packageDir, file), 'utf8')) as SourceMap;
    map.sources.forEach((source, i) => {
      const target = path.posix.normalize(
        path.posix.join(path.posix.dirname(file), map.sourceRoot ?? '', source),
      );
      // tsc never deletes the output of a source that was moved or removed, and npm would ship it.
      if (!existsSync(path.join(root, workspace.location, target))) {
        problems.push(
          `tarball: ${file} is stale build output (${workspace.location}/${target} is gone); delete ${workspace.location}/dist and rebuild`,
        );
      } else if (typeof map.sourcesContent?.[i] !== 'string' && !files.has(target)) {
        problems.push(`tarball: ${file} points at ${target}, which is neither inlined nor in the package`);
      }
    });
  }
  return problems;
}

/** As npm pack reports sizes (1 kB = 1000 bytes), right-aligned for the summary. */
function kB(bytes: number): string {
  return `${(bytes / 1000).toFixed(1)} kB`.padStart(9);
}

function bin(name: string): string {
  return path.join(root, 'node_modules', '.bin', name);
}

const workspaces = publishedWorkspaces();
const byName = new Map(workspaces.map((workspace) => [workspace.manifest.name, workspace]));
const license = readFileSync(path.join(root, 'LICENSE'), 'utf8');
const work = mkdtempSync(path.join(tmpdir(), 'facerec-check-packages-'));
const failures = new Map<string, string[]>();
const summary: string[] = [];
try {
  const packed = pack(workspaces, work);
  for (const result of packed) {
    const workspace = byName.get(result.name);
    if (!workspace) throw new Error(`npm pack reported ${result.name}, which is not a published workspace`);
    const tarball = path.join(work, result.filename);
    console.log(`\n-- ${result.name} (${workspace.location})`);
    const problems = [
      ...checkManifest(workspace, byName),
      ...checkTarball(tarball, path.join(work, result.filename.replace(/\.tgz$/, '')), workspace, license),
    ];
    if (run(bin('publint'), ['run', tarball, '--strict']).status !== 0) problems.push('publint failed');
    if (run(bin('attw'), [tarball, '--profile', 'esm-only', '--no-emoji']).status !== 0) {
      problems.push('attw failed');
    }
    for (const problem of problems) console.error(`  ✗ ${problem}`);
    if (problems.length) failures.set(result.name, problems);
    summary.push(
      `  ${problems.length ? '✗' : '✓'} ${result.name.padEnd(28)} ${kB(result.size)} packed, ` +
        `${kB(result.unpackedSize)} unpacked, ${result.files.length} files`,
    );
  }
  const missing = workspaces.filter(
    ({ manifest }) => !packed.some((result) => result.name === manifest.name),
  );
  for (const { manifest } of missing) failures.set(manifest.name, ['npm pack did not pack it']);
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(`\nPackages (${workspaces.length} published workspaces):\n${summary.join('\n')}`);
if (failures.size) {
  console.error(`\n${failures.size} package(s) not publishable as they stand:`);
  for (const [name, problems] of failures) console.error(`  ${name}: ${problems.join('; ')}`);
  process.exit(1);
}
console.log('Every published package passes publint, attw and the repository checks.');
