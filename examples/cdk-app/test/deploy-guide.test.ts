import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type FaceRecognitionPipelineProps, PIPELINE_DEFAULTS } from '@facerec/cdk';
import { createProgram } from '@facerec/cli';
import { MODELS, type ResolvedEmbedder } from '@facerec/framework';
import { loadConfig } from '@facerec/lambda-runtime';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { writeGalleryFor } from '../../../packages/cdk/test/galleries.js';
import { createApp } from '../bin/app.js';

// The guide is checked as written: its commands are read from docs/deploy.md, not copied here.
const guide = readFileSync(fileURLToPath(new URL('../../../docs/deploy.md', import.meta.url)), 'utf8');

/** Every `facerec enroll …` command of the guide, as argv after `enroll`. */
function enrollCommands(text: string): string[][] {
  return [...text.matchAll(/facerec enroll ([^`\n#]+)/g)].map((m) => m[1]!.trim().split(/\s+/));
}

/** The embedder `facerec enroll <argv>` builds a gallery with, and where: the CLI's own parsing and defaults. */
function enrollResult(argv: readonly string[]): { embedder: ResolvedEmbedder; out: string } {
  const enroll = createProgram().commands.find((c) => c.name() === 'enroll')!;
  enroll.parseOptions([...argv]);
  const opts = enroll.opts<{ embedder: string; weights?: string; out: string }>();
  return { embedder: MODELS.resolveEmbedder(opts.embedder, { weights: opts.weights }), out: opts.out };
}

/** A build context like the repository root's, holding a gallery enrolled with `embedder` at `out`. */
async function contextWith(embedder: ResolvedEmbedder, out: string): Promise<string> {
  const imageDirectory = mkdtempSync(path.join(tmpdir(), 'facerec-guide-'));
  writeFileSync(path.join(imageDirectory, 'Dockerfile'), 'FROM public.ecr.aws/lambda/nodejs:22\n');
  await writeGalleryFor(path.join(imageDirectory, out), embedder.description.id, embedder.settings.weights);
  return imageDirectory;
}

/** The embedder the deployed functions load: the construct's environment through `loadConfig`. */
function deployedEmbedder(pipeline: FaceRecognitionPipelineProps): ResolvedEmbedder {
  const { stack } = createApp({ pipeline });
  const functions = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'));
  const envs = functions.map(
    (f) => (f.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables,
  );
  const strings = envs.map((env) =>
    Object.fromEntries(Object.entries(env).map(([k, v]) => [k, typeof v === 'string' ? v : 'token'])),
  );
  const configs = strings.map((env) => loadConfig(env));
  // Both functions run the same embedder (detection crops for it, recognition embeds with it).
  expect(new Set(configs.map((c) => modelIdOf(c.embedder))).size).toBe(1);
  return configs[0]!.embedder;
}

const modelIdOf = (e: ResolvedEmbedder) => e.description.modelId(e.options);

describe('docs/deploy.md: the gallery the guide enrolls is the one the construct deploys, with its embedder', () => {
  const commands = enrollCommands(guide);

  it('has enroll commands to check', () => {
    expect(commands.length).toBeGreaterThan(0);
  });

  it.each(commands.map((argv) => [argv.join(' '), argv] as const))(
    'facerec enroll %s → the construct finds that gallery and deploys its embedder',
    async (_, argv) => {
      const { embedder, out } = enrollResult(argv);
      expect(out).toBe(PIPELINE_DEFAULTS.gallery);
      const deployed = deployedEmbedder({ imageDirectory: await contextWith(embedder, out) });
      expect(modelIdOf(deployed)).toBe(modelIdOf(embedder));
      expect(deployed.description.preprocessing).toEqual(embedder.description.preprocessing);
    },
  );

  /** A build context holding what `facerec enroll people --out gallery/gallery.json --embedder faceapi-resnet` writes. */
  const faceApiContext = () => {
    const { embedder, out } = enrollResult([
      'people',
      '--out',
      'gallery/gallery.json',
      '--embedder',
      'faceapi-resnet',
    ]);
    return contextWith(embedder, out);
  };

  it("the same gallery with --embedder faceapi-resnet deploys face-api's net (the offline path the guide names)", async () => {
    expect(modelIdOf(deployedEmbedder({ imageDirectory: await faceApiContext() }))).toBe('faceapi-resnet');
  });

  it("fails synth when the props name another embedder than the gallery's", async () => {
    const imageDirectory = await faceApiContext();
    expect(() => deployedEmbedder({ imageDirectory, embedder: 'inception-resnet-v1' })).toThrow(
      /enrolled with embedder "faceapi-resnet" but the embedder offered is "inception-resnet-v1\/vggface2"/,
    );
  });

  it("builds the image with the registry's defaults and the construct's gallery path, through the tree script", () => {
    const dockerfile = readFileSync(fileURLToPath(new URL('../../../Dockerfile', import.meta.url)), 'utf8');
    const arg = (name: string) => new RegExp(`^ARG ${name}=(.*)$`, 'm').exec(dockerfile)?.[1];
    expect(arg('PROVIDER')).toBe(MODELS.defaults.provider);
    expect(arg('EMBEDDER')).toBe(MODELS.defaults.embedder);
    expect(arg('WEIGHTS')).toBe('');
    expect(arg('GALLERY')).toBe(PIPELINE_DEFAULTS.gallery);
    expect(dockerfile).toMatch(
      /scripts\/lambda-tree\.ts --out \/tree --gallery "\/context\/\$\{GALLERY\}" --provider "\$\{PROVIDER\}"/,
    );
    expect(dockerfile).toMatch(/^FROM \$\{NODE_IMAGE\}$/m);
    expect(arg('NODE_IMAGE')).toMatch(/^public\.ecr\.aws\/lambda\/nodejs:2[2-9]\.\d{4}\.\d\d\.\d\d\.\d\d$/);
  });

  it('runs the CLI the example app pins, never a global one', () => {
    expect(guide).toMatch(/npm run synth/);
    expect(guide).not.toMatch(/npm (install|i) -g/);
  });
});
