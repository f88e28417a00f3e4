import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createProgram } from '@facerec/cli';
import { MODELS, type ResolvedEmbedder } from '@facerec/framework';
import { loadConfig } from '@facerec/lambda-runtime';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { createApp } from '../bin/app.js';

// The guide is checked as written: its commands are read from docs/deploy.md, not copied here.
const guide = readFileSync(fileURLToPath(new URL('../../../docs/deploy.md', import.meta.url)), 'utf8');

const imageDirectory = mkdtempSync(path.join(tmpdir(), 'facerec-guide-'));
writeFileSync(path.join(imageDirectory, 'Dockerfile'), 'FROM public.ecr.aws/lambda/nodejs:20\n');

/** Every `facerec enroll …` command of the guide, as argv after `enroll`. */
function enrollCommands(text: string): string[][] {
  return [...text.matchAll(/facerec enroll ([^`\n]+)/g)].map((m) => m[1]!.trim().split(/\s+/));
}

/** The embedder `facerec enroll <argv>` builds a gallery with: the CLI's own option parsing and defaults. */
function enrollEmbedder(argv: readonly string[]): ResolvedEmbedder {
  const enroll = createProgram().commands.find((c) => c.name() === 'enroll')!;
  enroll.parseOptions([...argv]);
  const opts = enroll.opts<{ embedder: string; weights?: string }>();
  return MODELS.resolveEmbedder(opts.embedder, { weights: opts.weights });
}

/** The embedder the deployed recognition function loads: the construct's environment through `loadConfig`. */
function deployedEmbedder(): ResolvedEmbedder {
  const { stack } = createApp({ pipeline: { imageDirectory } });
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

describe('docs/deploy.md: the gallery the guide enrolls fits the functions the construct deploys', () => {
  const commands = enrollCommands(guide);

  it('has enroll commands to check', () => {
    expect(commands.length).toBeGreaterThan(0);
  });

  it.each(commands.map((argv) => [argv.join(' '), argv] as const))(
    'facerec enroll %s → the same model id and crop as the deployed recognition function',
    (_, argv) => {
      const enrolled = enrollEmbedder(argv);
      const deployed = deployedEmbedder();
      expect(modelIdOf(enrolled)).toBe(modelIdOf(deployed));
      expect(enrolled.description.preprocessing).toEqual(deployed.description.preprocessing);
    },
  );

  it("builds the image with the registry's defaults, checked by the same registry (`models prepare`)", () => {
    const dockerfile = readFileSync(fileURLToPath(new URL('../../../Dockerfile', import.meta.url)), 'utf8');
    const arg = (name: string) => new RegExp(`^ARG ${name}=(.*)$`, 'm').exec(dockerfile)?.[1];
    expect(arg('PROVIDER')).toBe(MODELS.defaults.provider);
    expect(arg('EMBEDDER')).toBe(MODELS.defaults.embedder);
    expect(arg('WEIGHTS')).toBe('');
    expect(dockerfile).toMatch(/models prepare --provider "\$\{PROVIDER\}" --embedder "\$\{EMBEDDER\}"/);
  });

  it('would catch a mismatch: a gallery of another embedder than the construct deploys', () => {
    const enrolled = enrollEmbedder(['people', '--out', 'g.json', '--embedder', 'faceapi-resnet']);
    expect(modelIdOf(enrolled)).not.toBe(modelIdOf(deployedEmbedder()));
  });
});
