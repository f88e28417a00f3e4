// `npm run lambda-tree -- --out DIR --gallery FILE [--provider onnx] [--embedder ID] [--weights W] [--arch x64]
//    (the embedder: the one named, else the one the gallery was enrolled with)
//    [--precision int8 [--calibration DIR]]`
//
// Builds the Lambda task directory: exactly what the container image holds under LAMBDA_TASK_ROOT. The
// Dockerfile runs this script and copies its output, so the image and a tree built here without Docker are
// the same thing, and CI runs the handlers from the tree (test/lambda-tree.test.ts).
//
// What the tree holds:
// - `packages/<runtime package>/{package.json,dist}` for the packages the handlers load (never the CLI, the
//   CDK construct or the examples), and `models/` (the model manifest);
// - `node_modules/`: their production dependencies only, at the versions of the repository's lockfile, with
//   native binaries for linux/<arch> only (npm's `--os`/`--cpu`; onnxruntime-node ships every platform in
//   one package, so the others are deleted);
// - `facerec/models/`: every model the detector and the embedder need, pulled (sha256-checked) and converted
//   by the provider ahead of time (`facerec models prepare`), because the functions cannot write there; with
//   `--precision int8`, the embedder's int8 graph too, calibrated on the images of `--calibration`, or without
//   it on the int8 ranges that ship for the embedder's weights (faceapi-resnet; the registry's int8Calibration);
// - `facerec/calibration/`: with `--calibration`, those images (png/jpeg/webp, folders kept), which key the
//   int8 graph in the cache (the functions read their names and bytes, never decode them);
// - `facerec/gallery.json`: the gallery, after checking that it was enrolled with the embedder the functions
//   run (with a gallery in S3, FACEREC_GALLERY=s3://…, it is the embedder check and the seed to upload).
//
// Requires a built workspace (`npm run build`) and the npm registry (or an npm cache) for the dependencies;
// models come from FACEREC_MODELS_MIRROR when set, else over HTTPS.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  assertGalleryFitsEmbedder,
  type GalleryFileSummary,
  MODELS,
  type ResolvedEmbedder,
  readGallerySummary,
} from '@facerec/framework/registry';
import { isCalibrationImage } from '@facerec/provider-onnx';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Where the handlers find their models and gallery, relative to the task root (the Dockerfile's ENV). */
export const TREE_MODELS_DIR = 'facerec/models';
export const TREE_GALLERY = 'facerec/gallery.json';
export const TREE_CALIBRATION_DIR = 'facerec/calibration';

/** Workspaces every tree holds, plus the chosen provider's. */
const BASE_WORKSPACES = [
  'models',
  'packages/framework',
  'packages/transport-memory',
  'packages/transport-sqs',
  // FACEREC_GALLERY=s3://… (a gallery that changes without a redeploy; the construct's galleryBucket).
  'packages/gallery-s3',
  'packages/lambda-runtime',
];
/** Per provider: its workspace and the peer dependencies it runs with on Lambda (versions from the lockfile). */
const PROVIDERS: Record<string, { workspace: string; peers: string[] }> = {
  onnx: { workspace: 'packages/provider-onnx', peers: ['onnxruntime-node'] },
  tfjs: {
    workspace: 'packages/provider-tfjs',
    peers: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-cpu', '@tensorflow/tfjs-backend-wasm'],
  },
};
/**
 * The handlers' own peer dependencies: the SQS transport's client, DynamoDB's for the shared idempotency
 * table (the construct always configures one) and S3's for a gallery in S3.
 */
const RUNTIME_PEERS = ['@aws-sdk/client-sqs', '@aws-sdk/client-dynamodb', '@aws-sdk/client-s3'];
const ARCHES = ['x64', 'arm64'];

function usage(message: string): never {
  process.stderr.write(
    `lambda-tree: ${message}\n` +
      "usage: npm run lambda-tree -- --out DIR --gallery FILE [--provider onnx|tfjs] [--embedder ID (default: the gallery's)] " +
      '[--weights W] [--arch x64|arm64] [--precision fp32|int8 [--calibration DIR]]\n',
  );
  process.exit(2);
}

function run(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: 'inherit',
  });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    process.stderr.write(`lambda-tree: ${command} ${args.join(' ')} failed (exit ${result.status})\n`);
    process.exit(1);
  }
}

function main(): void {
  const { values } = (() => {
    try {
      return parseArgs({
        options: {
          out: { type: 'string' },
          gallery: { type: 'string' },
          provider: { type: 'string', default: MODELS.defaults.provider },
          embedder: { type: 'string' },
          weights: { type: 'string' },
          arch: { type: 'string', default: 'x64' },
          precision: { type: 'string', default: 'fp32' },
          calibration: { type: 'string' },
        },
        strict: true,
        allowPositionals: false,
      });
    } catch (error) {
      usage((error as Error).message);
    }
  })();
  if (!values.out) usage('--out is required');
  if (!values.gallery) usage('--gallery is required (the recognition function cannot start without one)');
  const provider = PROVIDERS[values.provider];
  if (!provider || !MODELS.providerNames.includes(values.provider)) {
    usage(`--provider ${JSON.stringify(values.provider)} is not one of ${Object.keys(PROVIDERS).join(', ')}`);
  }
  if (!ARCHES.includes(values.arch))
    usage(`--arch ${JSON.stringify(values.arch)} is not one of ${ARCHES.join(', ')}`);
  if (values.precision !== 'fp32' && values.precision !== 'int8')
    usage(`--precision ${JSON.stringify(values.precision)} is not one of fp32, int8`);
  const int8 = values.precision === 'int8';
  if (int8 && values.provider !== 'onnx') usage('--precision int8 needs --provider onnx');
  if (!int8 && values.calibration) usage('--calibration is for --precision int8 only');
  const calibrationDir = values.calibration ? path.resolve(values.calibration) : undefined;
  if (calibrationDir && !existsSync(calibrationDir)) usage(`calibration folder not found: ${calibrationDir}`);
  if (
    calibrationDir &&
    !readdirSync(calibrationDir, { recursive: true }).some((f) => isCalibrationImage(String(f)))
  )
    usage(`calibration folder ${calibrationDir} holds no png/jpeg/webp image`);
  const galleryFile = path.resolve(values.gallery);
  if (!existsSync(galleryFile))
    usage(`gallery not found: ${galleryFile} (enroll one: facerec enroll … --out FILE)`);
  let gallery: GalleryFileSummary;
  try {
    gallery = readGallerySummary(readFileSync(galleryFile, 'utf8'), galleryFile);
  } catch (error) {
    usage(`gallery ${galleryFile}: ${(error as Error).message}`);
  }
  // The embedder: the one named, else the gallery's (as the construct and `facerec serve` choose it).
  let embedder: ResolvedEmbedder;
  try {
    const named = values.embedder;
    const { description, settings } =
      named === undefined
        ? MODELS.embedderForModelId(gallery.embedder.modelId, { weights: values.weights })
        : MODELS.resolveEmbedder(named, { weights: values.weights });
    embedder = MODELS.resolveEmbedder(description.id, settings, int8 ? { precision: 'int8' } : {});
  } catch (error) {
    usage(`--embedder/--weights: ${(error as Error).message}`);
  }
  if (int8 && !values.calibration && embedder.description.int8Calibration === undefined)
    usage(
      `--precision int8 needs --calibration DIR for ${embedder.description.id} (no int8 ranges ship for it): ` +
        'a few dozen face images of the kind the embedder will see',
    );
  try {
    assertGalleryFitsEmbedder(gallery, embedder);
  } catch (error) {
    usage(`gallery ${galleryFile}: ${(error as Error).message}`);
  }
  const embedderId = embedder.description.modelId(embedder.options);
  for (const workspace of [...BASE_WORKSPACES, provider.workspace, 'packages/cli']) {
    if (workspace !== 'models' && !existsSync(path.join(root, workspace, 'dist'))) {
      usage(`${workspace}/dist is missing: run \`npm run build\` first`);
    }
  }

  // npm 10 (the Node 22 images' own) keeps the lockfile's optional peers in the install below: vitest, vite,
  // tsx, pg, … — a tree 60 MB larger with the dev tools in it. The Dockerfile installs a pinned npm 11.
  const npmVersion = spawnSync('npm', ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
  const npmMajor = Number.parseInt(npmVersion, 10);
  if (!(npmMajor >= 11))
    usage(
      `needs npm 11 or later (found ${npmVersion || 'none'}): npm 10 installs the lockfile's optional peers ` +
        '(vitest, vite, tsx, pg, …) into the tree; `npm install -g npm@11` first',
    );

  const out = path.resolve(values.out);
  if (existsSync(out) && readdirSync(out).length > 0) rmSync(out, { recursive: true });
  mkdirSync(out, { recursive: true });
  const started = Date.now();

  // 1. The runtime packages, as npm would publish them (package.json + dist, no sources or tests).
  const workspaces = [...BASE_WORKSPACES, provider.workspace];
  for (const workspace of workspaces) {
    const from = path.join(root, workspace);
    const to = path.join(out, workspace);
    mkdirSync(to, { recursive: true });
    for (const entry of ['package.json', 'LICENSE', 'dist', 'manifest.json']) {
      if (!existsSync(path.join(from, entry))) continue;
      cpSync(path.join(from, entry), path.join(to, entry), {
        recursive: true,
        filter: (source) => !/\.test\.|\.tsbuildinfo$|__fixtures__/.test(source),
      });
    }
  }

  // 2. Their production dependencies. A root manifest naming only these workspaces (and the peers the
  // handlers run with, at the lockfile's versions), installed against the repository's lockfile: npm keeps
  // the locked version of everything that remains and drops the rest (dev tools, the CDK, other providers).
  const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string }>;
  };
  const locked = (name: string) => {
    const version = lock.packages[`node_modules/${name}`]?.version;
    if (!version) throw new Error(`${name} is not in package-lock.json`);
    return version;
  };
  const dependencies = Object.fromEntries(
    [...RUNTIME_PEERS, ...provider.peers].map((name) => [name, locked(name)]),
  );
  writeFileSync(
    path.join(out, 'package.json'),
    `${JSON.stringify({ name: 'facerec-lambda-task', private: true, workspaces, dependencies }, null, 2)}\n`,
  );
  cpSync(path.join(root, 'package-lock.json'), path.join(out, 'package-lock.json'));
  run(
    'npm',
    [
      'install',
      '--omit=dev',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--os=linux',
      `--cpu=${values.arch}`,
      '--libc=glibc',
    ],
    // onnxruntime-node's install script only fetches GPU extras; --ignore-scripts skips it anyway.
    {
      cwd: out,
      env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_update_notifier: 'false' },
    },
  );
  rmSync(path.join(out, 'package-lock.json'));
  // What a newer npm might keep as npm 10 does: none of the repository's own dev tools (its devDependencies
  // that its lockfile marks as needed for development only: vitest, vite, tsx, …) belongs in a function.
  const lockFlags = lock.packages as Record<string, { dev?: boolean; devOptional?: boolean }>;
  const devTools = Object.keys(
    (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { devDependencies?: object })
      .devDependencies ?? {},
  ).filter(
    (name) => lockFlags[`node_modules/${name}`]?.dev || lockFlags[`node_modules/${name}`]?.devOptional,
  );
  const devOnly = devTools.filter(
    (name) => !(name in dependencies) && existsSync(path.join(out, 'node_modules', name)),
  );
  if (devOnly.length > 0) {
    process.stderr.write(
      `lambda-tree: npm ${npmVersion} installed development packages into the tree (${devOnly.join(', ')}): ` +
        'build it with the npm the Dockerfile pins\n',
    );
    process.exit(1);
  }
  // onnxruntime-node ships every platform's library in one package (~290 MB); keep linux/<arch> (~30 MB).
  const ortBin = path.join(out, 'node_modules/onnxruntime-node/bin');
  if (existsSync(ortBin)) {
    for (const napi of readdirSync(ortBin)) {
      for (const platform of readdirSync(path.join(ortBin, napi))) {
        const dir = path.join(ortBin, napi, platform);
        if (platform !== 'linux') rmSync(dir, { recursive: true });
        else
          for (const arch of readdirSync(dir))
            if (arch !== values.arch) rmSync(path.join(dir, arch), { recursive: true });
      }
    }
  }

  // 3. Models, converted ahead of time into the read-only model folder, by the repository's CLI (it is not
  // part of the tree: the functions never pull or convert).
  const modelsDir = path.join(out, TREE_MODELS_DIR);
  mkdirSync(modelsDir, { recursive: true });
  // int8: the calibration images first, so that the graph is keyed by the very files the functions read.
  const treeCalibration = path.join(out, TREE_CALIBRATION_DIR);
  if (calibrationDir) {
    cpSync(calibrationDir, treeCalibration, {
      recursive: true,
      dereference: true,
      filter: (source) => statSync(source).isDirectory() || isCalibrationImage(source),
    });
  }
  run(
    process.execPath,
    [
      path.join(root, 'packages/cli/dist/bin.js'),
      'models',
      'prepare',
      '--provider',
      values.provider,
      '--embedder',
      embedder.description.id,
      ...(embedder.settings.weights ? ['--weights', embedder.settings.weights] : []),
      ...(int8 ? ['--precision', 'int8'] : []),
    ],
    {
      cwd: root,
      env: {
        ...process.env,
        FACEREC_CACHE_DIR: modelsDir,
        // Empty: the shipped ranges, whatever the calling shell sets (as the image's ENV leaves it).
        FACEREC_CALIBRATION_DIR: calibrationDir ? treeCalibration : '',
      },
    },
  );

  // 4. The gallery (checked above).
  cpSync(galleryFile, path.join(out, TREE_GALLERY));
  // Lambda runs the handlers as a user other than the files' owner (root, in the image): a gallery or
  // calibration photo copied with its private mode (a new gallery is 0600) would be unreadable there.
  makeReadableByAll(out);

  process.stdout.write(
    `lambda-tree: ${out} (${values.provider}, ${embedderId}${int8 ? ', int8' : ''}, linux/${values.arch}): ` +
      `${(treeBytes(out) / 1e6).toFixed(1)} MB in ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
}

/** Adds read permission for everyone (and search, on folders) to everything under `dir`; links are left. */
export function makeReadableByAll(dir: string): void {
  chmodSync(dir, statSync(dir).mode | 0o555);
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isSymbolicLink()) continue;
    const file = path.join(entry.parentPath, entry.name);
    chmodSync(file, statSync(file).mode | (entry.isDirectory() ? 0o555 : 0o444));
  }
}

/** Bytes of the regular files under `dir` (symbolic links, e.g. node_modules/@facerec/*, not followed). */
export function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += statSync(path.join(entry.parentPath, entry.name)).size;
  }
  return total;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
