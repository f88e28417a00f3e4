/**
 * `@facerec/cdk` as a user gets it: the packages packed as `npm publish` would (`npm pack`), installed from
 * the tarballs into a scratch CDK app outside the repository (so nothing resolves to the workspace), then
 * synthesized by plain Node, as `cdk synth` runs an app. Three cases: a build from a facerec checkout, a
 * prebuilt image, and neither (synth must fail with a message saying what to pass).
 *
 * Needs the packages built (`npm run build`, as CI does before the tests) and the npm registry or npm's
 * cache for aws-cdk-lib, constructs and the framework's dependencies.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGalleryFor } from './galleries.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const PACKAGES = ['packages/cdk', 'packages/framework', 'models'];
const versionOf = (name: string) =>
  (
    JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

const APP = `
import { readFileSync } from 'node:fs';
import { App, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { FaceRecognitionPipeline, FaceRecognitionPipelineError } from '@facerec/cdk';

const [mode, dir, gallery] = process.argv.slice(2);
const app = new App({ outdir: 'cdk.out-' + mode });
const stack = new Stack(app, 'Faces', { env: { account: '123456789012', region: 'eu-west-1' } });
try {
  if (mode === 'checkout') new FaceRecognitionPipeline(stack, 'Pipeline', { imageDirectory: dir, alarmEmail: 'oncall@example.com' });
  else if (mode === 'prebuilt') {
    const repository = ecr.Repository.fromRepositoryName(stack, 'Repo', 'facerec');
    new FaceRecognitionPipeline(stack, 'Pipeline', { image: { repository, tagOrDigest: 'sha256:' + '0123'.repeat(16) }, gallery });
  } else new FaceRecognitionPipeline(stack, 'Pipeline', {});
  app.synth();
} catch (error) {
  if (!(error instanceof FaceRecognitionPipelineError)) throw error;
  process.stderr.write(error.message + '\\n');
  process.exit(3);
}
`;

describe('@facerec/cdk installed from packed tarballs into a scratch CDK app', () => {
  const scratch = mkdtempSync(path.join(tmpdir(), 'facerec-cdk-scratch-'));
  let checkout: string;
  let gallery: string;

  beforeAll(async () => {
    for (const pkg of PACKAGES) {
      if (pkg !== 'models' && !existsSync(path.join(root, pkg, 'dist'))) {
        throw new Error(`${pkg}/dist is missing: run \`npm run build\` before this test`);
      }
    }
    const tarballs = path.join(scratch, 'tarballs');
    mkdirSync(tarballs);
    const packed = JSON.parse(
      execFileSync(
        'npm',
        ['pack', '--json', '--pack-destination', tarballs, ...PACKAGES.flatMap((p) => ['--workspace', p])],
        { cwd: root, encoding: 'utf8' },
      ),
    ) as { name: string; filename: string }[];
    const app = path.join(scratch, 'app');
    mkdirSync(app);
    const dependencies: Record<string, string> = {
      'aws-cdk-lib': versionOf('aws-cdk-lib'),
      constructs: versionOf('constructs'),
    };
    for (const p of packed) dependencies[p.name] = `file:${path.join(tarballs, p.filename)}`;
    writeFileSync(
      path.join(app, 'package.json'),
      JSON.stringify({ name: 'scratch-cdk-app', private: true, type: 'module', dependencies }, null, 2),
    );
    writeFileSync(path.join(app, 'app.mjs'), APP);
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: app,
      encoding: 'utf8',
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    // A build context like a facerec checkout: its Dockerfile and a gallery (face-api's net).
    checkout = path.join(scratch, 'facerec');
    mkdirSync(checkout);
    copyFileSync(path.join(root, 'Dockerfile'), path.join(checkout, 'Dockerfile'));
    gallery = await writeGalleryFor(path.join(checkout, 'gallery', 'gallery.json'), 'faceapi-resnet');
  }, 300_000);

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  const synth = (...args: string[]) =>
    spawnSync(process.execPath, ['app.mjs', ...args], { cwd: path.join(scratch, 'app'), encoding: 'utf8' });

  it('resolves @facerec/cdk from the tarball, not the workspace', () => {
    const resolved = spawnSync(
      process.execPath,
      ['--input-type=module', '-e', "console.log(import.meta.resolve('@facerec/cdk'))"],
      { cwd: path.join(scratch, 'app'), encoding: 'utf8' },
    );
    expect(resolved.stdout).toContain(path.join(scratch, 'app', 'node_modules', '@facerec', 'cdk'));
  });

  it('synthesizes with a facerec checkout as the build context (gallery checked, its embedder deployed)', () => {
    const run = synth('checkout', checkout);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const out = path.join(scratch, 'app', 'cdk.out-checkout');
    const template = JSON.stringify(JSON.parse(readFileSync(path.join(out, 'Faces.template.json'), 'utf8')));
    expect(template).toContain('"FACEREC_EMBEDDER":"faceapi-resnet"');
    const assets = JSON.parse(readFileSync(path.join(out, 'Faces.assets.json'), 'utf8')) as {
      dockerImages: Record<string, { source: { dockerBuildArgs: Record<string, string> } }>;
    };
    expect(Object.values(assets.dockerImages).map((i) => i.source.dockerBuildArgs)).toEqual([
      { PROVIDER: 'onnx', EMBEDDER: 'faceapi-resnet', GALLERY: 'gallery/gallery.json' },
    ]);
  });

  it('synthesizes with a prebuilt image and the gallery it holds', () => {
    const run = synth('prebuilt', '', gallery);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const template = readFileSync(
      path.join(scratch, 'app', 'cdk.out-prebuilt', 'Faces.template.json'),
      'utf8',
    );
    expect(template).toContain('facerec@sha256:0123');
  });

  it('fails synth without a build context or an image, saying what to pass', () => {
    const run = synth('bare');
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/installed from npm, @facerec\/cdk holds no facerec sources/);
    expect(run.stderr).toMatch(/Pass imageDirectory .* or image/);
    // No advice to enroll a gallery into node_modules, where the default gallery path would have been.
    expect(run.stderr).not.toContain('Enroll one first');
  });
});
